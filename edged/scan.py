"""Offline video scan: who appears in a video file, frame by sampled frame (first version:
detection + recognition on every Nth frame; tracking comes with the tracker)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edged.engine import FaceEngine, FaceResult
from edged.errors import EdgedError
from edged.gallery import Gallery


@dataclass(frozen=True)
class SampledFrame:
    index: int
    ts: float  # seconds from the start of the video
    faces: list[FaceResult]


@dataclass
class ScanSummary:
    video: str
    fps: float
    frames: int = 0
    sampled: int = 0
    faces: int = 0
    seconds: float = 0.0  # processing time
    people: dict[str, list[float]] = field(default_factory=dict)  # name -> times seen
    unknown_faces: int = 0

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "video": self.video, "frames": self.frames, "sampled_frames": self.sampled,
            "video_seconds": round(self.duration, 3), "processing_seconds": round(self.seconds, 3),
            "faces": self.faces, "unknown_faces": self.unknown_faces,
            "people": {name: {"first_seen": round(min(ts), 3), "last_seen": round(max(ts), 3),
                              "sightings": len(ts)} for name, ts in sorted(self.people.items())},
        }


def read_frames(path: Path, every: int = 1) -> tuple[float, Iterator[tuple[int, np.ndarray]]]:
    """(fps, iterator of (index, BGR frame)) for every `every`-th frame; an error naming the
    file if it cannot be opened. Skipped frames are only grabbed: decoded, never converted."""
    if not path.is_file():
        raise EdgedError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise EdgedError(f"{path}: cannot open as a video")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0

    def frames() -> Iterator[tuple[int, np.ndarray]]:
        index = 0
        try:
            while capture.grab():
                if index % every == 0:
                    ok, frame = capture.retrieve()
                    if not ok:
                        return
                    yield index, frame
                index += 1
        finally:
            capture.release()

    return fps, frames()


def frame_count(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def scan_video(path: Path, engine: FaceEngine, gallery: Gallery, every: int,
               summary_only: bool = False) -> Iterator[SampledFrame | ScanSummary]:
    """Yields each sampled frame's faces as it goes, then the summary."""
    fps, frames = read_frames(path, every)
    summary = ScanSummary(video=str(path), fps=fps)
    start = time.perf_counter()
    for index, frame in frames:
        faces = engine.identify(frame, gallery)
        ts = index / fps
        summary.sampled += 1
        summary.faces += len(faces)
        for face in faces:
            if face.identity is not None and face.identity.person:
                summary.people.setdefault(face.identity.person, []).append(ts)
            else:
                summary.unknown_faces += 1
        if not summary_only:
            yield SampledFrame(index, ts, faces)
    summary.seconds = time.perf_counter() - start
    summary.frames = frame_count(path)
    yield summary
