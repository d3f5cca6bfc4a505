"""Alert engine: which confirmed tracks raise an alert, and how often (pure; the caller
passes the clock in the events).

Modes: none, unknowns (people not enrolled, anonymous ids included), knowns, all. Only
confirmed tracks alert, and only on an answer: a stranger alert waits until the track's vote
says "unknown", or until the track has stayed unidentified for `unidentified_after_s` (its
"unidentified" event), so an enrolled person first seen from far away is not a stranger.
With a cooldown (30 s by default) a person alerts once per visit: again only after they were
not seen for `cooldown_s`, so one walk-by is one alert even when their track breaks up (tracks
of one person measured 3 s apart), and someone who stays in view is not announced again; a
stranger (unknown-N) who walks past twice, minutes apart, alerts twice. The default is the
MQTT presence timeout's, so an alert and a presence "arrival" mean the same visit. Faces no one
could identify in time (too small or blurred to embed) share one cooldown per camera, so a
crowd of them is one alert, not one per face. With cooldown 0 each track alerts once. People
in `ignore` never alert.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edged.events import Alert, TrackEvent
from edged.gallery import is_anonymous_name

MODES = ("none", "unknowns", "knowns", "all")


@dataclass(frozen=True)
class AlertSettings:
    mode: str = "unknowns"
    cooldown_s: float = 30.0
    ignore: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"alert mode '{self.mode}' is not one of {MODES}")
        if self.cooldown_s < 0:
            raise ValueError("alert cooldown_s must be >= 0")


def is_unknown(person: str | None) -> bool:
    return person is None or is_anonymous_name(person)


class AlertEngine:
    """`handle(event) -> alerts` for every TrackEvent, in time order."""

    def __init__(self, settings: AlertSettings | None = None) -> None:
        self.settings = settings or AlertSettings()
        self._alerted_tracks: set[tuple[str, int]] = set()
        self._seen: dict[str, float] = {}  # person, stranger id or unidentified key -> last seen
        self.enabled = True  # switched by the MQTT control topic

    def reset(self) -> None:
        self._alerted_tracks.clear()
        self._seen.clear()

    def wanted(self, person: str | None) -> bool:
        mode = self.settings.mode
        if mode == "none" or (person is not None and person in self.settings.ignore):
            return False
        unknown = is_unknown(person)
        return mode == "all" or (mode == "unknowns" and unknown) or (mode == "knowns" and not unknown)

    def handle(self, event: TrackEvent) -> list[Alert]:
        track = (event.camera, event.track_id)
        key = event.person or f"unidentified:{event.camera}"
        if event.kind == "ended":
            self._alerted_tracks.discard(track)
            if event.confirmed:
                self._see(key, event.time)
            return []
        answered = event.kind in ("confirmed", "identity_changed") and event.identified
        overdue = event.kind == "unidentified"
        if not (answered or overdue) or not event.confirmed:
            return []
        if not self.enabled or not self.wanted(event.person):
            return []
        cooldown = self.settings.cooldown_s
        if cooldown == 0 and track in self._alerted_tracks:
            return []
        last = self._seen.get(key, float("-inf"))
        self._see(key, event.time)
        if cooldown > 0 and event.time - last < cooldown:
            return []  # the same visit
        self._alerted_tracks.add(track)
        reason = "unidentified" if overdue else ("unknown" if is_unknown(event.person) else "known")
        return [Alert(event.camera, event.track_id, event.time, event.start_time, event.person, event.similarity,
                      event.box, reason)]

    def _see(self, key: str, when: float) -> None:
        self._seen[key] = max(self._seen.get(key, when), when)
        if len(self._seen) > 10_000:  # months of strangers: forget those whose visit is long over
            horizon = when - max(self.settings.cooldown_s, 1.0)
            self._seen = {k: t for k, t in self._seen.items() if t >= horizon}
