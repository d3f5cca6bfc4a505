"""The ONNX detector finds the same faces as facenet-pytorch's MTCNN (reference files in ../shared)."""

import json

import cv2
import numpy as np
import pytest

from edged.vision.boxes import iou_matrix
from edged.vision.detector import Detector, DetectorSettings

from .conftest import DATA, NO_SHARED

if NO_SHARED:  # its parameters are read from ../shared as the module loads
    pytest.skip(NO_SHARED, allow_module_level=True)

IMAGES = json.loads((DATA / "mtcnn_reference.json").read_text())["images"]
CROWD = json.loads((DATA / "crowd_1080p_mtcnn_reference.json").read_text())["frames"]
MIN_IOU = 0.9


def assert_same_faces(faces, reference: list[dict], where: str) -> float:
    ref_boxes = np.array([f["box"] for f in reference], np.float32).reshape(-1, 4)
    assert len(faces) == len(ref_boxes), f"{where}: {len(faces)} faces, reference has {len(ref_boxes)}"
    if not len(ref_boxes):
        return 1.0
    iou = iou_matrix(ref_boxes, faces.xyxy)
    # One-to-one: each reference face's best match, and no detection used twice.
    best = iou.argmax(1)
    assert len(set(best.tolist())) == len(best), f"{where}: two reference faces matched one detection"
    worst = float(iou.max(1).min())
    assert worst >= MIN_IOU, f"{where}: a box has IoU {worst:.3f} with its reference"
    return worst


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_reference_images(detector, name):
    image = cv2.imread(str(DATA / name))
    faces = detector.detect(image)
    assert_same_faces(faces, IMAGES[name]["faces"], name)
    ref_probs = sorted(f["prob"] for f in IMAGES[name]["faces"])
    np.testing.assert_allclose(sorted(faces.score.tolist()), ref_probs, atol=0.01)


def test_reference_landmarks_close(detector):
    """Landmarks within 2 px of the reference on a large, clear face."""
    name = "faces/obama/obama2.jpg"
    faces = detector.detect(cv2.imread(str(DATA / name)))
    expected = np.array(IMAGES[name]["faces"][0]["landmarks"], np.float32)
    np.testing.assert_allclose(faces.landmarks[0], expected, atol=2.0)


def test_every_crowd_frame(detector):
    capture = cv2.VideoCapture(str(DATA / "video" / "crowd_1080p.mp4"))
    worst = 1.0
    for frame_ref in CROWD:
        ok, frame = capture.read()
        assert ok, f"video ended before frame {frame_ref['index']}"
        faces = detector.detect(frame)
        worst = min(worst, assert_same_faces(faces, frame_ref["faces"], f"frame {frame_ref['index']}"))
    assert worst >= MIN_IOU


def test_max_side_maps_boxes_back_to_source_pixels(store):
    image = cv2.imread(str(DATA / "images" / "obama1.jpg"))
    full = Detector(store).detect(image)
    shrunk = Detector(store, DetectorSettings(max_side=max(image.shape[:2]) // 2)).detect(image)
    assert len(shrunk) == len(full) == 1
    assert iou_matrix(full.xyxy, shrunk.xyxy)[0, 0] > 0.9
    np.testing.assert_allclose(shrunk.landmarks, full.landmarks, atol=0.05 * float(full.width[0]))


def test_min_face_size_starts_the_pyramid_later(store):
    """min_face_size sets the first pyramid scale (as in MTCNN): fewer levels, fewer small faces.
    It is not a hard filter; faces down to about half of it can still be found."""
    frame = cv2.VideoCapture(str(DATA / "video" / "crowd_1080p.mp4")).read()[1]
    small = Detector(store)
    large = Detector(store, DetectorSettings(min_face_size=100))
    all_faces, big_only = small.detect(frame), large.detect(frame)
    assert large.last_times.levels < small.last_times.levels
    assert 0 < len(big_only) < len(all_faces)
    assert (big_only.height >= 45).all()


def test_empty_and_tiny_frames(detector):
    assert len(detector.detect(np.zeros((480, 640, 3), np.uint8))) == 0
    assert len(detector.detect(np.zeros((10, 10, 3), np.uint8))) == 0


@pytest.mark.parametrize("kwargs, message", [
    ({"min_face_size": 5}, "min_face_size"),
    ({"factor": 1.5}, "factor"),
    ({"thresholds": (0.6, 0.7, 1.5)}, "thresholds"),
])
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DetectorSettings(**kwargs)


def test_a_detection_split_over_threads_finds_exactly_the_same_faces(store):
    """Pyramid levels and crop batches side by side on several threads (`threads`) give the
    faces one thread gives, to the bit, also when several threads call one detector at once."""
    from concurrent.futures import ThreadPoolExecutor

    capture = cv2.VideoCapture(str(DATA / "video" / "crowd_1080p.mp4"))
    frames = [capture.read()[1] for _ in range(4)]
    serial = [Detector(store, DetectorSettings.edge(), threads=1).detect(f) for f in frames]
    shared = Detector(store, DetectorSettings.edge(), threads=3, lanes_min_pixels=0)
    threaded = Detector(store, DetectorSettings.edge(), threads=3, lanes_min_pixels=2**62)  # ONNX Runtime's threads
    assert shared.lanes.count == 3
    with ThreadPoolExecutor(4) as callers:
        together = list(callers.map(shared.detect, frames * 2)) + list(callers.map(threaded.detect, frames))
    assert all(len(s) for s in serial)
    for n, faces in enumerate(together):
        expected = serial[n % len(frames)]
        np.testing.assert_array_equal(faces.xyxy, expected.xyxy)
        np.testing.assert_array_equal(faces.score, expected.score)
        np.testing.assert_array_equal(faces.landmarks, expected.landmarks)


def test_lanes_take_consecutive_levels_of_about_equal_work():
    from edged.vision.lanes import Lanes

    areas = [100.0, 50.0, 25.0, 12.5, 6.0, 3.0, 1.5]
    assert Lanes(1).groups(areas) == [slice(0, 7)]
    assert Lanes(2).groups(areas) == [slice(0, 1), slice(1, 7)]  # the largest level is about half
    three = Lanes(3).groups([1.0] * 9)
    assert three == [slice(0, 3), slice(3, 6), slice(6, 9)]
    assert Lanes(4).groups([5.0]) == [slice(0, 1)] and Lanes(2).chunks(10, 16) == [slice(0, 10)]
    assert Lanes(2).chunks(40, 16) == [slice(0, 20), slice(20, 40)]


def test_the_edge_defaults_find_the_reference_faces_a_camera_can_use(store):
    """The daemon's P-Net threshold (0.7, facenet-pytorch's is 0.6) gives R-Net fewer candidates
    and keeps nearly every reference face of 40 px or more (the edge defaults' smallest) on the
    crowd video: at most one fewer than 0.6 on every 4th frame, and none of those of 60 px or
    more that have an O-Net score of 0.9 or more at 0.6."""
    from dataclasses import replace

    edge = DetectorSettings.edge()
    assert edge.thresholds[0] == 0.7
    loose = Detector(store, replace(edge, thresholds=(0.6, *edge.thresholds[1:])), threads=1)
    detector = Detector(store, edge, threads=1)
    capture = cv2.VideoCapture(str(DATA / "video" / "crowd_1080p.mp4"))
    found = {"edge": 0, "loose": 0}
    candidates = {"edge": 0, "loose": 0}
    usable = 0
    for frame_ref in CROWD:
        ok, frame = capture.read()
        assert ok
        if frame_ref["index"] % 4:
            continue
        boxes = np.array([f["box"] for f in frame_ref["faces"] if f["box"][2] - f["box"][0] >= 40], np.float32)
        usable += len(boxes)
        faces = {"edge": detector.detect(frame), "loose": loose.detect(frame)}
        candidates["edge"] += detector.last_times.candidates[0]
        candidates["loose"] += loose.last_times.candidates[0]
        for name, found_here in faces.items():
            if len(boxes) and len(found_here):
                found[name] += int((iou_matrix(boxes, found_here.xyxy).max(1) >= 0.5).sum())
        wide = faces["loose"].xyxy[:, 2] - faces["loose"].xyxy[:, 0]
        clear = faces["loose"].xyxy[(faces["loose"].score >= 0.9) & (wide >= 60)]
        if len(clear):
            assert len(faces["edge"]) and (iou_matrix(clear, faces["edge"].xyxy).max(1) >= 0.5).all(), \
                f"frame {frame_ref['index']}: a clear face found at 0.6 is lost at 0.7"
    assert usable > 100 and found["loose"] >= usable * 0.9
    assert found["edge"] >= found["loose"] - 1, found
    assert candidates["edge"] < candidates["loose"] * 0.8, candidates  # the point of it: less for R-Net
