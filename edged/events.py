"""Events the pipeline emits for the rest of the system (frozen, JSON-serialisable).
Sinks consume them; they never reach back into the pipeline."""

from __future__ import annotations

from dataclasses import asdict, dataclass

Box = tuple[float, float, float, float]  # xyxy, source pixels


def event_id(start_time: float, camera: str, track_id: int) -> str:
    """A track's id across restarts and boxes: its start time, camera and track number."""
    return f"{start_time:.3f}-{camera}-{track_id}"


@dataclass(frozen=True)
class TrackEvent:
    """A track's life: kind is "started", "confirmed", "identity_changed", "unidentified" (still
    no answer `unidentified_after_s` after it began) or "ended" (with a reason).
    Times are Unix seconds; `person` None is unknown, `unknown-N` an anonymous id."""

    kind: str
    camera: str
    track_id: int
    time: float
    start_time: float
    box: Box
    person: str | None
    similarity: float
    confirmed: bool
    previous: str | None = None  # identity_changed: who it was before
    snapshot: str | None = None  # where a snapshot of the face is, when a sink made one
    clip: str | None = None
    reason: str | None = None  # ended: one of END_REASONS
    # False: "not yet identified" (never embedded, or no clear vote); person None is then no stranger.
    identified: bool = True

    @property
    def id(self) -> str:
        return event_id(self.start_time, self.camera, self.track_id)

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, **asdict(self), "box": [round(v, 1) for v in self.box]}


# Why a track ended: unseen for tracker.max_age_s; a hard cut (camera moved, switched or covered,
# or an edit in a video); its face became someone else's (the track split); the source ended
# or the daemon stopped.
END_REASONS = ("lost", "scene_cut", "appearance", "finished")


@dataclass(frozen=True)
class Alert:
    """What the owner is told about: a confirmed track that matters under the alert mode."""

    camera: str
    track_id: int
    time: float
    start_time: float
    person: str | None
    similarity: float
    box: Box
    reason: str  # "known", "unknown" (a stranger), or "unidentified" (no answer in time)
    snapshot: str | None = None  # the best face, as a path under the web server (media/...)
    frame: str | None = None  # the full frame at the alert
    clip: str | None = None  # the clip this alert is in, as a path under the web server (clips/...)
    frame_index: int = -1  # the source's frame counter when the alert was raised

    @property
    def id(self) -> str:
        return event_id(self.start_time, self.camera, self.track_id)

    @property
    def who(self) -> str:
        return self.person or ("not yet identified" if self.reason == "unidentified" else "unknown")

    def to_json(self) -> dict[str, object]:
        return {"id": self.id, **asdict(self), "box": [round(v, 1) for v in self.box]}
