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
        self.every = max(1, every)
        self.frames_read = 0

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        try:
            while self._capture.grab():
                index = self.frames_read
                self.frames_read += 1
                if index % self.every == 0:
                    ok, frame = self._capture.retrieve()
                    if ok:
                        yield index, frame
        finally:
            self._capture.release()


def scan_video(path: Path, engine: FaceEngine, gallery: Gallery, every: int,
               summary_only: bool = False) -> Iterator[SampledFrame | ScanSummary]:
    """Yields each sampled frame's faces as it goes, then the summary."""
    reader = VideoReader(path, every)
    summary = ScanSummary(video=str(path), fps=reader.fps)
    start = time.perf_counter()
    for index, frame in reader:
        faces = engine.identify(frame, gallery)
        ts = index / reader.fps
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
    summary.frames = reader.frames_read
    yield summary
