"""Values that flow between stages: Frame, Faces (struct of arrays), Identity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np


class Decoded(Protocol):
    """A decoder's picture, converted only when something uses it (edged/io/video.py)."""

    @property
    def size(self) -> tuple[int, int]: ...

    def bgr(self) -> np.ndarray: ...

    def small_grey(self, rows: int) -> np.ndarray: ...

    def small_bgr(self, rows: int) -> np.ndarray: ...


class Frame:
    """One picture from a source. `ts` is seconds on the source's monotonic clock.

    `image` (BGR, full size) is made on first use: most frames of a camera are only looked at
    small, for motion and scene cuts (`small_grey`, `small_bgr`), and converting every 1080p
    frame to BGR cost as much as a third of decoding it."""

    __slots__ = ("camera", "index", "ts", "_image", "_decoded", "_small")

    def __init__(self, camera: str, index: int, ts: float, image: np.ndarray | None = None,
                 decoded: Decoded | None = None) -> None:
        if image is None and decoded is None:
            raise ValueError("a frame needs an image or a decoded picture")
        self.camera = camera
        self.index = index
        self.ts = ts
        self._image = image
        self._decoded = decoded
        self._small: dict[tuple[str, int], np.ndarray] = {}

    @property
    def image(self) -> np.ndarray:
        """(H, W, 3) uint8 BGR, as OpenCV gives it."""
        if self._image is None:
            assert self._decoded is not None
            self._image = self._decoded.bgr()
        return self._image

    @property
    def converted(self) -> bool:
        """The full-size BGR picture has been made (for the benchmarks' and tests' counts)."""
        return self._image is not None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), without converting anything."""
        if self._image is not None:
            return self._image.shape[1], self._image.shape[0]
        assert self._decoded is not None
        return self._decoded.size

    def small_grey(self, rows: int) -> np.ndarray:
        """About `rows` rows of the picture's brightness (a strided sample: no filtering)."""
        return self._sample("grey", rows)

    def small_bgr(self, rows: int) -> np.ndarray:
        """About `rows` rows of the picture in colour (a strided sample)."""
        return self._sample("bgr", rows)

    def _sample(self, kind: str, rows: int) -> np.ndarray:
        """A small sample, made once per frame: from the decoder's planes, or from BGR."""
        key = (kind, rows)
        if key not in self._small:
            if self._image is None:
                assert self._decoded is not None
                decoded = self._decoded
                self._small[key] = decoded.small_grey(rows) if kind == "grey" else decoded.small_bgr(rows)
            elif kind == "grey":
                self._small[key] = cv2.cvtColor(self.small_bgr(rows), cv2.COLOR_BGR2GRAY)
            else:
                step = stride_for(self._image.shape[0], rows)
                self._small[key] = np.ascontiguousarray(self._image[::step, ::step])
        return self._small[key]


def stride_for(height: int, rows: int) -> int:
    return max(1, height // max(rows, 1))


@dataclass
class Faces:
    """N faces of one frame, one array per attribute, like supervision's Detections.

    xyxy:      (N, 4) float32, source-frame pixels, x1 y1 x2 y2
    score:     (N,) float32, detector face probability in 0..1
    landmarks: (N, 5, 2) float32, pixels: left eye, right eye, nose, mouth left, mouth right
    track_id:  (N,) int64, -1 until a tracker assigns one
    embedding: (N, D) float32 L2-normalised, or None until embedded
    """

    xyxy: np.ndarray
    score: np.ndarray
    landmarks: np.ndarray
    track_id: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    embedding: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.xyxy)
        if self.track_id.size == 0 and n:
            self.track_id = np.full(n, -1, np.int64)
        checks = [
            ("xyxy", self.xyxy, (n, 4)),
            ("score", self.score, (n,)),
            ("landmarks", self.landmarks, (n, 5, 2)),
            ("track_id", self.track_id, (n,)),
        ]
        for name, array, shape in checks:
            if array.shape != shape:
                raise ValueError(f"Faces.{name} has shape {array.shape}, expected {shape}")
        if self.embedding is not None and (self.embedding.ndim != 2 or len(self.embedding) != n):
            raise ValueError(f"Faces.embedding has shape {self.embedding.shape}, expected ({n}, D)")

    @classmethod
    def empty(cls) -> Faces:
        return cls(np.empty((0, 4), np.float32), np.empty(0, np.float32),
                   np.empty((0, 5, 2), np.float32), np.empty(0, np.int64))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: np.ndarray | slice | list[int]) -> Faces:
        """Boolean-mask or index-array selection: `faces[faces.score > 0.9]`."""
        return Faces(self.xyxy[index], self.score[index], self.landmarks[index],
                     self.track_id[index], None if self.embedding is None else self.embedding[index])

    @property
    def width(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def height(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]

    @property
    def area(self) -> np.ndarray:
        return self.width * self.height


@dataclass(frozen=True)
class Identity:
    """Who a face or track is. `person` None means unknown when `identified`, and "not yet
    identified" when not (a track never embedded, or whose vote has no clear leader)."""

    person: str | None
    similarity: float  # cosine similarity to the best gallery match, -1..1
    track_id: int = -1
    votes: int = 0
    confirmed: bool = False
    identified: bool = True  # a gallery match is an answer; a track's vote may not be one yet
