"""Pure NumPy box maths for MTCNN and tracking: IoU, NMS, regression, squaring, padding."""

from __future__ import annotations

import cv2
import numpy as np


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray) -> np.ndarray:
    """(N, 4) x (M, 4) boxes -> (N, M) intersection over union, no +1 pixel convention."""
    x1 = np.maximum(a_xyxy[:, None, 0], b_xyxy[None, :, 0])
    y1 = np.maximum(a_xyxy[:, None, 1], b_xyxy[None, :, 1])
    x2 = np.minimum(a_xyxy[:, None, 2], b_xyxy[None, :, 2])
    y2 = np.minimum(a_xyxy[:, None, 3], b_xyxy[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a_xyxy[:, 2] - a_xyxy[:, 0]) * (a_xyxy[:, 3] - a_xyxy[:, 1])
    area_b = (b_xyxy[:, 2] - b_xyxy[:, 0]) * (b_xyxy[:, 3] - b_xyxy[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def nms(xyxy: np.ndarray, score: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best score first.

    "union" drops boxes with IoU > threshold (torchvision's convention, areas without +1);
    "min" divides the overlap by the smaller area, with +1 pixel areas, and drops boxes with
    overlap > threshold, as MTCNN's last stage does in facenet-pytorch.
    """
    if len(xyxy) == 0:
        return np.empty(0, np.int64)
    if method == "union":
        return _nms_union(xyxy, score, threshold)
    if method != "min":
        raise ValueError(f"unknown NMS method '{method}'")
    x1, y1, x2, y2 = (xyxy[:, i].astype(np.float64) for i in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-score, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = w * h / np.minimum(area[i], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def _nms_union(xyxy: np.ndarray, score: np.ndarray, threshold: float) -> np.ndarray:
    """OpenCV's C++ NMS: same IoU (w * h areas) and keep-if-IoU <= threshold rule, far faster."""
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:4] - xyxy[:, :2]], axis=1).astype(np.float64)
    keep = cv2.dnn.NMSBoxes(xywh.tolist(), score.astype(np.float32).tolist(), 0.0, threshold)
    return np.asarray(keep, np.int64).reshape(-1)


def regress(xyxy: np.ndarray, reg: np.ndarray, plus_one: bool) -> np.ndarray:
    """Applies MTCNN box regression (offsets in box widths). (N, 4), (N, 4) -> (N, 4)."""
    extra = 1.0 if plus_one else 0.0
    w = xyxy[:, 2] - xyxy[:, 0] + extra
    h = xyxy[:, 3] - xyxy[:, 1] + extra
    return xyxy + reg * np.stack([w, h, w, h], axis=1)


def square(xyxy: np.ndarray) -> np.ndarray:
    """Grows each box to a square around its centre (MTCNN's rerec)."""
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    side = np.maximum(w, h)
    x1 = xyxy[:, 0] + w * 0.5 - side * 0.5
    y1 = xyxy[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def crop_windows(xyxy: np.ndarray, width: int, height: int) -> np.ndarray:
    """Integer crop windows (N, 4) x1 y1 x2 y2 for slicing, clipped to the image.

    Follows facenet-pytorch's pad(): truncate toward zero, then take the 1-based
    [x, ex] range, i.e. pixels x-1 .. ex-1 in 0-based slicing.
    """
    boxes = np.trunc(xyxy).astype(np.int64)
    x = np.maximum(boxes[:, 0], 1) - 1
    y = np.maximum(boxes[:, 1], 1) - 1
    ex = np.minimum(boxes[:, 2], width)
    ey = np.minimum(boxes[:, 3], height)
    return np.stack([x, y, ex, ey], axis=1)
