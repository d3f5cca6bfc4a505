"""Who publishes as a device on the broker: the claim each running edged keeps fresh on
`<prefix>/<device>/instance`, and the rule for reading one. Pure functions; mqtt.py sends and
receives them.

Any broker client can publish a claim, so a claim alone never stops a box that runs: a running
box only warns. A box that starts refuses (exit 78) only when another instance answers a probe
live, within seconds, with a claim that is fresh, not from the future and, where the owner set
mqtt.key_file, signed with the shared key. A retained claim left by anyone, of any content,
costs a starting box a few seconds at most."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from edged.signing import SignatureError, Verifier, sign

CLAIM_FRESH_S = 60.0  # a claim refreshed within this long may belong to a running instance
CLAIM_REFRESH_S = 10.0  # how often a running instance refreshes its claim
FUTURE_SLACK_S = 120.0  # a claim dated further ahead than this is forged (or its clock is wrong)


@dataclass(frozen=True)
class Claim:
    host: str
    state: str  # the state directory: a restart of the same instance keeps it
    pid: int
    started: float
    time: float  # when it was last refreshed

    def same_instance(self, other: Claim) -> bool:
        return (self.host, self.state) == (other.host, other.state)

    def describe(self) -> str:
        return f"host {self.host!r}, state directory {self.state!r}, pid {self.pid}"


def claim_payload(claim: Claim, now: float, key: bytes | None) -> str | bytes:
    text = json.dumps({**asdict(claim), "time": round(now, 3)})
    return sign(key, text, now) if key else text


def read_claim(raw: bytes, verifier: Verifier | None) -> tuple[Claim | None, str]:
    """The claim in a message, or None and why it does not count ("" for a cleared claim)."""
    if not raw:
        return None, ""
    if len(raw) > 4096:
        return None, "larger than a claim"
    text: str | bytes = raw
    if verifier is not None:
        try:
            text = verifier.verify(raw, replay_ok=True).payload
        except SignatureError as exc:
            return None, f"not signed with mqtt.key_file ({exc})"
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None, "not JSON"
    if not isinstance(document, dict):
        return None, "not an object"
    host, state, pid, started, when = (document.get(k) for k in ("host", "state", "pid", "started", "time"))
    numbers = (pid, started, when)
    if not (isinstance(host, str) and isinstance(state, str) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v == v for v in numbers)):
        return None, "not a claim (host, state, pid, started, time)"
    return Claim(host[:200], state[:400], int(pid), float(started), float(when)), ""  # type: ignore[arg-type]


def contender(claim: Claim | None, ours: Claim, now: float) -> tuple[bool, str]:
    """Whether `claim` may be another live instance of this device; else why it is ignored."""
    if claim is None or claim.same_instance(ours):
        return False, ""
    if claim.time > now + FUTURE_SLACK_S:
        return False, f"a claim dated {claim.time - now:.0f} s in the future ({claim.describe()})"
    if now - claim.time > CLAIM_FRESH_S:
        return False, ""  # an old one, left by an instance that is gone
    return True, ""
