"""Face tracker: persistent track ids across frames, constant-velocity prediction between
detections, association by IoU and size-normalised centre distance, lifetime in seconds (pure).

Design (docs/tracking.md, "Tracker"): SORT's predict-then-associate loop without its Kalman filter
(an alpha-beta velocity estimate is enough for faces and has two knobs, not six matrices),
OC-SORT's lesson of keeping a lost track's last observed box and velocity rather than drifting
predictions, and norfair's size-normalised distance so that one gate fits near and far faces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edged.types import Faces
from edged.vision.boxes import iou_matrix


@dataclass(frozen=True)
class TrackerSettings:
    """max_age_s: a track ends this long after its last detection. credence: detections
    before a track is confirmed. max_distance: centre distance from the predicted box, in face
    sizes, that can still be the same face; it grows by max_speed face sizes per second since
    the track's last detection (a quarter of that once its velocity is known), so a face that
    walks fast past a camera sampled a few times a second keeps its track. min_iou: overlap
    that is the same face whatever the distance. velocity_gain: weight of the newest velocity
    measurement (alpha-beta filter)."""

    max_age_s: float = 1.0
    credence: int = 3
    max_distance: float = 1.0
    max_speed: float = 10.0
    min_iou: float = 0.3
    velocity_gain: float = 0.5
    max_size_change: float = 1.8

    def __post_init__(self) -> None:
        if self.max_age_s <= 0 or self.credence < 1 or self.max_distance <= 0:
            raise ValueError("tracker settings: max_age_s > 0, credence >= 1, max_distance > 0")


@dataclass
class Track:
    """One face through time. Boxes are xyxy source pixels; velocity is pixels per second."""

    track_id: int
    xyxy: np.ndarray
    landmarks: np.ndarray
    score: float
    first_ts: float
    last_ts: float
    hits: int = 1
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    confirmed: bool = False

    def predict(self, ts: float, max_age_s: float) -> np.ndarray:
        """The box expected at `ts`; extrapolation stops at the track's lifetime."""
        dt = min(max(ts - self.last_ts, 0.0), max_age_s)
        return self.xyxy + self.velocity * dt


@dataclass(frozen=True)
class TrackUpdate:
    """What one `update` did: the detections with their track ids, and what started and ended."""

    faces: Faces  # the frame's detections, track_id filled in
    started: list[int]
    confirmed: list[int]  # tracks confirmed by this update
    ended: list[Track]


def association_scores(predicted: np.ndarray, detected: np.ndarray, gates: np.ndarray,
                       settings: TrackerSettings) -> np.ndarray:
    """(T, 4) x (D, 4) -> (T, D) scores, higher is likelier; -inf where the pair is impossible.
    gates: (T,) largest centre distance, in face sizes, for each track."""
    if len(predicted) == 0 or len(detected) == 0:
        return np.full((len(predicted), len(detected)), -np.inf)
    iou = iou_matrix(predicted, detected)
    centre_p = (predicted[:, :2] + predicted[:, 2:]) / 2
    centre_d = (detected[:, :2] + detected[:, 2:]) / 2
    size_p = np.sqrt(np.maximum((predicted[:, 2] - predicted[:, 0]) * (predicted[:, 3] - predicted[:, 1]), 1.0))
    size_d = np.sqrt(np.maximum((detected[:, 2] - detected[:, 0]) * (detected[:, 3] - detected[:, 1]), 1.0))
    distance = np.linalg.norm(centre_p[:, None] - centre_d[None], axis=2) / size_p[:, None]
    ratio = np.maximum(size_p[:, None] / size_d[None], size_d[None] / size_p[:, None])
    score = iou - 0.5 * distance
    possible = ((iou >= settings.min_iou) | (distance <= gates[:, None])) & (ratio <= settings.max_size_change)
    return np.where(possible, score, -np.inf)


def greedy_match(scores: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (row, col) taken best score first; each row and column at most once."""
    pairs: list[tuple[int, int]] = []
    if scores.size == 0:
        return pairs
    order = np.argsort(-scores, axis=None)
    used_rows, used_cols = set(), set()
    for flat in order:
        r, c = divmod(int(flat), scores.shape[1])
        if not np.isfinite(scores[r, c]):
            break
        if r in used_rows or c in used_cols:
            continue
        used_rows.add(r)
        used_cols.add(c)
        pairs.append((r, c))
    return pairs


class Tracker:
    """Call `update(faces, ts)` on every frame where detection ran (also with no faces), and
    `predict(ts)` on frames in between. Track ids count up per tracker instance."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._next_id = 1
        self.tracks: dict[int, Track] = {}

    def reset(self) -> None:
        self._next_id = 1
        self.tracks = {}

    def update(self, faces: Faces, ts: float) -> TrackUpdate:
        s = self.settings
        ended = self.expire(ts)
        live = list(self.tracks.values())
        predicted = np.array([t.predict(ts, s.max_age_s) for t in live], np.float32).reshape(-1, 4)
        gates = np.array([s.max_distance + (s.max_speed if t.hits == 1 else s.max_speed / 4) * (ts - t.last_ts)
                          for t in live], np.float32)
        pairs = greedy_match(association_scores(predicted, faces.xyxy, gates, s))
        ids = np.full(len(faces), -1, np.int64)
        confirmed = []
        for row, col in pairs:
            track = live[row]
            self._correct(track, faces, col, ts)
            ids[col] = track.track_id
            if not track.confirmed and track.hits >= s.credence:
                track.confirmed = True
                confirmed.append(track.track_id)
        started = []
        for col in (int(c) for c in np.flatnonzero(ids < 0)):
            track = Track(self._next_id, faces.xyxy[col].copy(), faces.landmarks[col].copy(),
                          float(faces.score[col]), ts, ts, confirmed=s.credence <= 1)
            self._next_id += 1
            self.tracks[track.track_id] = track
            ids[col] = track.track_id
            started.append(track.track_id)
            if track.confirmed:
                confirmed.append(track.track_id)
        tracked = Faces(faces.xyxy, faces.score, faces.landmarks, ids, faces.embedding)
        return TrackUpdate(tracked, started, confirmed, ended)

    def _correct(self, track: Track, faces: Faces, col: int, ts: float) -> None:
        dt = ts - track.last_ts
        box = faces.xyxy[col]
        if dt > 0:
            measured = (box - track.xyxy) / dt
            gain = self.settings.velocity_gain if track.hits > 1 else 1.0
            track.velocity = (gain * measured + (1 - gain) * track.velocity).astype(np.float32)
        track.xyxy = box.copy()
        track.landmarks = faces.landmarks[col].copy()
        track.score = float(faces.score[col])
        track.last_ts = ts
        track.hits += 1

    def split(self, track_id: int) -> tuple[Track, int]:
        """Ends a track where it stands and starts a new one on its newest detection (another
        person took its place); returns the ended track and the new id."""
        old = self.tracks.pop(track_id)
        new = Track(self._next_id, old.xyxy.copy(), old.landmarks.copy(), old.score, old.last_ts, old.last_ts,
                    confirmed=self.settings.credence <= 1)
        self._next_id += 1
        self.tracks[new.track_id] = new
        return old, new.track_id

    def swap(self, a: int, b: int) -> None:
        """Two tracks exchange where they are (boxes, motion): appearance showed that the
        association gave each the other's face while they overlapped."""
        ta, tb = self.tracks[a], self.tracks[b]
        for name in ("xyxy", "landmarks", "score", "velocity", "last_ts"):
            first, second = getattr(ta, name), getattr(tb, name)
            setattr(ta, name, second)
            setattr(tb, name, first)

    def expire(self, ts: float) -> list[Track]:
        """Ends the tracks unseen for more than max_age_s at `ts`; returns them."""
        ended = [t for t in self.tracks.values() if ts - t.last_ts > self.settings.max_age_s]
        for track in ended:
            del self.tracks[track.track_id]
        return ended

    def predict(self, ts: float) -> Faces:
        """Live tracks' boxes moved to `ts` (for frames where detection did not run)."""
        live = [t for t in self.tracks.values() if ts - t.last_ts <= self.settings.max_age_s]
        if not live:
            return Faces.empty()
        boxes = np.array([t.predict(ts, self.settings.max_age_s) for t in live], np.float32)
        shift = boxes - np.array([t.xyxy for t in live], np.float32)
        landmarks = np.array([t.landmarks for t in live], np.float32) + shift[:, None, :2]
        return Faces(boxes, np.array([t.score for t in live], np.float32), landmarks,
                     np.array([t.track_id for t in live], np.int64))

    def finish(self) -> list[Track]:
        """Ends every live track (end of a video); returns them."""
        ended = list(self.tracks.values())
        self.tracks = {}
        return ended
