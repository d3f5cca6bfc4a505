"""Motion on a camera's small grey picture, against a slowly adapting background (pure).

Modelled on Frigate's motion detector, whose settings Frigate users know: the picture is
sampled to about `frame_height` rows, blurred (sensor noise is per pixel; a person is not),
and compared with a running average of past pictures. Pixels that differ by more than
`threshold` (of 255) are motion; areas smaller than `contour_area` sampled pixels are noise.
When most of the picture changes at once (lights switched, the sun behind a cloud, the
camera's day/night switch), that is a change of lighting, not motion: the background is
reset to the new picture. Areas outside the camera's zone do not count.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edged.tracking.quality import zone_pixels


@dataclass(frozen=True)
class MotionSettings:
    enabled: bool = True
    frame_height: int = 120  # rows of the sampled picture motion is found on
    threshold: int = 30  # a pixel differing from the background by more than this (of 255) moved
    contour_area: int = 10  # sampled pixels: smaller moving areas are noise
    lightning_threshold: float = 0.8  # this share of the picture changing at once is lighting, not motion
    frame_alpha: float = 0.01  # how fast the background takes in each new picture


@dataclass(frozen=True)
class Motion:
    """Where the picture moved, in the full frame's pixels: boxes (x1, y1, x2, y2), and the
    share of the (zone's) picture that moved."""

    boxes: list[tuple[int, int, int, int]]
    fraction: float
    lighting_change: bool = False

    @property
    def moving(self) -> bool:
        return bool(self.boxes)


NONE = Motion([], 0.0)


class MotionDetector:
    """`check(grey, frame_size)` on each picture a camera delivers, in order."""

    def __init__(self, settings: MotionSettings | None = None,
                 zone: tuple[tuple[float, float], ...] | None = None) -> None:
        """`zone`: the polygon motion counts in, as the quality zone gives it (fractions of the
        frame or pixels); None: everywhere."""
        self.settings = settings or MotionSettings()
        self.zone = zone
        self._background: np.ndarray | None = None
        self._look: np.ndarray | None = None  # the picture at the last whole-frame detection
        self._mask: np.ndarray | None = None
        self._kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))

    def _zone_mask(self, shape: tuple[int, int], frame_size: tuple[int, int]) -> np.ndarray | None:
        if not self.zone:
            return None
        if self._mask is None or self._mask.shape != shape:
            mask = np.zeros(shape, np.uint8)
            scale = np.array([frame_size[0] / shape[1], frame_size[1] / shape[0]], np.float32)
            points = np.round(zone_pixels(self.zone, frame_size) / scale).astype(np.int32)
            cv2.fillPoly(mask, [points], 255)
            self._mask = mask
        return self._mask

    def check(self, grey: np.ndarray, frame_size: tuple[int, int]) -> Motion:
        """`grey`: the sampled picture (uint8, about frame_height rows); `frame_size`: the full
        frame's (width, height), for boxes in its pixels."""
        s = self.settings
        if not s.enabled:
            return NONE
        scale = (frame_size[0] / grey.shape[1], frame_size[1] / grey.shape[0])
        picture = cv2.GaussianBlur(grey, (3, 3), 0)
        if self._background is None or self._background.shape != picture.shape:
            self._background = picture.astype(np.float32)
            return NONE
        delta = cv2.absdiff(picture, cv2.convertScaleAbs(self._background))
        _, moved = cv2.threshold(delta, s.threshold, 255, cv2.THRESH_BINARY)
        mask = self._zone_mask(moved.shape, frame_size)
        if mask is not None:
            moved = cv2.bitwise_and(moved, mask)
        area = float(np.count_nonzero(mask)) if mask is not None else float(moved.size)
        fraction = float(np.count_nonzero(moved)) / max(area, 1.0)
        if fraction > s.lightning_threshold:
            self._background = picture.astype(np.float32)  # a new lighting: start again from it
            return Motion([], fraction, lighting_change=True)
        cv2.accumulateWeighted(picture, self._background, s.frame_alpha)
        return Motion(self._areas(moved, scale) if fraction else [], fraction)

    def look_taken(self, grey: np.ndarray) -> None:
        """The sampled picture a whole-frame detection looked at: `changed_since_look` compares
        later pictures with it."""
        self._look = cv2.GaussianBlur(grey, (3, 3), 0)

    def changed_since_look(self, grey: np.ndarray, frame_size: tuple[int, int]) -> bool:
        """Whether the picture differs from the last whole-frame detection's, as motion counts
        a difference (threshold, contour area, zone). Against that fixed picture, not the
        adapting background: someone who arrived too slowly for motion still shows here."""
        if self._look is None or self._look.shape != grey.shape:
            return True
        delta = cv2.absdiff(cv2.GaussianBlur(grey, (3, 3), 0), self._look)
        _, changed = cv2.threshold(delta, self.settings.threshold, 255, cv2.THRESH_BINARY)
        mask = self._zone_mask(changed.shape, frame_size)
        if mask is not None:
            changed = cv2.bitwise_and(changed, mask)
        return bool(self._areas(changed, (1.0, 1.0)))

    def _areas(self, moved: np.ndarray, scale: tuple[float, float]) -> list[tuple[int, int, int, int]]:
        """Boxes (in frame pixels) of the moved areas of at least contour_area sampled pixels."""
        moved = cv2.dilate(moved, self._kernel, iterations=2)
        contours, _ = cv2.findContours(moved, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        boxes = []
        for contour in contours:
            if cv2.contourArea(contour) < self.settings.contour_area:
                continue
            x, y, w, h = cv2.boundingRect(contour)
            boxes.append((int(x * scale[0]), int(y * scale[1]), int((x + w) * scale[0]), int((y + h) * scale[1])))
        return boxes
