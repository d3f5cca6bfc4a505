"""Offline video scan: who appears in a video file, and exactly when.

Detection runs on every `detect_every`-th frame; tracks carry faces between detections; each
track is embedded rarely (back-off) and voted an identity; tracks of the same enrolled person
merge by name, unknown ones merge by face into lasting anonymous ids (`unknown-N`).
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np

from edged.engine import FaceEngine
from edged.errors import EdgedError
from edged.gallery import Gallery
from edged.tracking.faces import FaceTracking, TrackingSettings, TrackRecord
from edged.tracking.unknowns import UnknownClusters

# Four detections a second: people on foot cross a frame in seconds, and tracks carry their
# faces in between. It is what lets a 2-core box scan 1080p video at twice real time.
DEFAULT_DETECT_FPS = 4.0


def detect_every(path: Path, detect_fps: float) -> int:
    """Frames between detections for `detect_fps` detections per second of this video."""
    if detect_fps <= 0:
        raise EdgedError(f"--detect-fps must be > 0, not {detect_fps}")
    capture = cv2.VideoCapture(str(path))
    fps = (capture.get(cv2.CAP_PROP_FPS) if capture.isOpened() else 0.0) or 25.0
    capture.release()
    return max(1, round(fps / detect_fps))


class VideoReader:
    """Every `every`-th frame of a video file as (index, BGR frame); counts all frames read.

    Skipped frames are only grabbed (decoded, never converted to BGR), which is most of the
    saving frame sampling can make on the reading side.
    """

    def __init__(self, path: Path, every: int = 1) -> None:
        if not path.is_file():
            raise EdgedError(f"{path}: no such video file")
        self._capture = cv2.VideoCapture(str(path))
        if not self._capture.isOpened():
            raise EdgedError(f"{path}: cannot open as a video")
        self.fps = self._capture.get(cv2.CAP_PROP_FPS) or 25.0
        self.total = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))  # an estimate, for progress
        self.every = max(1, every)
        self.frames_read = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        """Decoding runs in its own thread (OpenCV releases the GIL), a few frames ahead, so
        that it overlaps with inference instead of adding to it."""
        frames: queue.Queue[tuple[int, np.ndarray] | None] = queue.Queue(maxsize=4)
        stop = threading.Event()

        def decode() -> None:
            try:
                while not stop.is_set() and self._capture.grab():
                    index = self.frames_read
                    self.frames_read += 1
                    if index % self.every == 0:
                        ok, frame = self._capture.retrieve()
                        if ok:
                            frames.put((index, frame))
            finally:
                frames.put(None)

        worker = threading.Thread(target=decode, name="edged-decode", daemon=True)
        worker.start()
        try:
            while (item := frames.get()) is not None:
                yield item
        finally:
            stop.set()
            while worker.is_alive():  # unblock a producer waiting on a full queue
                try:
                    frames.get_nowait()
                except queue.Empty:
                    worker.join(0.05)
            self._capture.release()


@dataclass(frozen=True)
class Interval:
    start: float  # seconds
    end: float
    first_frame: int
    last_frame: int


@dataclass
class PersonResult:
    name: str
    anonymous: bool
    intervals: list[Interval]
    tracks: list[int]
    similarity: float  # mean similarity of the votes (enrolled people), -1 for unknown ones
    thumbnail: np.ndarray | None
    vectors: np.ndarray  # (K, D) best embeddings, for enrolling from a video
    new: bool = False  # an anonymous id created by this scan
    # Where each of `vectors` was taken: its track's time on screen, in seconds, so that
    # the owner can check whom they are about to enroll.
    vector_spans: list[tuple[float, float]] = field(default_factory=list)

    @property
    def first_seen(self) -> float:
        return self.intervals[0].start

    @property
    def last_seen(self) -> float:
        return self.intervals[-1].end


@dataclass
class ScanResult:
    video: str
    fps: float
    frames: int
    detect_every: int
    detections: int
    faces_seen: int
    embeddings: int
    processing_seconds: float
    embedder: str
    people: list[PersonResult] = field(default_factory=list)
    confirmed_tracks: int = 0
    unconfirmed_tracks: int = 0
    unidentified_tracks: int = 0  # confirmed, but no face good enough to embed
    identity_switches: int = 0
    scene_cuts: list[float] = field(default_factory=list)  # seconds at which a new shot began

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps else 0.0

    @property
    def embeddings_per_frame(self) -> float:
        return self.embeddings / max(self.frames, 1)

    @property
    def faces_per_frame(self) -> float:
        return self.faces_seen / max(self.detections, 1)

    def to_json(self, thumbnails: dict[str, str] | None = None) -> dict[str, object]:
        speed = self.duration / self.processing_seconds if self.processing_seconds else 0.0
        return {
            "version": 1, "video": self.video, "fps": round(self.fps, 3), "frames": self.frames,
            "video_seconds": round(self.duration, 3), "processing_seconds": round(self.processing_seconds, 3),
            "speed_vs_real_time": round(speed, 2), "embedder": self.embedder,
            "detect_every": self.detect_every, "detections": self.detections,
            "faces_per_detection": round(self.faces_per_frame, 3), "embeddings": self.embeddings,
            "embeddings_per_frame": round(self.embeddings_per_frame, 4),
            "embedding_reduction": round(self.faces_per_frame / max(self.embeddings_per_frame, 1e-9), 1),
            "identity_switches": self.identity_switches, "confirmed_tracks": self.confirmed_tracks,
            "unconfirmed_tracks": self.unconfirmed_tracks,
            "unidentified_tracks": self.unidentified_tracks,
            "scene_cuts": [round(t, 3) for t in self.scene_cuts],
            "people": [{
                "name": p.name, "anonymous": p.anonymous, "new": p.new,
                "first_seen": round(p.first_seen, 3), "last_seen": round(p.last_seen, 3),
                "similarity": round(p.similarity, 4), "tracks": len(p.tracks),
                "intervals": [{"start": round(i.start, 3), "end": round(i.end, 3), "first_frame": i.first_frame,
                               "last_frame": i.last_frame} for i in p.intervals],
                "thumbnail": (thumbnails or {}).get(p.name),
                "faces_kept": [{"start": round(a, 3), "end": round(b, 3)} for a, b in p.vector_spans],
            } for p in self.people],
        }


def merge_intervals(records: list[TrackRecord], fps: float, gap_frames: int) -> list[Interval]:
    """Track spans -> on-screen intervals; spans less than `gap_frames` apart are joined."""
    spans = sorted((r.first_index, r.last_index) for r in records)
    merged: list[list[int]] = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + gap_frames:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [Interval(first / fps, last / fps, first, last) for first, last in merged]


def best_vectors(records: list[TrackRecord], limit: int = 5) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The `limit` best embeddings of these tracks, and the span of the track each came from."""
    vectors = np.concatenate([r.vectors for r in records])
    qualities = np.concatenate([r.qualities for r in records])
    spans = [(r.first_ts, r.last_ts) for r in records for _ in range(len(r.vectors))]
    order = np.argsort(-qualities, kind="stable")[:limit]
    return vectors[order], [spans[i] for i in order]


def best_thumbnail(records: list[TrackRecord]) -> np.ndarray | None:
    best = max(records, key=lambda r: r.thumbnail_quality)
    return best.thumbnail


def group_people(records: list[TrackRecord], gallery: Gallery, model_id: str, threshold: float,
                 fps: float, gap_frames: int) -> tuple[list[PersonResult], int, int]:
    """Confirmed tracks -> people; returns (people, unconfirmed count, unidentified count)."""
    confirmed = [r for r in records if r.confirmed]
    known: dict[str, list[TrackRecord]] = {}
    unknown = []
    unidentified = 0
    for record in confirmed:
        if record.identity.person:
            known.setdefault(record.identity.person, []).append(record)
        elif len(record.vectors):
            unknown.append(record)
        else:
            unidentified += 1
    people = []
    for name, tracks in known.items():
        vectors, spans = best_vectors(tracks)
        people.append(PersonResult(name, False, merge_intervals(tracks, fps, gap_frames), [t.track_id for t in tracks],
                                   float(np.mean([t.identity.similarity for t in tracks])), best_thumbnail(tracks),
                                   vectors, vector_spans=spans))
    clusters = UnknownClusters(threshold, gallery.anonymous_vectors(model_id))
    for record in sorted(unknown, key=lambda r: r.first_index):
        clusters.assign(record.track_id, record.vectors)
    by_id = {r.track_id: r for r in unknown}
    for group in clusters.groups:
        if not group.members:
            continue
        tracks = [by_id[t] for t in group.members]
        new = group.name is None
        # A new stranger is named after their first track: the same video scanned again gives
        # the same id, whoever else has been enrolled since. A running count of who is still
        # unknown renumbered them, and `enroll --person new-N` then took the wrong face. The
        # scan's own id only: a lasting unknown-N comes when the scan enrolls.
        name = group.name or f"new-{min(group.members)}"
        vectors, spans = best_vectors(tracks)
        people.append(PersonResult(name, True, merge_intervals(tracks, fps, gap_frames),
                                   [t.track_id for t in tracks], -1.0, best_thumbnail(tracks),
                                   vectors, new, spans))
    people.sort(key=lambda p: (p.first_seen, p.name))
    return people, len(records) - len(confirmed), unidentified


def remember(result: ScanResult, gallery: Gallery, model_id: str, source: str) -> None:
    """Gives new strangers lasting `unknown-N` ids, and stores every person's sightings."""
    for person in result.people:
        if person.new:
            person.name = gallery.new_anonymous(person.vectors, model_id, source)
        for interval in person.intervals:
            gallery.add_sighting(person.name, source, interval.start, interval.end, len(person.tracks))


def scan_video(path: Path, engine: FaceEngine, gallery: Gallery, detect_every: int,
               settings: TrackingSettings | None = None, enroll: bool = False, source: str | None = None,
               progress: Callable[[int, int], None] | None = None) -> ScanResult:
    reader = VideoReader(path, detect_every)
    tracking = FaceTracking(engine, gallery, settings)
    start = time.perf_counter()
    for index, frame in reader:
        tracking.process(frame, index / reader.fps, index)
        if progress:
            progress(index + 1, reader.total)
    if progress:  # the count is known now: the end, whatever the container estimated
        progress(reader.frames_read, reader.frames_read)
    records = tracking.finish()
    embedder = engine.embedder_loaded()
    result = ScanResult(str(source or path), reader.fps, reader.frames_read, reader.every, tracking.detections,
                        tracking.faces_seen, tracking.reid.embeddings, 0.0, embedder.model_id)
    # A person hidden for less than a track's lifetime (behind someone) is still on screen.
    gap = max(detect_every, round(tracking.settings.tracker.max_age_s * reader.fps))
    result.people, result.unconfirmed_tracks, result.unidentified_tracks = group_people(
        records, gallery, embedder.model_id, tracking.match_threshold, reader.fps, gap)
    result.identity_switches = sum(r.switches for r in records if r.confirmed)
    result.confirmed_tracks = sum(r.confirmed for r in records)
    result.scene_cuts = list(tracking.cuts)
    result.processing_seconds = time.perf_counter() - start
    if enroll:
        remember(result, gallery, embedder.model_id, result.video)
    return result


class ScanProgress:
    """Progress on stderr: a bar redrawn in place on a terminal; for logs and the journal (no
    terminal), a line every `every_s` seconds and one at the end, so a long scan is never silent."""

    def __init__(self, every_s: float = 5.0, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream or sys.stderr
        self.every_s = every_s
        self.clock = clock
        self.terminal = self.stream.isatty()
        self.started = clock()
        self.last_line = self.started
        self.ended = False  # the bar has reached its end (and its newline)

    def __call__(self, done: int, total: int) -> None:
        share = min(done / total, 1.0) if total > 0 else 0.0
        if self.terminal:
            if total > 0 and not self.ended:
                self.ended = share >= 1
                bar = "#" * int(share * 30)
                print(f"\r  scanning [{bar:<30}] {share * 100:5.1f}%", end="" if share < 1 else "\n",
                      file=self.stream)
            return
        now = self.clock()
        if now - self.last_line >= self.every_s or (total > 0 and done >= total):
            self.last_line = now
            of = f" of ~{total}" if total > 0 else ""
            print(f"scan: {share * 100:.0f}% ({done}{of} frames) after {now - self.started:.0f} s", file=self.stream,
                  flush=True)
