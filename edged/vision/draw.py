"""Drawing boxes, landmarks and names on frames (annotated images, later the live view)."""

from __future__ import annotations

import cv2
import numpy as np

KNOWN = (80, 200, 60)  # BGR green
UNKNOWN = (40, 160, 255)  # BGR orange
PLAIN = (255, 200, 0)  # BGR cyan-blue, detection only


Rect = tuple[int, int, int, int]  # x1, y1, x2, y2
FONT = cv2.FONT_HERSHEY_SIMPLEX
MIN_SCALE = 0.35  # smaller text is not readable on a phone


def fit_label(label: str, box_width: float, thickness: int) -> tuple[float, int, int, int, int]:
    """A label no wider than its face (1.25 box widths, at least 48 px), down to MIN_SCALE:
    (font scale, line weight, text width, text height, baseline)."""
    scale, weight = 0.5 * thickness, thickness
    (width, height), base = cv2.getTextSize(label, FONT, scale, weight)
    limit = max(1.25 * box_width, 48.0)
    if width > limit:
        scale = max(MIN_SCALE, scale * limit / width)
        weight = max(1, min(weight, round(scale * 2)))
        (width, height), base = cv2.getTextSize(label, FONT, scale, weight)
    return scale, weight, width, height, base


def place_label(box: Rect, size: tuple[int, int], image_size: tuple[int, int], taken: list[Rect]) -> Rect:
    """Where a label goes: just above its box, else just below, else inside its top, else
    stacked further above or below, whichever first stays in the picture and covers no label
    placed before; just above when none does (pure)."""
    x1, y1, _, y2 = box
    width, height = size[0] + 4, size[1] + 4
    image_w, image_h = image_size
    left = min(max(x1, 0), max(image_w - width, 0))
    tops = (y1 - height, y2, y1, *(t for k in (1, 2, 3) for t in (y1 - (k + 1) * height, y2 + k * height)))
    for top in tops:
        rect = (left, top, left + width, top + height)
        inside = top >= 0 and top + height <= image_h
        if inside and not any(_overlap(rect, other) for other in taken):
            return rect
    top = max(0, y1 - height)
    return (left, top, left + width, top + height)


def _overlap(a: Rect, b: Rect) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def draw_face(image: np.ndarray, xyxy: np.ndarray, landmarks: np.ndarray | None, label: str,
              color: tuple[int, int, int], taken: list[Rect] | None = None) -> None:
    """Draws one face in place: box, five landmark dots, and a filled label sized to the face,
    placed clear of the labels in `taken` (which it joins)."""
    x1, y1, x2, y2 = (int(round(v)) for v in xyxy)
    thickness = max(1, round(max(image.shape[:2]) / 500))
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
    if landmarks is not None:
        for x, y in landmarks:
            cv2.circle(image, (int(round(x)), int(round(y))), thickness + 1, color, -1)
    if label:
        scale, weight, width, height, base = fit_label(label, x2 - x1, thickness)
        taken = [] if taken is None else taken
        rect = place_label((x1, y1, x2, y2), (width, height + base), (image.shape[1], image.shape[0]), taken)
        taken.append(rect)
        cv2.rectangle(image, rect[:2], rect[2:], color, -1)
        cv2.putText(image, label, (rect[0] + 2, rect[1] + 2 + height), FONT, scale, (0, 0, 0), weight, cv2.LINE_AA)
