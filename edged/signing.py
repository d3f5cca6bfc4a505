"""Signed messages for topics any broker client can publish to: an HMAC-SHA256 with a key the
owner shares with the boxes, over a timestamp, a nonce and the exact payload text, so a
command or a record cannot be forged without the key, nor replayed after it was used. The
gallery command topic, the instance claim and the fleet's records all use this one envelope.

Envelope (JSON): {"payload": "<the message's own JSON text>", "ts": <unix seconds>,
"nonce": "<16-64 letters/digits>", "sig": "<hex HMAC-SHA256 of f'{ts}.{nonce}.{payload}'>"}."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_ENVELOPE = 64 * 1024  # bytes; a command or a claim is far smaller
MAX_SKEW_S = 120.0  # a message older or newer than this (clock apart) is refused
MIN_KEY_LENGTH = 16  # characters of the shared key
NONCE_CHARS = set("0123456789abcdefABCDEF-_") | set("ghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ")


class SignatureError(ValueError):
    """A message that is not signed, signed with another key, stale, replayed or malformed."""


def _mac(key: bytes, ts: str, nonce: str, payload: str) -> str:
    return hmac.new(key, f"{ts}.{nonce}.{payload}".encode(), hashlib.sha256).hexdigest()


def sign(key: bytes, payload: str, now: float | None = None, nonce: str | None = None) -> bytes:
    """The envelope around `payload` (JSON text), ready to publish."""
    ts = f"{time.time() if now is None else now:.3f}"
    nonce = nonce or secrets.token_hex(16)
    return json.dumps({"payload": payload, "ts": float(ts), "nonce": nonce,
                       "sig": _mac(key, ts, nonce, payload)}).encode()


@dataclass(frozen=True)
class Verified:
    payload: str  # the signed JSON text
    nonce: str  # names the request in answers
    ts: float


class Verifier:
    """Checks envelopes with one key; remembers the nonces it accepted for twice the allowed
    clock skew, so an envelope is accepted once (bounded memory: the oldest are forgotten)."""

    def __init__(self, key: bytes, max_skew_s: float = MAX_SKEW_S, remember: int = 20000,
                 max_size: int = MAX_ENVELOPE) -> None:
        self.key = key
        self.max_size = max_size  # a fleet's record (embeddings, a picture) is larger than a command
        self.max_skew_s = max_skew_s
        self.remember = remember
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, raw: bytes, now: float | None = None, replay_ok: bool = False) -> Verified:
        """The signed payload, or SignatureError saying why not. `replay_ok`: the same envelope
        may arrive again (a retained record read at every connect), only its signature counts."""
        now = time.time() if now is None else now
        if len(raw) > self.max_size:
            raise SignatureError(f"larger than {self.max_size} bytes")
        try:
            envelope = json.loads(raw)
        except (ValueError, RecursionError):
            raise SignatureError("not JSON") from None
        if not isinstance(envelope, dict):
            raise SignatureError("not a signed envelope")
        payload, ts, nonce, sig = (envelope.get(k) for k in ("payload", "ts", "nonce", "sig"))
        if not isinstance(payload, str) or not isinstance(sig, str):
            raise SignatureError("not signed (no payload and sig)")
        if not isinstance(ts, (int, float)) or isinstance(ts, bool) or ts != ts:
            raise SignatureError("no timestamp")
        if not isinstance(nonce, str) or not 16 <= len(nonce) <= 64 or not set(nonce) <= NONCE_CHARS:
            raise SignatureError("no nonce (16 to 64 letters or digits)")
        expected = _mac(self.key, f"{float(ts):.3f}", nonce, payload)
        if not hmac.compare_digest(expected, sig):
            raise SignatureError("wrong signature (another key, or altered)")
        if not replay_ok and abs(now - float(ts)) > self.max_skew_s:
            raise SignatureError(f"timestamp {float(ts):.0f} is more than {self.max_skew_s:.0f} s off this box's "
                                 "clock (stale, or a clock set wrong)")
        if not replay_ok:
            with self._lock:
                self._forget(now)
                if nonce in self._seen:
                    raise SignatureError("replayed (nonce already used)")
                self._seen[nonce] = now
        return Verified(payload, nonce, float(ts))

    def _forget(self, now: float) -> None:
        while self._seen and (len(self._seen) >= self.remember
                              or now - next(iter(self._seen.values())) > 2 * self.max_skew_s):
            self._seen.popitem(last=False)


def key_bytes(text: str) -> bytes:
    """The shared key as configured (a file's text, outer white space removed)."""
    return text.strip().encode()
