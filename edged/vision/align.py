"""Face crops for the embedder, in the style its spec names: facenet's margin crop, or a
five-point similarity alignment to the ArcFace 112x112 template."""

from __future__ import annotations

import cv2
import numpy as np

# Where eyes, nose tip and mouth corners sit in a 112 x 112 ArcFace-style crop.
ARCFACE_TEMPLATE_112 = np.array([
    [38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
    [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares rotation + uniform scale + translation taking src (K, 2) onto dst (K, 2).

    Umeyama's closed form; returns the 2 x 3 matrix for cv2.warpAffine.
    """
    src = src.astype(np.float64)
    dst = dst.astype(np.float64)
    mean_src, mean_dst = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1] = -1.0  # keep a rotation, never a reflection
    rotation = u @ np.diag(d) @ vt
    var_src = (src_c ** 2).sum() / len(src)
    scale = (s * d).sum() / var_src if var_src > 0 else 1.0
    translation = mean_dst - scale * rotation @ mean_src
    return np.hstack([scale * rotation, translation[:, None]])


def align_five_point(image_bgr: np.ndarray, landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Warps the face so its five landmarks (5, 2) land on the template scaled to `size` (w, h)."""
    template = ARCFACE_TEMPLATE_112 * np.array([size[0] / 112.0, size[1] / 112.0])
    matrix = similarity_transform(landmarks, template)
    return cv2.warpAffine(image_bgr, matrix, size, flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def margin_crop(image_bgr: np.ndarray, xyxy: np.ndarray, size: tuple[int, int], margin: int) -> np.ndarray:
    """facenet-pytorch's extract_face: box plus `margin` pixels (of the output), clipped, resized."""
    out_w, out_h = size
    x1, y1, x2, y2 = (float(v) for v in xyxy)
    mx = margin * (x2 - x1) / (out_w - margin)
    my = margin * (y2 - y1) / (out_h - margin)
    h, w = image_bgr.shape[:2]
    left, top = int(max(x1 - mx / 2, 0)), int(max(y1 - my / 2, 0))
    right, bottom = int(min(x2 + mx / 2, w)), int(min(y2 + my / 2, h))
    if right <= left or bottom <= top:
        return np.zeros((out_h, out_w, 3), np.uint8)
    return cv2.resize(image_bgr[top:bottom, left:right], size, interpolation=cv2.INTER_AREA)


def crop_faces(image_bgr: np.ndarray, xyxy: np.ndarray, landmarks: np.ndarray, style: str,
               size: tuple[int, int], margin: int = 0) -> np.ndarray:
    """Crops for N faces -> (N, h, w, 3) uint8 BGR, in the style the embedder's spec names."""
    if style == "arcface_5point":
        crops = [align_five_point(image_bgr, marks, size) for marks in landmarks]
    elif style == "facenet_margin":
        crops = [margin_crop(image_bgr, box, size, margin) for box in xyxy]
    else:
        raise ValueError(f"unknown crop style '{style}'")
    if not crops:
        return np.empty((0, size[1], size[0], 3), np.uint8)
    return np.stack(crops)
