"""Area resampling exactly as torch's `interpolate(mode="area")` (adaptive average pooling),
from one summed-area table per frame, so pyramid levels and crops match facenet-pytorch's
MTCNN. Outputs are network-ready: planar RGB float32 scaled as (x - 127.5) / 128."""

from __future__ import annotations

import cv2
import numpy as np

# MTCNN's input scaling: (pixel - 127.5) / 128
_SHIFT = 127.5
_SCALE = 0.0078125


def integral(image_bgr: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (3, H+1, W+1) planar RGB summed-area table.

    int32 while the whole-image sum fits (up to about 4K), float64 beyond.
    """
    h, w = image_bgr.shape[:2]
    depth = cv2.CV_32S if h * w * 255 < 2**31 else cv2.CV_64F
    blue, green, red = cv2.split(image_bgr)
    return np.stack([cv2.integral(c, sdepth=depth) for c in (red, green, blue)])


def _bounds(lo: np.ndarray | int, length: np.ndarray | int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive pooling windows: output cell i covers [lo + floor(i*L/size), lo + ceil((i+1)*L/size))."""
    i = np.arange(size)
    length = np.asarray(length)[..., None]
    start = (i * length) // size
    end = -((-(i + 1) * length) // size)
    origin = np.asarray(lo)[..., None]
    return origin + start, origin + end


def _normalise(sums: np.ndarray, count: np.ndarray) -> np.ndarray:
    scale = (_SCALE / count).astype(np.float32)
    out = sums.astype(np.float32)
    out *= scale
    out -= np.float32(_SHIFT * _SCALE)
    return out


def resize_area(table: np.ndarray, width: int, height: int) -> np.ndarray:
    """The whole image resized to (width, height) -> (1, 3, height, width) network input."""
    h_in, w_in = table.shape[1] - 1, table.shape[2] - 1
    y0, y1 = _bounds(0, h_in, height)
    x0, x1 = _bounds(0, w_in, width)
    rows = np.take(table, y1, axis=1) - np.take(table, y0, axis=1)
    sums = np.take(rows, x1, axis=2) - np.take(rows, x0, axis=2)
    count = (y1 - y0)[:, None] * (x1 - x0)[None, :]
    return _normalise(sums, count)[None]


def crops_area(table: np.ndarray, windows: np.ndarray, size: int) -> np.ndarray:
    """Windows (N, 4) int x1 y1 x2 y2, each resized to size x size -> (N, 3, size, size) input."""
    x0, x1 = _bounds(windows[:, 0], windows[:, 2] - windows[:, 0], size)
    y0, y1 = _bounds(windows[:, 1], windows[:, 3] - windows[:, 1], size)
    stride = table.shape[2]
    # Flat indices of the four corners of every output cell: (N, size, size) each.
    top, bottom = y0[:, :, None] * stride, y1[:, :, None] * stride
    left, right = x0[:, None, :], x1[:, None, :]
    flat = table.reshape(3, -1)
    sums = (np.take(flat, bottom + right, axis=1) - np.take(flat, top + right, axis=1)
            - np.take(flat, bottom + left, axis=1) + np.take(flat, top + left, axis=1))
    count = (y1 - y0)[:, :, None] * (x1 - x0)[:, None, :]
    return _normalise(sums, count[None]).transpose(1, 0, 2, 3).copy()
