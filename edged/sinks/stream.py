"""The live view: frames annotated (boxes, names, privacy blur) and JPEG-encoded only while
someone watches, once per frame and width for all viewers, at most `max_width` pixels wide (a
viewer may ask for less: `?width=`, snapped to a few fixed widths so encodings stay shared); a
bounded number of viewers. The web server (web.py) serves it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

import cv2
import numpy as np

from edged.config import exposure_problem
from edged.errors import ConfigError
from edged.gallery import is_anonymous_name
from edged.memory import release_free_memory
from edged.types import Faces, Frame, Identity
from edged.vision.draw import KNOWN, PLAIN, UNKNOWN, draw_face

log = logging.getLogger("edged.stream")
WIDTHS = (320, 480, 640, 960, 1280, 1920)  # the widths a viewer may ask for (snapped down to one)


def check_exposure(bind: str, token: str, password: str = "") -> None:
    problem = exposure_problem(bind, token, password)
    if problem:
        raise ConfigError(problem)


def blur_faces(image: np.ndarray, faces: Faces, identities: list[Identity]) -> None:
    """Blurs, in place, the faces of people who are not enrolled (and faces not yet identified)."""
    h, w = image.shape[:2]
    for i, box in enumerate(faces.xyxy):
        identity = identities[i] if i < len(identities) else Identity(None, -1.0)  # no answer yet: unknown
        if identity.person is not None and not is_anonymous_name(identity.person):
            continue
        x1, y1, x2, y2 = (int(v) for v in box)
        pad = int(0.15 * max(x2 - x1, y2 - y1))
        x1, y1, x2, y2 = max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, w), min(y2 + pad, h)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        region = image[y1:y2, x1:x2]
        small = cv2.resize(region, (max((x2 - x1) // 12, 1), max((y2 - y1) // 12, 1)), interpolation=cv2.INTER_AREA)
        # Twelve times coarser, then smoothed back up: no identity left, and no block edges.
        image[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)


def annotate(image: np.ndarray, faces: Faces, identities: list[Identity], fps: float, blur: bool) -> np.ndarray:
    """A copy of the frame with boxes, track ids, names and similarities, and the fps."""
    canvas = image.copy()
    if blur:
        blur_faces(canvas, faces, identities)
    taken: list[tuple[int, int, int, int]] = []  # labels placed so far: the next avoids them
    for i in range(len(faces)):
        identity = identities[i] if i < len(identities) else Identity(None, -1.0)
        track = int(faces.track_id[i])
        if identity.person and not is_anonymous_name(identity.person):
            label, color = f"#{track} {identity.person} {identity.similarity:.2f}", KNOWN
        elif identity.person:
            label, color = f"#{track} {identity.person}", UNKNOWN
        else:
            label, color = f"#{track}", PLAIN if not identity.confirmed else UNKNOWN
        draw_face(canvas, faces.xyxy[i], None, label, color, taken)
    cv2.putText(canvas, f"{fps:.1f} fps", (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return canvas


@dataclass
class _Latest:
    # A Frame is converted to BGR only when a viewer asks for it: nobody watching costs nothing.
    image: np.ndarray | Frame | None = None
    faces: Faces | None = None
    identities: list[Identity] | None = None
    sequence: int = 0


class LiveView:
    """`update()` from the pipeline stores references only; `jpeg()` encodes on demand, one
    thread at a time: viewers asking for the same frame wait for that one encoding."""

    def __init__(self, quality: int = 80, blur_unknowns: bool = False, max_width: int = 1280,
                 max_viewers: int = 10) -> None:
        self.quality = quality
        self.blur_unknowns = blur_unknowns
        self.max_width = max_width
        self.max_viewers = max_viewers
        self.fps = 0.0
        self.watchers = 0
        self.encoded = 0  # frames encoded so far: stays put while nobody watches
        self._latest = _Latest()
        self._cache: dict[int, tuple[int, bytes]] = {}  # width -> (sequence, JPEG)
        self._encoding: set[int] = set()  # widths being encoded now
        self._cond = threading.Condition()

    def width_for(self, asked: int) -> int:
        """The width a viewer gets: `asked` snapped down to one of WIDTHS (at least the
        smallest), never above max_width; 0 asks for max_width (0 there: as captured)."""
        if asked <= 0:
            return self.max_width
        snapped = max([w for w in WIDTHS if w <= asked] or [WIDTHS[0]])
        return min(snapped, self.max_width) if self.max_width else snapped

    def watch(self) -> bool:
        """A viewer arrives; False when there are `max_viewers` already."""
        with self._cond:
            if self.watchers >= self.max_viewers:
                return False
            self.watchers += 1
            return True

    def unwatch(self) -> None:
        with self._cond:
            self.watchers -= 1
            last = self.watchers == 0
        if last:
            release_free_memory()

    def update(self, image: np.ndarray | Frame, faces: Faces, identities: list[Identity], fps: float) -> None:
        with self._cond:
            self._latest = _Latest(image, faces, identities, self._latest.sequence + 1)
            self.fps = fps
            self._cond.notify_all()

    def jpeg(self, after: int = 0, timeout: float = 5.0, width: int = 0) -> tuple[int, bytes] | None:
        """The newest frame later than `after`, annotated and encoded at the viewer's width
        (see width_for): (sequence, JPEG)."""
        width = self.width_for(width)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                latest = self._latest
                if latest.image is not None and latest.sequence > after:
                    cached = self._cache.get(width)
                    if cached and cached[0] == latest.sequence:
                        return cached
                    if width not in self._encoding:
                        break  # this thread encodes it, for everyone at this width
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(remaining)
            self._encoding.add(width)
        data = None
        try:
            data = self._encode(latest, width)
        finally:
            with self._cond:
                self._encoding.discard(width)
                if data is not None:
                    self.encoded += 1
                    self._cache[width] = (latest.sequence, data)
                self._cond.notify_all()
        return None if data is None else (latest.sequence, data)

    def _encode(self, latest: _Latest, target: int) -> bytes | None:
        assert latest.image is not None
        image = latest.image.image if isinstance(latest.image, Frame) else latest.image
        faces = latest.faces or Faces.empty()
        width = image.shape[1]
        if target and width > target:  # scale first: cheaper, and labels stay readable
            scale = target / width
            image = cv2.resize(image, (target, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            faces = replace(faces, xyxy=faces.xyxy * scale, landmarks=faces.landmarks * scale)
        picture = annotate(image, faces, latest.identities or [], self.fps, self.blur_unknowns)
        ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        return data.tobytes() if ok else None
