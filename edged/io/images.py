"""Reading photos into BGR uint8 frames, handling or refusing odd files by name."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from edged.errors import ImageError
from edged.files import read_regular_file
from edged.io.image_header import FORMATS, image_dimensions

# Larger photos are refused before decoding: 50 megapixels is a 48 MP phone camera's full
# size; decoded, it takes 150 MB (more on the way, for 16-bit or alpha images).
MAX_MEGAPIXELS = float(os.environ.get("EDGED_MAX_IMAGE_MEGAPIXELS", "50"))

MAX_IMAGE_BYTES = 100 * 2**20  # larger than any photo a phone takes; a device or a huge file is refused
_JPEG_END = b"\xff\xd9"
_PNG_END = b"IEND\xaeB`\x82"


def _looks_truncated(data: bytes) -> bool:
    """JPEG and PNG files carry an end marker; a file cut short (a copy interrupted) lacks it.

    OpenCV would decode such a JPEG anyway and fill the missing part with grey, which would
    then be embedded as if it were a face.
    """
    tail = data[-64:].rstrip(b"\x00\r\n ")
    if data[:3] == b"\xff\xd8\xff":
        return not tail.endswith(_JPEG_END)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return not tail.endswith(_PNG_END)
    return False


def _flat_tail_rows(image: np.ndarray) -> int:
    """How many rows at the bottom are one single colour. A JPEG whose data stops early (even
    with an end marker appended) decodes with the rest painted in the last block's colour."""
    flat = np.all(image == image[-1, 0], axis=tuple(range(1, image.ndim)))
    changes = np.flatnonzero(~flat)
    return image.shape[0] - (int(changes[-1]) + 1 if changes.size else 0)


def load_image(path: Path, max_megapixels: float = MAX_MEGAPIXELS) -> np.ndarray:
    """(H, W, 3) uint8 BGR. Grey, 16-bit and alpha images are converted; EXIF rotation applied.
    Images of more than `max_megapixels` (by their header) are refused before decoding; only
    regular files of at most MAX_IMAGE_BYTES are read."""
    try:
        data = read_regular_file(path, MAX_IMAGE_BYTES)
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror})") from None
    return decode_image(data, path, max_megapixels)


def decode_image(data: bytes, path: Path | str, max_megapixels: float = MAX_MEGAPIXELS) -> np.ndarray:
    """An image file's bytes (a file read, or an upload) -> (H, W, 3) uint8 BGR, by the same
    rules as `load_image`; `path` names it in messages."""
    if not data:
        raise ImageError(f"{path}: empty file")
    if _looks_truncated(data):
        raise ImageError(f"{path}: truncated image (the file ends before the picture does)")
    size = image_dimensions(data)
    if size is None:
        raise ImageError(f"{path}: not an image edged can read ({FORMATS})")
    width, height = size
    if width * height > max_megapixels * 1e6:
        raise ImageError(f"{path}: {width} x {height} pixels ({width * height / 1e6:.0f} megapixels) is larger than "
                         f"the {max_megapixels:g}-megapixel limit (EDGED_MAX_IMAGE_MEGAPIXELS); scale it down first")
    if width == 0 or height == 0:
        raise ImageError(f"{path}: the image has no pixels ({width} x {height})")
    buffer = np.frombuffer(data, np.uint8)
    # ANYDEPTH keeps 16-bit as 16-bit (so we scale it rather than let it wrap); ANYCOLOR keeps
    # grey as grey; unlike IMREAD_UNCHANGED both still apply the EXIF orientation.
    try:
        image = cv2.imdecode(buffer, cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    except cv2.error as exc:
        raise ImageError(f"{path}: cannot decode the image ({str(exc).strip().splitlines()[-1]})") from None
    if image is None:
        raise ImageError(f"{path}: cannot decode the image (damaged, or a variant of its format OpenCV lacks)")
    if data[:3] == b"\xff\xd8\xff" and image.shape[0] >= 64:
        flat = _flat_tail_rows(image)
        if flat >= max(16, image.shape[0] // 8) and flat < image.shape[0]:
            raise ImageError(f"{path}: truncated image (its last {flat} rows are missing: the picture's data "
                             "stops early)")
    return to_bgr8(image, path)


def to_bgr8(image: np.ndarray, where: Path | str = "image") -> np.ndarray:
    """Converts grey / 16-bit / float / BGRA arrays to (H, W, 3) uint8 BGR."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype in (np.float32, np.float64):
        image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    elif image.dtype != np.uint8:
        raise ImageError(f"{where}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim == 3 and image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    raise ImageError(f"{where}: unsupported image shape {image.shape}")
