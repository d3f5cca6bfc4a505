"""Box maths against hand-worked cases."""

import numpy as np
import pytest

from edged.vision.boxes import crop_windows, iou_matrix, nms, regress, square


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    np.testing.assert_allclose(iou_matrix(a, b), [[1.0, 50 / 150, 0.0]], rtol=1e-6)


@pytest.mark.parametrize("method, threshold, kept", [
    ("union", 0.8, [0, 2]),   # box 1 lies inside box 0: IoU 81/100 = 0.81 > 0.8, it goes
    ("union", 0.85, [0, 1, 2]),
    ("min", 0.7, [0, 2]),     # min-area overlap 1.0 for box 1 (+1 pixel areas)
])
def test_nms_methods(method, threshold, kept):
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.9, 0.8, 0.95], np.float32)
    assert sorted(nms(boxes, scores, threshold, method).tolist()) == kept


def test_nms_orders_by_score_and_handles_empty():
    boxes = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    assert nms(boxes, np.array([0.1, 0.9], np.float32), 0.5).tolist() == [1, 0]
    assert nms(np.empty((0, 4), np.float32), np.empty(0, np.float32), 0.5).size == 0


def test_square_keeps_centre():
    out = square(np.array([[0, 0, 10, 20]], np.float32))
    np.testing.assert_allclose(out, [[-5, 0, 15, 20]])


def test_regress_with_and_without_plus_one():
    box = np.array([[10, 10, 19, 19]], np.float32)
    reg = np.array([[0.1, 0, 0, -0.1]], np.float32)
    np.testing.assert_allclose(regress(box, reg, plus_one=True), [[11, 10, 19, 18]])
    np.testing.assert_allclose(regress(box, reg, plus_one=False), [[10.9, 10, 19, 18.1]], rtol=1e-6)


def test_crop_windows_clip_to_image():
    windows = crop_windows(np.array([[-5.7, 3.2, 50.9, 120.0]]), width=40, height=100)
    assert windows.tolist() == [[0, 2, 40, 100]]
