"""Scenario videos with exact truth, built from the real photos in ../shared/data/faces:
people's faces moving across a background, entering and leaving at known frames. Used by the
tests and by tools/bench_video.py."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

DATA = Path(os.environ.get("EDGED_SHARED", Path(__file__).resolve().parent.parent.parent / "shared")) / "data"
FPS = 25.0


@dataclass(frozen=True)
class Appearance:
    """One stretch on screen: visible on frames first..last (inclusive), moving in a straight
    line from `start` to `end` (top-left corner of the face, pixels)."""

    first: int
    last: int
    start: tuple[float, float]
    end: tuple[float, float]
    height: int = 0  # the face patch's height in pixels; 0 = the scenario's face_height

    def position(self, frame: int) -> tuple[int, int]:
        share = (frame - self.first) / max(self.last - self.first, 1)
        x = self.start[0] + share * (self.end[0] - self.start[0])
        y = self.start[1] + share * (self.end[1] - self.start[1])
        return int(round(x)), int(round(y))


@dataclass(frozen=True)
class Actor:
    person: str  # folder name under faces/
    photo: str  # file in that folder
    appearances: tuple[Appearance, ...]


def face_patch(detector: Any, person: str, photo: str, height: int) -> np.ndarray:
    """The person's face from the photo with some hair and chin around it, `height` px tall."""
    path = DATA / "faces" / person / photo
    image = cv2.imread(str(path))
    if image is None:
        raise FileNotFoundError(f"{path}: cannot read the photo for a scenario")
    faces = detector.detect(image)
    x1, y1, x2, y2 = faces.xyxy[int(np.argmax(faces.area))]
    w, h = x2 - x1, y2 - y1
    left, top = int(max(x1 - 0.3 * w, 0)), int(max(y1 - 0.3 * h, 0))
    right, bottom = int(min(x2 + 0.3 * w, image.shape[1])), int(min(y2 + 0.2 * h, image.shape[0]))
    crop = image[top:bottom, left:right]
    width = int(round(crop.shape[1] * height / crop.shape[0]))
    return cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)


# Wall colours (BGR, top of the frame) of successive shots, for scenarios with scene cuts.
SHOT_COLOURS = ((120, 130, 110), (60, 90, 150), (150, 110, 70), (90, 150, 90))


def background(width: int, height: int, shot: int = 0) -> np.ndarray:
    """A calm, faceless backdrop: a wall-like gradient with a little fixed texture; each shot
    of a scenario with cuts gets its own colours and texture, as another scene would."""
    rng = np.random.default_rng(7 + shot)
    ys = np.linspace(0, 1, height)[:, None]
    b, g, r = SHOT_COLOURS[shot % len(SHOT_COLOURS)]
    base = np.dstack([b + 60 * ys, g + 40 * ys, r + 30 * ys]) * np.ones((1, width, 1))
    noise = cv2.GaussianBlur(rng.normal(0, 12, (height, width, 3)), (0, 0), 3)
    return np.clip(base + noise, 0, 255).astype(np.uint8)


STAMP_BITS = 12
STAMP_CELL = 12


def stamp(canvas: np.ndarray, index: int) -> None:
    """Writes the frame number as a row of black/white cells at the bottom left."""
    y = canvas.shape[0] - STAMP_CELL
    for bit in range(STAMP_BITS):
        value = 255 if index >> bit & 1 else 0
        canvas[y:, bit * STAMP_CELL:(bit + 1) * STAMP_CELL] = value


def read_stamp(image: np.ndarray) -> int:
    """The frame number `stamp` wrote (survives video compression: cells are 12 px)."""
    y = image.shape[0] - STAMP_CELL
    index = 0
    for bit in range(STAMP_BITS):
        cell = image[y + 3:-3, bit * STAMP_CELL + 3:(bit + 1) * STAMP_CELL - 3]
        if cell.mean() > 128:
            index |= 1 << bit
    return index


def render(path: Path, actors: list[Actor], frames: int, detector: Any, size: tuple[int, int] = (640, 360),
           face_height: int = 110, stamped: bool = False, cuts: tuple[int, ...] = (), noise: float = 0.0) -> Path:
    """Writes the scenario to an MP4 file (MPEG-4 part 2, as OpenCV writes); actors later in
    the list pass in front; `stamped` marks each frame with its number; at each frame in
    `cuts` a new shot begins (another backdrop, as a hard cut to another scene); `noise`: a
    camera sensor's noise, new in every frame (standard deviation, of 255)."""
    rng = np.random.default_rng(11)
    width, height = size
    patches = {(a.person, a.photo, s.height or face_height): face_patch(detector, a.person, a.photo,
                                                                        s.height or face_height)
               for a in actors for s in a.appearances}
    backdrops = [background(width, height, shot) for shot in range(len(cuts) + 1)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), FPS, size)
    for frame in range(frames):
        canvas = backdrops[sum(frame >= cut for cut in cuts)].copy()
        for actor in actors:
            for shown in actor.appearances:
                if shown.first <= frame <= shown.last:
                    patch = patches[(actor.person, actor.photo, shown.height or face_height)]
                    x, y = shown.position(frame)
                    ph, pw = patch.shape[:2]
                    x0, y0 = max(x, 0), max(y, 0)
                    x1, y1 = min(x + pw, width), min(y + ph, height)
                    if x1 > x0 and y1 > y0:
                        canvas[y0:y1, x0:x1] = patch[y0 - y:y1 - y, x0 - x:x1 - x]
        if noise:
            canvas = np.clip(canvas + rng.normal(0, noise, canvas.shape), 0, 255).astype(np.uint8)
        if stamped:
            stamp(canvas, frame)
        writer.write(canvas)
    writer.release()
    return path


def walk(first: int, last: int, x0: float, x1: float, y: float = 110) -> Appearance:
    return Appearance(first, last, (x0, y), (x1, y))


def to_h264(source: Path, target: Path, gop: int) -> Path:
    """The same video as H.264 with a keyframe every `gop` frames (for the clips' packet path)."""
    from edged.io.video import encode

    capture = cv2.VideoCapture(str(source))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    encode(frames, FPS, target, crf=18, gop=gop)
    return target
