"""Face pictures: a face with some margin cut from a frame, and the small JPEG a person's card
shows (pure)."""

from __future__ import annotations

import cv2
import numpy as np

THUMBNAIL_MARGIN = 0.35  # of the face size, around the box
CARD_SIZE = 160  # px, the longer side of a person's picture


def face_thumbnail(image: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = xyxy
    pad = THUMBNAIL_MARGIN * max(x2 - x1, y2 - y1)
    h, w = image.shape[:2]
    left, top = int(max(x1 - pad, 0)), int(max(y1 - pad, 0))
    right, bottom = int(min(x2 + pad, w)), int(min(y2 + pad, h))
    return image[top:bottom, left:right].copy()


def card_jpeg(thumbnail: np.ndarray) -> bytes:
    """The thumbnail at most CARD_SIZE px on its longer side, as JPEG."""
    scale = CARD_SIZE / max(thumbnail.shape[:2])
    if scale < 1:
        thumbnail = cv2.resize(thumbnail, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", thumbnail, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise ValueError("could not encode a face picture")
    return data.tobytes()
