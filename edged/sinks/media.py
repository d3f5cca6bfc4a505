"""Alert pictures on disk: the best face and the full frame of each alert, as JPEG files in the
state directory's media/ folder (served by the web server at /media/). Written to a temporary
name and renamed, so a power cut never leaves half a picture under a real name; the oldest
files go first when the folder passes its size limit."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edged import durable
from edged.pipeline import AlertPictures, SinkItem
from edged.vision.draw import KNOWN, UNKNOWN, draw_face

log = logging.getLogger("edged.media")


def write_jpeg(path: Path, image: np.ndarray, quality: int = 90) -> bool:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        return False
    durable.write_bytes(path, data.tobytes())
    return True


class MediaStore:
    """A sink: stores AlertPictures; keeps the folder under `max_mb` by removing the oldest."""

    def __init__(self, folder: Path, max_mb: float = 500.0) -> None:
        self.folder = folder
        self.max_bytes = int(max_mb * 2**20)
        folder.mkdir(parents=True, exist_ok=True)

    def handle(self, item: SinkItem) -> None:
        if not isinstance(item, AlertPictures):
            return
        try:
            if item.face is not None and item.face.size and item.alert.snapshot:
                write_jpeg(self.folder / Path(item.alert.snapshot).name, item.face)
            if item.alert.frame:
                framed = item.frame.copy()  # the whole frame, the face that alerted boxed
                color = UNKNOWN if item.alert.reason == "unknown" else KNOWN
                draw_face(framed, np.asarray(item.alert.box, np.float32), None, item.alert.who, color)
                write_jpeg(self.folder / Path(item.alert.frame).name, framed, quality=85)
        except OSError as exc:  # a full disk must not stop the daemon
            log.error("cannot store the pictures of alert %s in %s: %s", item.alert.id, self.folder, exc)
        self.trim()

    def trim(self) -> None:
        files = sorted((p for p in self.folder.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for path in files:
            if total <= self.max_bytes:
                break
            total -= path.stat().st_size
            path.unlink(missing_ok=True)

    def close(self) -> None:
        pass
