"""Who is present at a camera, as Home Assistant's presence sensors show it, kept on disk: a
reload or a restart publishes the truth it had (everyone present stays ON, everyone else OFF)
before it says `online`, so automations on "X arrived" or "X left" see no change that did not
happen. People are keyed by their stable gallery id, so a rename changes no entity or topic."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from edged import durable

log = logging.getLogger("edged.mqtt")


@dataclass
class PresenceState:
    people: dict[int, float] = field(default_factory=dict)  # person id -> last seen (wall time), while ON
    stranger: float | None = None  # a stranger last seen (wall time), while stranger presence is ON

    def to_json(self) -> dict[str, object]:
        return {"people": {str(k): round(v, 3) for k, v in self.people.items()}, "stranger": self.stranger}


def presence_file(state: Path, camera: str) -> Path:
    return state / f"presence-{camera}.json"


def load_presence(path: Path, now: float, timeout_s: float) -> PresenceState:
    """What was present when the file was written, less those not seen for `timeout_s` since
    (they would have been cleared meanwhile). A missing or damaged file: nobody present."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        people = {int(k): float(v) for k, v in document.get("people", {}).items()}
        stranger = document.get("stranger")
        stranger = float(stranger) if stranger is not None else None
    except FileNotFoundError:
        return PresenceState()
    except (OSError, ValueError, TypeError, AttributeError, RecursionError):
        log.warning("%s: unreadable; starting with nobody present", path)
        return PresenceState()
    fresh = {pid: seen for pid, seen in people.items() if now - seen < timeout_s}
    return PresenceState(fresh, stranger if stranger is not None and now - stranger < timeout_s else None)


def save_presence(path: Path, state: PresenceState) -> None:
    try:
        durable.write_text(path, json.dumps(state.to_json()))
    except OSError as exc:  # a full disk must not stop presence itself
        log.warning("%s: cannot write (%s)", path, exc.strerror)
