"""Odd image files are converted or refused with a message that names the file."""

import cv2
import numpy as np
import pytest

from edged.errors import ImageError
from edged.io.images import load_image

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
    (lambda p: p.write_text("hello, not a picture"), "not an image edged can read"),
    (lambda p: p.mkdir(), "is a folder"),
])
def test_unreadable_files_are_named(tmp_path, make, message):
    path = tmp_path / "input.jpg"
    make(path)
    with pytest.raises(ImageError, match=f"input.jpg: {message}"):
        load_image(path)


def test_formats_are_measured_from_their_headers(tmp_path, photo):
    from edged.io.image_header import image_dimensions

    small = photo[:123, :77]
    for ext in (".jpg", ".png", ".bmp", ".tiff", ".webp", ".ppm"):
        path = tmp_path / f"small{ext}"
        cv2.imwrite(str(path), small)
        assert image_dimensions(path.read_bytes()) == (77, 123), ext
        assert load_image(path).shape == (123, 77, 3), ext
    assert image_dimensions(b"\x89PNG\r\n\x1a\n") is None  # cut short: no header to read


def png_bomb(path, side: int, rows: int = 64):
    """A tiny PNG whose header declares side x side pixels: a few rows, the header says the rest."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00" * (side * 3 + 1) * rows, 9)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [30000, 60000])
def test_an_image_bomb_is_refused_before_decoding(tmp_path, side):
    """A tiny PNG declaring side x side pixels: refused by its header, with memory bounded."""
    import resource

    bomb = png_bomb(tmp_path / "bomb.png", side)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError, match=f"bomb.png: {side} x {side} pixels .* larger than the 50-megapixel limit"):
        load_image(bomb)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KiB: nothing was decoded


def test_the_command_line_refuses_a_bomb_with_one_line(tmp_path):
    from .conftest import run_edged

    bomb = png_bomb(tmp_path / "bomb.png", 30000, rows=1)
    for args in (["identify", str(bomb)], ["enroll", "alice", str(bomb), "--gallery", str(tmp_path / "g.db")]):
        result = run_edged(*args)
        assert result.returncode != 0 and "larger than the 50-megapixel limit" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
