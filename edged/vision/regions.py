"""Where to detect when only part of a large frame moves (pure): padded boxes around the
motion and around the faces being tracked, merged where they overlap. The whole frame is
returned (None) when they would cover most of it anyway.

A crop is detected at the frame's own resolution, where the whole frame is first scaled
down (to 960 px at the edge defaults): a crop costs less, and faces keep their source size,
so small faces are found that the scaled frame loses. Faces standing still are tracked, so
their boxes are regions too, and padding keeps a face cut by a motion box's edge whole.
"""

from __future__ import annotations

from collections.abc import Sequence

Box = tuple[int, int, int, int]

PAD_SHARE = 0.5  # each side grows by this share of the box's larger side...
MIN_PAD = 48  # ...and at least this many pixels: a face at a motion box's edge stays whole
MIN_SIDE = 160  # a crop at least this wide and high: MTCNN needs context around a face
MAX_SHARE = 0.5  # regions covering more than this share of the frame: detect the whole frame


def pad(box: Sequence[float], size: tuple[int, int]) -> Box:
    x1, y1, x2, y2 = box
    grow = max(PAD_SHARE * max(x2 - x1, y2 - y1), MIN_PAD)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    half_w = max((x2 - x1) / 2 + grow, MIN_SIDE / 2)
    half_h = max((y2 - y1) / 2 + grow, MIN_SIDE / 2)
    width, height = size
    return (int(max(cx - half_w, 0)), int(max(cy - half_h, 0)), int(min(cx + half_w, width)),
            int(min(cy + half_h, height)))


def _overlap(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def merge(boxes: list[Box]) -> list[Box]:
    """Overlapping boxes joined into their bounding box, until none overlap."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                if _overlap(merged[i], merged[j]):
                    a, b = merged[i], merged.pop(j)
                    merged[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    changed = True
                    break
            if changed:
                break
    return merged


def regions(motion: Sequence[Sequence[float]], tracked: Sequence[Sequence[float]],
            size: tuple[int, int]) -> list[Box] | None:
    """The crops to detect on, or None for the whole frame (nothing to go on, or most of it)."""
    boxes = [pad(box, size) for box in [*motion, *tracked]]
    if not boxes:
        return None
    merged = merge(boxes)
    area = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in merged)
    if area > MAX_SHARE * size[0] * size[1]:
        return None
    return merged
