"""Face quality: size, sharpness, frontal-ness and zone. Faces that fail are tracked but
neither embedded nor enrolled; the score ranks faces for votes and thumbnails (pure)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edged.types import Faces

# Sharpness is measured on the face resized to this many pixels across, so it does not
# depend on how big the face is in the frame.
SHARPNESS_SIDE = 64


@dataclass(frozen=True)
class QualitySettings:
    """min_face_px: shorter box side in source pixels. min_sharpness: variance of the Laplacian
    of the face at 64 px. max_yaw: nose offset from the eyes' midpoint in eye distances (0 is
    frontal, about 0.5 is a half profile). zone: polygon (K, 2) in the detected picture's
    pixels, or in fractions of its width and height when every coordinate is between 0 and 1
    (Frigate's relative coordinates; no pixel zone fits in one pixel), or None."""

    min_face_px: float = 40.0
    min_sharpness: float = 30.0
    max_yaw: float = 0.45
    zone: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        if self.min_face_px < 0 or self.min_sharpness < 0 or not 0 < self.max_yaw <= 2:
            raise ValueError("quality settings: min_face_px and min_sharpness >= 0, 0 < max_yaw <= 2")
        if self.zone is not None and len(self.zone) < 3:
            raise ValueError("quality zone needs at least 3 points")


@dataclass(frozen=True)
class Quality:
    """Per-face measurements, (N,) arrays each."""

    size: np.ndarray  # shorter box side, pixels
    sharpness: np.ndarray  # Laplacian variance at 64 px
    yaw: np.ndarray  # nose offset in eye distances
    in_zone: np.ndarray  # bool
    passed: np.ndarray  # bool: good enough to embed or enroll
    score: np.ndarray  # 0..1, higher is a better face to recognise


def yaw_ratio(landmarks: np.ndarray) -> np.ndarray:
    """(N, 5, 2) landmarks -> (N,) |nose x - eye midpoint x| / eye distance (rotation-aware)."""
    left, right, nose = landmarks[:, 0], landmarks[:, 1], landmarks[:, 2]
    eye_vec = right - left
    eye_dist = np.maximum(np.linalg.norm(eye_vec, axis=1), 1e-6)
    along = ((nose - (left + right) / 2) * eye_vec).sum(1) / eye_dist
    return np.abs(along) / eye_dist


def sharpness(image_bgr: np.ndarray, xyxy: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of each face, resized to SHARPNESS_SIDE pixels square."""
    h, w = image_bgr.shape[:2]
    out = np.zeros(len(xyxy), np.float32)
    for i, (x1, y1, x2, y2) in enumerate(xyxy):
        left, top = max(int(x1), 0), max(int(y1), 0)
        right, bottom = min(int(x2), w), min(int(y2), h)
        if right - left < 4 or bottom - top < 4:
            continue
        grey = cv2.cvtColor(image_bgr[top:bottom, left:right], cv2.COLOR_BGR2GRAY)
        face = cv2.resize(grey, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
        out[i] = cv2.Laplacian(face, cv2.CV_32F).var()
    return out


def zone_pixels(zone: tuple[tuple[float, float], ...], size: tuple[int, int]) -> np.ndarray:
    """The zone polygon (K, 2) in pixels of a picture `size` (width, height): a zone given in
    fractions (every coordinate within 0..1) is scaled to it, one in pixels is kept."""
    polygon = np.asarray(zone, np.float32)
    if polygon.size and float(polygon.min()) >= 0 and float(polygon.max()) <= 1:
        polygon = polygon * np.asarray(size, np.float32)
    return polygon


def in_zone(xyxy: np.ndarray, zone: tuple[tuple[float, float], ...] | None,
            size: tuple[int, int] = (1, 1)) -> np.ndarray:
    """Whether each box centre lies inside the zone polygon (all True without a zone); `size`:
    the picture's (width, height), for a zone in fractions."""
    if zone is None:
        return np.ones(len(xyxy), bool)
    polygon = zone_pixels(zone, size).reshape(-1, 1, 2)
    centres = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    return np.array([cv2.pointPolygonTest(polygon, (float(x), float(y)), False) >= 0 for x, y in centres], bool)


def assess(image_bgr: np.ndarray, faces: Faces, settings: QualitySettings) -> Quality:
    size = np.minimum(faces.width, faces.height)
    sharp = sharpness(image_bgr, faces.xyxy)
    yaw = yaw_ratio(faces.landmarks) if len(faces) else np.zeros(0, np.float32)
    zone = in_zone(faces.xyxy, settings.zone, (image_bgr.shape[1], image_bgr.shape[0]))
    passed = (size >= settings.min_face_px) & (sharp >= settings.min_sharpness) & (yaw <= settings.max_yaw) & zone
    # Each factor saturates where more no longer helps recognition.
    score = (np.clip(size / 112.0, 0, 1) * np.clip(sharp / 200.0, 0, 1) * np.clip(1 - yaw / 0.6, 0, 1)
             * np.clip(faces.score, 0, 1))
    return Quality(size, sharp, yaw, zone, passed, score.astype(np.float32))


def failures(quality: Quality, index: int, settings: QualitySettings) -> list[str]:
    """Why face `index` failed, in words for a message."""
    reasons = []
    if quality.size[index] < settings.min_face_px:
        reasons.append(f"too small ({quality.size[index]:.0f} px < {settings.min_face_px:.0f})")
    if quality.sharpness[index] < settings.min_sharpness:
        reasons.append(f"blurred (sharpness {quality.sharpness[index]:.0f} < {settings.min_sharpness:.0f})")
    if quality.yaw[index] > settings.max_yaw:
        reasons.append(f"turned away (yaw {quality.yaw[index]:.2f} > {settings.max_yaw:.2f})")
    if not quality.in_zone[index]:
        reasons.append("outside the zone")
    return reasons
