"""Odd image files are converted or refused with a message that names the file."""

import cv2
import numpy as np
import pytest

from edged.errors import ImageError
from edged.images import load_image

from .conftest import DATA

SOURCE = DATA / "images" / "obama1.jpg"


@pytest.fixture
def photo():
    return cv2.imread(str(SOURCE))


def test_grey_16bit_and_alpha_images_load_as_bgr(tmp_path, photo, detector):
    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    deep = tmp_path / "deep.png"
    cv2.imwrite(str(deep), photo.astype(np.uint16) * 257)
    alpha = tmp_path / "alpha.png"
    cv2.imwrite(str(alpha), np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)]))
    for path in (grey, deep, alpha):
        image = load_image(path)
        assert image.dtype == np.uint8 and image.shape == photo.shape, path
        assert len(detector.detect(image)) == 1, f"{path.name}: the face should still be found"
    np.testing.assert_array_equal(load_image(deep), photo)


def test_truncated_jpeg_is_refused(tmp_path):
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(SOURCE.read_bytes()[:20000])
    with pytest.raises(ImageError, match="cut.jpg: truncated image"):
        load_image(cut)


def test_truncated_png_is_refused(tmp_path, photo):
    whole = tmp_path / "whole.png"
    cv2.imwrite(str(whole), photo)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[:5000])
    with pytest.raises(ImageError, match="cut.png: truncated image"):
        load_image(cut)


@pytest.mark.parametrize("make, message", [
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("hello, not a picture"), "not an image OpenCV can decode"),
    (lambda p: p.mkdir(), "is a folder"),
])
def test_unreadable_files_are_named(tmp_path, make, message):
    path = tmp_path / "input.jpg"
    make(path)
    with pytest.raises(ImageError, match=f"input.jpg: {message}"):
        load_image(path)
