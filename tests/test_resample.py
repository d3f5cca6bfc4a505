"""Area resampling must equal adaptive average pooling (torch's mode="area") exactly."""

import numpy as np
import pytest

from edged.vision.resample import crops_area, integral, resize_area


def reference_area(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Adaptive average pooling written out cell by cell: (H, W, 3) -> (height, width, 3)."""
    h, w = image.shape[:2]
    out = np.zeros((height, width, 3))
    for i in range(height):
        y0, y1 = (i * h) // height, -((-(i + 1) * h) // height)
        for j in range(width):
            x0, x1 = (j * w) // width, -((-(j + 1) * w) // width)
            out[i, j] = image[y0:y1, x0:x1].reshape(-1, 3).mean(0)
    return out


def as_network_input(pixels_bgr: np.ndarray) -> np.ndarray:
    return ((pixels_bgr[..., ::-1] - 127.5) / 128).transpose(2, 0, 1)


@pytest.mark.parametrize("size", [(7, 5), (23, 31), (40, 30), (61, 47)])
def test_resize_matches_adaptive_pooling(size):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    got = resize_area(integral(image), *size)[0]
    np.testing.assert_allclose(got, as_network_input(reference_area(image, *size)), atol=1e-5)


def test_crops_match_adaptive_pooling_of_each_window():
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)
    windows = np.array([[0, 0, 60, 50], [10, 5, 19, 12], [30, 20, 55, 49]])
    got = crops_area(integral(image), windows, 24)
    for crop, (x1, y1, x2, y2) in zip(got, windows, strict=True):
        expected = as_network_input(reference_area(image[y1:y2, x1:x2], 24, 24))
        np.testing.assert_allclose(crop, expected, atol=1e-5)
