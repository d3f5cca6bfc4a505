"""Faces through time: detection -> quality -> tracker -> embedding back-off -> identity.
One `process` call per frame on which detection runs; `finish` closes the remaining tracks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from edged.engine import FaceEngine
from edged.errors import GalleryError
from edged.events import TrackEvent
from edged.gallery import Gallery
from edged.tracking.quality import QualitySettings, assess
from edged.tracking.reid import Reid, ReidSettings
from edged.tracking.shots import CutDetector, CutSettings
from edged.tracking.tracker import Track, Tracker, TrackerSettings
from edged.tracking.unknowns import CLUSTER_MARGIN
from edged.types import Faces, Identity
from edged.vision.boxes import iou_matrix
from edged.vision.detector import DetectorSettings
from edged.vision.pictures import card_jpeg, face_thumbnail

log = logging.getLogger("edged.tracking.faces")


@dataclass(frozen=True)
class TrackingSettings:
    detector: DetectorSettings = field(default_factory=DetectorSettings.edge)
    quality: QualitySettings = QualitySettings()
    tracker: TrackerSettings = TrackerSettings()
    reid: ReidSettings = ReidSettings()
    cuts: CutSettings = CutSettings()
    # A confirmed track with no answer (never embedded, or no clear vote) this long after it
    # began gets one "unidentified" event, on which stranger alerts may fire; 0 = never.
    unidentified_after_s: float = 10.0
    # An embedding this far from every earlier one of its track (cosine) is another person: the
    # track splits there. 0 = the embedder spec's measured same_person_floor.
    split_below: float = 0.0
    appearance: bool = True  # False: association by geometry alone, no splits (for comparison)
    match_threshold: float = 0.0  # cosine similarity to name a face; 0 = the engine's


@dataclass
class TrackRecord:
    """Everything kept about one track once it has ended."""

    track_id: int
    first_index: int
    last_index: int
    first_ts: float
    last_ts: float
    hits: int
    confirmed: bool
    identity: Identity
    vectors: np.ndarray  # (K, D) embeddings made for this track
    qualities: np.ndarray  # (K,) face quality of each embedding
    thumbnail: np.ndarray | None  # best face, BGR
    thumbnail_quality: float
    switches: int  # times the voted identity changed from one named person to another
    end_reason: str = "finished"  # one of events.END_REASONS


@dataclass
class _Extra:
    """Per-live-track bookkeeping the tracker itself does not need."""

    first_index: int
    last_index: int
    thumbnail: np.ndarray | None = None
    thumbnail_quality: float = -1.0
    qualities: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class FrameResult:
    index: int
    ts: float
    faces: Faces  # detections with track ids
    identities: list[Identity]  # per face, the track's current identity
    embedded: int  # embeddings run on this frame
    events: list[TrackEvent] = field(default_factory=list)


CLOSE = 1.2  # centre distance, in face sizes, at which two tracks could take each other's face


def overlapping(faces: Faces) -> set[int]:
    """Track ids of faces whose boxes overlap another face's (one hiding part of the other)."""
    if len(faces) < 2:
        return set()
    iou = iou_matrix(faces.xyxy, faces.xyxy)
    np.fill_diagonal(iou, 0.0)
    return {int(t) for t in faces.track_id[iou.max(axis=1) > 0.0]}


def close_partners(faces: Faces) -> dict[int, int]:
    """For each face within CLOSE face sizes of another (crossing, passing): its track id ->
    the track id of the nearest such face."""
    if len(faces) < 2:
        return {}
    centres = (faces.xyxy[:, :2] + faces.xyxy[:, 2:]) / 2
    sizes = np.sqrt(np.maximum(faces.area, 1.0))
    distance = np.linalg.norm(centres[:, None] - centres[None], axis=2) / np.maximum(sizes[:, None], sizes[None])
    np.fill_diagonal(distance, np.inf)
    return {int(faces.track_id[i]): int(faces.track_id[int(distance[i].argmin())])
            for i in np.flatnonzero(distance.min(axis=1) < CLOSE)}


def crossed(own: tuple[float, float], swapped: tuple[float, float], floor: float) -> bool:
    """Two tracks that just parted took each other's faces: each face is more like the other
    track's earlier faces than its own track's are, and like them as one person's faces are."""
    return sum(swapped) > sum(own) and min(swapped) >= floor


class FaceTracking:
    """Tracks faces, embeds each track rarely, and votes its identity against the gallery."""

    def __init__(self, engine: FaceEngine, gallery: Gallery, settings: TrackingSettings | None = None,
                 camera: str = "camera", time_offset: float = 0.0, name_strangers: bool = False,
                 keep_records: bool = True) -> None:
        """Event times are `ts + time_offset` (a daemon passes wall time minus its monotonic
        clock). With `name_strangers`, a confirmed track nobody is enrolled for gets a lasting
        `unknown-N` from the gallery at once (the daemon); a scan groups strangers at the end."""
        self.engine = engine
        self.gallery = gallery
        self.settings = settings or TrackingSettings()
        self.camera = camera
        self.time_offset = time_offset
        self.name_strangers = name_strangers
        # Confirmed tracks: the identity last announced, (person, identified).
        self._announced: dict[int, tuple[str | None, bool]] = {}
        self._overdue: set[int] = set()  # tracks that got their "unidentified" event
        # Tracks close to another at the last detection, and which one.
        self._near: dict[int, int] = {}
        self._parted: dict[int, int] = {}  # tracks come apart, waiting for their next embedding
        self.swaps = 0  # pairs of tracks given back their own faces after a crossing
        self.splits = 0  # tracks split because their face changed to someone else's
        self._strangers: dict[int, str] = {}  # track -> unknown-N
        self._events: list[TrackEvent] = []
        self.tracker = Tracker(self.settings.tracker)
        self.reid = Reid(self.settings.reid)
        self._extra: dict[int, _Extra] = {}
        # Every ended track's record (thumbnail, embeddings), for a scan's summary; a daemon runs
        # for months and keeps none (they grew its memory by ~7 MB a minute on a busy camera).
        self.keep_records = keep_records
        self.finished: list[TrackRecord] = []
        self.detections = 0  # frames on which detection ran
        self.faces_seen = 0  # detected faces summed over those frames
        self.cut_detector = CutDetector(self.settings.cuts)
        self.cuts: list[float] = []  # times (ts) at which a new shot began (kept with the records)
        self.cut_count = 0
        self._observed_ts: float | None = None

    def observe(self, image_bgr: np.ndarray, ts: float) -> bool:
        """Call on every frame read, detection or not (process() does it for its own frames):
        at a hard cut every live track ends, so no track, and no name, crosses into another
        shot. True at a cut."""
        if ts == self._observed_ts:
            return False
        self._observed_ts = ts
        if not self.cut_detector.check(image_bgr):
            return False
        self.cut_count += 1
        if self.keep_records:
            self.cuts.append(ts)
        for track in self.tracker.finish():
            self._close(track, "scene_cut")
        return True

    def process(self, image_bgr: np.ndarray, ts: float, index: int,
                regions: list[tuple[int, int, int, int]] | None = None) -> FrameResult:
        """Detects (in `regions` of the frame only, when given), tracks, embeds when due."""
        self.observe(image_bgr, ts)
        detector = self.engine.detector
        faces = detector.detect(image_bgr) if regions is None else detector.detect_regions(image_bgr, regions)
        quality = assess(image_bgr, faces, self.settings.quality)
        update = self.tracker.update(faces, ts)
        for track in update.ended:
            self._close(track, "lost")
        faces = update.faces
        for track_id in update.started:
            self._emit("started", self.tracker.tracks[track_id])
        self.detections += 1
        self.faces_seen += len(faces)

        # Two faces close together may be swapped by the tracker: as soon as they part, both
        # are embedded again to check who each is. While boxes overlap, faces are half hidden:
        # no votes from them.
        close = close_partners(faces)
        for track_id in set(self._near) - set(close):
            self.reid.force(track_id)
            self._parted[track_id] = self._near[track_id]
        self._near = close
        crossing = overlapping(faces)
        due = []
        for i, track_id in enumerate(faces.track_id.tolist()):
            extra = self._extra.setdefault(track_id, _Extra(index, index))
            extra.last_index = index
            if quality.score[i] > extra.thumbnail_quality:
                extra.thumbnail = face_thumbnail(image_bgr, faces.xyxy[i])
                extra.thumbnail_quality = float(quality.score[i])
            if (self.engine.has_embedder and track_id not in crossing and quality.passed[i]
                    and self.reid.due(track_id, faces.xyxy[i], float(quality.score[i]))):
                due.append(i)
        if due:
            embedder = self.engine.embedder_loaded()
            vectors = embedder.embed(image_bgr, faces[due])
            matches = self.gallery.match(vectors, embedder.model_id, self.match_threshold)
            if self.settings.appearance:
                self._give_back_faces(faces, due, vectors)
            for i, vector, match in zip(due, vectors, matches, strict=True):
                track_id = int(faces.track_id[i])
                if self._someone_else(track_id, vector):
                    track_id = self._split(track_id, index)
                    faces.track_id[i] = track_id
                self.reid.record(track_id, match, vector, float(quality.score[i]))
                self._extra[track_id].qualities.append(float(quality.score[i]))
        for track_id in faces.track_id.tolist():
            self._announce(track_id, track_id in update.confirmed)
        identities = [self.identity(int(t)) for t in faces.track_id]
        events, self._events = self._events, []
        return FrameResult(index, ts, faces, identities, len(due), events)

    @property
    def split_below(self) -> float:
        return self.settings.split_below or self.engine.embedder_spec.split_floor

    def _likeness(self, track_id: int, vector: np.ndarray) -> float:
        """The face's cosine to the most similar earlier face of the track (-1: none yet)."""
        state = self.reid.tracks.get(track_id)
        if state is None or not state.vectors:
            return -1.0
        return float(np.max(np.stack(state.vectors) @ vector))

    def _give_back_faces(self, faces: Faces, due: list[int], vectors: np.ndarray) -> None:
        """Association by appearance after a crossing: when two tracks that just came apart
        are both embedded and each face is the other track's person, the tracker swapped them
        while they overlapped; the two tracks swap places, so each keeps its person."""
        fresh = {int(faces.track_id[i]): (i, vector) for i, vector in zip(due, vectors, strict=True)}
        for a in list(fresh):
            b = self._parted.get(a)
            if b is None or b not in fresh or a > b:
                continue
            (ia, va), (ib, vb) = fresh[a], fresh[b]
            own = (self._likeness(a, va), self._likeness(b, vb))
            swapped = (self._likeness(b, va), self._likeness(a, vb))
            if crossed(own, swapped, self.split_below):
                self.tracker.swap(a, b)
                faces.track_id[ia], faces.track_id[ib] = b, a
                self.swaps += 1
        for track_id in fresh:
            self._parted.pop(track_id, None)

    def _someone_else(self, track_id: int, vector: np.ndarray) -> bool:
        """The new face is less like every earlier face of the track than a person's own photos
        almost ever are (the embedder's calibration)."""
        likeness = self._likeness(track_id, vector)
        return self.settings.appearance and -1.0 < likeness < self.split_below

    def _split(self, track_id: int, index: int) -> int:
        """Ends the track before this face and starts a new one with it; returns the new id."""
        old, new_id = self.tracker.split(track_id)
        self.splits += 1
        self._close(old, "appearance")
        self._extra[new_id] = _Extra(index, index)
        self._emit("started", self.tracker.tracks[new_id])
        return new_id

    @property
    def match_threshold(self) -> float:
        return self.settings.match_threshold or self.engine.match_threshold

    def identity(self, track_id: int) -> Identity:
        """The track's vote, with a stranger's lasting id in place of unknown."""
        track = self.tracker.tracks.get(track_id)
        vote = self.reid.identity(track_id, bool(track and track.confirmed))
        if vote.person is None and vote.identified and track_id in self._strangers:
            return Identity(self._strangers[track_id], vote.similarity, track_id, vote.votes, vote.confirmed)
        return vote

    def _announce(self, track_id: int, just_confirmed: bool) -> None:
        track = self.tracker.tracks[track_id]
        if not track.confirmed:
            return
        if self.name_strangers:
            self._name_stranger(track_id)
        identity = self.identity(track_id)
        now = (identity.person, identity.identified)
        if just_confirmed:
            self._announced[track_id] = now
            self._emit("confirmed", track)
        elif self._announced.get(track_id, now) != now:
            previous = self._announced[track_id][0]
            self._announced[track_id] = now
            self._emit("identity_changed", track, previous)
        wait = self.settings.unidentified_after_s
        if (not identity.identified and wait > 0 and track.last_ts - track.first_ts >= wait
                and track_id not in self._overdue):
            self._overdue.add(track_id)
            self._emit("unidentified", track)

    def _name_stranger(self, track_id: int) -> None:
        state = self.reid.tracks.get(track_id)
        if state is None or not state.vectors or track_id in self._strangers:
            return
        vote = self.reid.identity(track_id)
        if vote.person is not None or not vote.identified:  # only a clear "unknown" is a stranger
            return
        embedder = self.engine.embedder_loaded()
        name = self.gallery.stranger_for(np.stack(state.vectors), embedder.model_id,
                                         self.match_threshold + CLUSTER_MARGIN, self.camera)
        self._strangers[track_id] = name
        extra = self._extra.get(track_id)
        if extra is not None and extra.thumbnail is not None and extra.thumbnail.size:
            self.gallery.set_picture(name, card_jpeg(extra.thumbnail), extra.thumbnail_quality)

    def _emit(self, kind: str, track: Track, previous: str | None = None, reason: str | None = None) -> None:
        identity = self.identity(track.track_id)
        box = tuple(float(v) for v in track.xyxy)
        self._events.append(TrackEvent(kind, self.camera, track.track_id, track.last_ts + self.time_offset,
                                       track.first_ts + self.time_offset, box,  # type: ignore[arg-type]
                                       identity.person, identity.similarity, track.confirmed, previous,
                                       reason=reason, identified=identity.identified))

    def finish(self) -> list[TrackRecord]:
        """Ends every live track; returns all tracks recorded so far (their "ended" events
        are in `take_events()`)."""
        for track in self.tracker.finish():
            self._close(track, "finished")
        return self.finished

    def thumbnail(self, track_id: int) -> np.ndarray | None:
        """The best face seen so far of a live track (BGR), for snapshots."""
        extra = self._extra.get(track_id)
        return None if extra is None else extra.thumbnail

    def tick(self, ts: float) -> list[TrackEvent]:
        """No frame came (camera down): tracks unseen for too long still end, on time."""
        for track in self.tracker.expire(ts):
            self._close(track, "lost")
        return self.take_events()

    def take_events(self) -> list[TrackEvent]:
        events, self._events = self._events, []
        return events

    def _close(self, track: Track, reason: str) -> None:
        self._emit("ended", track, reason=reason)
        self._announced.pop(track.track_id, None)
        self._overdue.discard(track.track_id)
        self._parted.pop(track.track_id, None)
        stranger = self._strangers.pop(track.track_id, None)
        if stranger is not None:
            try:
                self.gallery.add_sighting(stranger, self.camera, track.first_ts + self.time_offset,
                                          track.last_ts + self.time_offset)
            except GalleryError as exc:  # the owner named or removed the stranger while in view
                log.info("sighting of %s not stored: %s", stranger, exc)
        extra = self._extra.pop(track.track_id)
        state = self.reid.forget(track.track_id)
        if not self.keep_records:
            return
        dim = self.engine.embedder_spec.output_size if self.engine.has_embedder else 0
        vectors = np.stack(state.vectors) if state and state.vectors else np.empty((0, dim), np.float32)
        identity = (state.identity(track.track_id, track.confirmed, self.reid.settings.margin) if state
                    else Identity(None, -1.0, track.track_id, 0, track.confirmed, identified=False))
        self.finished.append(TrackRecord(
            track.track_id, extra.first_index, extra.last_index, track.first_ts, track.last_ts, track.hits,
            track.confirmed, identity, vectors, np.array(extra.qualities, np.float32), extra.thumbnail,
            extra.thumbnail_quality, state.switches if state else 0, reason))
