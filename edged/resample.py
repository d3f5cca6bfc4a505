"""Area resampling exactly as torch's `interpolate(mode="area")` (adaptive average pooling),
from one integral image per frame, so pyramid levels and crops match facenet-pytorch's MTCNN."""

from __future__ import annotations

import cv2
import numpy as np


def integral(image: np.ndarray) -> np.ndarray:
    """(H, W, C) uint8 -> (H+1, W+1, C) summed-area table (int32 while sums fit, else float64)."""
    h, w = image.shape[:2]
    depth = cv2.CV_32S if h * w * 255 < 2**31 else cv2.CV_64F
    table = cv2.integral(image, sdepth=depth)
    return table if table.ndim == 3 else table[:, :, None]


def area_bounds(length_in: int, length_out: int, offset: np.ndarray | int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each output cell's source window, as adaptive pooling has them.

    `offset` may be an (N,) array of window origins, giving (N, length_out) bounds.
    """
    i = np.arange(length_out)
    start = (i * length_in) // length_out
    end = -((-(i + 1) * length_in) // length_out)  # ceil division
    origin = np.asarray(offset)[..., None]
    return origin + start, origin + end


def resize_area(table: np.ndarray, width: int, height: int) -> np.ndarray:
    """The whole image resized to (width, height): (height, width, C) float32."""
    h_in, w_in = table.shape[0] - 1, table.shape[1] - 1
    y0, y1 = area_bounds(h_in, height)
    x0, x1 = area_bounds(w_in, width)
    rows = table[y1] - table[y0]
    sums = rows[:, x1] - rows[:, x0]
    count = ((y1 - y0)[:, None] * (x1 - x0)[None, :]).astype(np.float32)
    return sums.astype(np.float32) / count[:, :, None]


def crops_area(table: np.ndarray, windows: np.ndarray, size: int) -> np.ndarray:
    """Windows (N, 4) int x1 y1 x2 y2 each resized to size x size: (N, size, size, C) float32."""
    x_start, x_end = area_bounds_per_window(windows[:, 0], windows[:, 2], size)
    y_start, y_end = area_bounds_per_window(windows[:, 1], windows[:, 3], size)
    ys1, ys0 = y_end[:, :, None], y_start[:, :, None]
    xs1, xs0 = x_end[:, None, :], x_start[:, None, :]
    sums = table[ys1, xs1] - table[ys0, xs1] - table[ys1, xs0] + table[ys0, xs0]
    count = ((ys1 - ys0) * (xs1 - xs0)).astype(np.float32)
    return sums.astype(np.float32) / count[:, :, :, None]


def area_bounds_per_window(lo: np.ndarray, hi: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-window adaptive-pooling bounds for windows of differing lengths: (N, size) each."""
    length = (hi - lo)[:, None]
    i = np.arange(size)[None, :]
    start = (i * length) // size
    end = -((-(i + 1) * length) // size)
    return lo[:, None] + start, lo[:, None] + end
