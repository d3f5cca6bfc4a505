"""Drawing boxes, landmarks and names on frames (annotated images, later the live view)."""

from __future__ import annotations

import cv2
import numpy as np

KNOWN = (80, 200, 60)  # BGR green
UNKNOWN = (40, 160, 255)  # BGR orange
PLAIN = (255, 200, 0)  # BGR cyan-blue, detection only


def draw_face(image: np.ndarray, xyxy: np.ndarray, landmarks: np.ndarray | None, label: str,
              color: tuple[int, int, int]) -> None:
    """Draws one face in place: box, five landmark dots, and a filled label above the box."""
    x1, y1, x2, y2 = (int(round(v)) for v in xyxy)
    thickness = max(1, round(max(image.shape[:2]) / 500))
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)
    if landmarks is not None:
        for x, y in landmarks:
            cv2.circle(image, (int(round(x)), int(round(y))), thickness + 1, color, -1)
    if label:
        scale = 0.5 * thickness
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(0, y1 - th - base - 4)
        cv2.rectangle(image, (x1, top), (x1 + tw + 4, top + th + base + 4), color, -1)
        cv2.putText(image, label, (x1 + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale,
                    (0, 0, 0), thickness, cv2.LINE_AA)
