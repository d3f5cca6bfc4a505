"""Face quality filters on real faces: size, blur, pose, zone."""

import cv2
import numpy as np

from edged.tracking.quality import QualitySettings, assess, yaw_ratio
from edged.tracking.unknowns import UnknownClusters

from .conftest import DATA


def one_face(detector, image):
    faces = detector.detect(image)
    assert len(faces) == 1
    return faces


def test_sharp_frontal_face_passes_and_blurred_one_fails(detector):
    image = cv2.imread(str(DATA / "images" / "obama1.jpg"))
    faces = one_face(detector, image)
    sharp = assess(image, faces, QualitySettings())
    # A blur of 6% of the face's size: what a face walking fast past a camera looks like.
    blurred = cv2.GaussianBlur(image, (0, 0), 0.06 * float(faces.width[0]))
    soft = assess(blurred, faces, QualitySettings())
    assert sharp.passed.all() and not soft.passed.any()
    assert soft.sharpness[0] < sharp.sharpness[0] / 5
    assert soft.score[0] < sharp.score[0]


def test_small_faces_and_zone():
    from edged.types import Faces

    landmarks = np.array([[[30, 40], [60, 40], [45, 55], [35, 70], [55, 70]]], np.float32)
    faces = Faces(np.array([[10, 10, 90, 100]], np.float32), np.array([0.99], np.float32), landmarks)
    image = np.random.default_rng(0).integers(0, 255, (200, 200, 3), dtype=np.uint8)
    assert not assess(image, faces, QualitySettings(min_face_px=100)).passed[0]
    outside = QualitySettings(zone=((100, 100), (200, 100), (200, 200), (100, 200)))
    inside = QualitySettings(zone=((0, 0), (120, 0), (120, 120), (0, 120)))
    assert not assess(image, faces, outside).in_zone[0]
    assert assess(image, faces, inside).in_zone[0]
    # The same zones in fractions of the 200 x 200 picture, as the example file writes them.
    assert not assess(image, faces, QualitySettings(zone=((0.5, 0.5), (1, 0.5), (1, 1), (0.5, 1)))).in_zone[0]
    assert assess(image, faces, QualitySettings(zone=((0, 0), (0.6, 0), (0.6, 0.6), (0, 0.6)))).in_zone[0]
    # The example's "lower 70% of the frame": a face centred at 27.5% of the height is not in it.
    lower = QualitySettings(zone=((0.0, 0.3), (1.0, 0.3), (1.0, 1.0), (0.0, 1.0)))
    assert not assess(image, faces, lower).in_zone[0]


def test_yaw_from_landmarks():
    frontal = np.array([[[30, 40], [60, 40], [45, 55], [35, 70], [55, 70]]], np.float32)
    profile = frontal.copy()
    profile[0, 2] = [62, 55]  # nose beyond the right eye
    assert yaw_ratio(frontal)[0] < 0.05 and yaw_ratio(profile)[0] > 0.5


def test_unknown_clusters_group_by_face():
    rng = np.random.default_rng(3)

    def person(seed_vector, n=3):
        v = seed_vector + rng.normal(0, 0.15, (n, 16))
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    a, b = rng.normal(size=16), rng.normal(size=16)
    clusters = UnknownClusters(0.35, known={"unknown-7": person(b)})
    assert clusters.assign(1, person(a)) == 1  # new group after the known one
    assert clusters.assign(2, person(a)) == 1  # the same stranger again
    assert clusters.assign(3, person(b)) == 0  # the known stranger
    assert [g.name for g in clusters.groups] == ["unknown-7", None]
