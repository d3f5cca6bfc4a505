"""Re-identification back-off and identity voting per track (pure).

A new track is embedded at once. While its identity stays the same, the gap between
embeddings doubles (1, 2, 4, 8 ... detections) up to `max_interval`. A change of identity, a
jump of the box, or a much better face resets the gap to 1. The track's identity is a
quality-weighted vote over all its embeddings, not the last answer, and it needs evidence: the
leader (a person, or unknown) must lead the runner-up by `margin` of all the weight, or the
track is "not yet identified".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edged.types import Identity


@dataclass(frozen=True)
class ReidSettings:
    max_interval: int = 16  # detections between embeddings at most
    jump: float = 0.75  # centre jump between detections, in face sizes, that forces an embedding
    better_quality: float = 1.5  # a face this many times better than the best so far forces one
    enabled: bool = True  # False: embed every good face at every detection (for comparison)
    # The leader's weight minus the runner-up's, as a share of all the weight, that names a track:
    # one vote decides; 2 against 1 (0.33) does; 3 against 2 (0.2) or a tie does not.
    margin: float = 0.3

    def __post_init__(self) -> None:
        if self.max_interval < 1 or self.jump <= 0 or self.better_quality <= 1 or not 0 <= self.margin < 1:
            raise ValueError("reid settings: max_interval >= 1, jump > 0, better_quality > 1, 0 <= margin < 1")


@dataclass
class TrackIdentity:
    """Votes and embedding schedule of one track."""

    interval: int = 1
    since_last: int = 0  # detections since the last embedding
    embedded: int = 0
    best_quality: float = 0.0
    last_centre: np.ndarray | None = None
    last_size: float = 0.0
    weights: dict[str | None, float] = field(default_factory=dict)
    similarities: dict[str | None, list[float]] = field(default_factory=dict)
    vectors: list[np.ndarray] = field(default_factory=list)  # embeddings, for unknown clustering
    current: str | None = None
    switches: int = 0  # leader changes from one named person to another

    def identity(self, track_id: int, confirmed: bool, margin: float = 0.3) -> Identity:
        if not self.weights:
            return Identity(None, -1.0, track_id, 0, confirmed, identified=False)
        person = max(self.weights, key=lambda p: self.weights[p])
        sims = self.similarities[person]
        ranked = sorted(self.weights.values(), reverse=True) + [0.0]
        if ranked[0] - ranked[1] < margin * sum(ranked):
            return Identity(None, float(np.mean(sims)), track_id, len(sims), confirmed, identified=False)
        return Identity(person, float(np.mean(sims)), track_id, len(sims), confirmed)


class Reid:
    """`due(...)` says whether to embed a track's face now; `record(...)` takes the match."""

    def __init__(self, settings: ReidSettings | None = None) -> None:
        self.settings = settings or ReidSettings()
        self.tracks: dict[int, TrackIdentity] = {}
        self.embeddings = 0

    def reset(self) -> None:
        self.tracks = {}
        self.embeddings = 0

    def due(self, track_id: int, xyxy: np.ndarray, quality: float) -> bool:
        """Called once per detection of the track with a good-enough face."""
        state = self.tracks.setdefault(track_id, TrackIdentity())
        centre = (xyxy[:2] + xyxy[2:]) / 2
        size = float(np.sqrt(max((xyxy[2] - xyxy[0]) * (xyxy[3] - xyxy[1]), 1.0)))
        jumped = (state.last_centre is not None
                  and float(np.linalg.norm(centre - state.last_centre)) > self.settings.jump * state.last_size)
        state.last_centre, state.last_size = centre, size
        state.since_last += 1
        if not self.settings.enabled or state.embedded == 0:
            return True
        if jumped or quality > self.settings.better_quality * max(state.best_quality, 1e-3):
            state.interval = 1
            return True
        return state.since_last >= state.interval

    def record(self, track_id: int, match: Identity, vector: np.ndarray, quality: float) -> None:
        """One embedding's gallery match, weighted by the face's quality."""
        state = self.tracks.setdefault(track_id, TrackIdentity())
        self.embeddings += 1
        state.embedded += 1
        state.since_last = 0
        state.best_quality = max(state.best_quality, quality)
        weight = max(quality, 0.05)
        state.weights[match.person] = state.weights.get(match.person, 0.0) + weight
        state.similarities.setdefault(match.person, []).append(match.similarity)
        state.vectors.append(vector)
        leader = max(state.weights, key=lambda p: state.weights[p])
        if leader != state.current:
            # From one person to another is a switch; unknown -> named is the vote resolving.
            if state.current is not None and leader is not None:
                state.switches += 1
            state.current = leader
            state.interval = 1
        else:
            state.interval = min(state.interval * 2, self.settings.max_interval)

    def force(self, track_id: int) -> None:
        """Embed this track at its next good face (its box just came free of another's)."""
        state = self.tracks.get(track_id)
        if state is not None:
            state.interval = 1

    def identity(self, track_id: int, confirmed: bool = False) -> Identity:
        state = self.tracks.get(track_id)
        if state is None:
            return Identity(None, -1.0, track_id, 0, confirmed, identified=False)
        return state.identity(track_id, confirmed, self.settings.margin)

    def forget(self, track_id: int) -> TrackIdentity | None:
        return self.tracks.pop(track_id, None)
