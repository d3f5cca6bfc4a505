"""Tracker behaviour on hand-made box sequences (pure, fake clock)."""

import numpy as np
import pytest

from edged.tracking.tracker import Tracker, TrackerSettings
from edged.types import Faces


def faces(*boxes: tuple[float, float, float, float]) -> Faces:
    b = np.array(boxes, np.float32).reshape(-1, 4)
    n = len(b)
    return Faces(b, np.full(n, 0.99, np.float32), np.zeros((n, 5, 2), np.float32))


def box(x: float, y: float = 100, size: float = 80) -> tuple[float, float, float, float]:
    return (x, y, x + size, y + size)


@pytest.mark.parametrize("fps, every", [(25, 1), (25, 3), (10, 1), (30, 6)])
def test_one_moving_face_keeps_its_id(fps, every):
    tracker = Tracker()
    ids = set()
    for frame in range(0, 100, every):
        update = tracker.update(faces(box(10 + 4 * frame)), frame / fps)
        ids.update(update.faces.track_id.tolist())
    assert ids == {1}


def test_fast_face_keeps_its_id_between_sparse_detections():
    """Two face widths between detections (a person walking right past the camera)."""
    tracker = Tracker()
    ids = [int(tracker.update(faces(box(10 + 160 * k)), k * 0.24).faces.track_id[0]) for k in range(5)]
    assert ids == [1] * 5


def test_missed_detections_keep_the_track_until_max_age_in_seconds():
    for fps in (10, 50):
        tracker = Tracker(TrackerSettings(max_age_s=0.5))
        tracker.update(faces(box(100)), 0.0)
        for frame in range(1, int(0.4 * fps)):  # 0.4 s with no detection
            tracker.update(Faces.empty(), frame / fps)
        assert tracker.update(faces(box(104)), 0.4).faces.track_id.tolist() == [1]
        for frame in range(1, int(0.6 * fps) + 2):  # more than 0.5 s with no detection
            update = tracker.update(Faces.empty(), 0.4 + frame / fps)
            if update.ended:
                assert [t.track_id for t in update.ended] == [1]
                assert 0.5 < 0.4 + frame / fps <= 0.5 + 0.4 + 1.5 / fps
                break
        else:
            pytest.fail("the track never ended")
        assert tracker.update(faces(box(104)), 2.0).faces.track_id.tolist() == [2]


def test_crossing_faces_keep_their_ids():
    """Two faces walk towards each other, overlap, and walk on; one is hidden for a while."""
    tracker = Tracker()
    seen: dict[str, set[int]] = {"right": set(), "left": set()}
    for frame in range(60):
        a = box(20 + 8 * frame)  # walks right
        b = box(500 - 8 * frame, y=110)  # walks left, in front
        hidden = 28 <= frame <= 32  # a is behind b
        update = tracker.update(faces(b) if hidden else faces(a, b), frame / 25)
        ids = update.faces.track_id.tolist()
        if not hidden:
            seen["right"].add(ids[0])
        seen["left"].add(ids[-1])
    assert seen == {"right": {1}, "left": {2}}


def test_credence_confirms_after_n_detections():
    tracker = Tracker(TrackerSettings(credence=3))
    confirmed_at = None
    for frame in range(5):
        update = tracker.update(faces(box(100 + frame)), frame / 25)
        if update.confirmed:
            confirmed_at = frame
    assert confirmed_at == 2 and tracker.tracks[1].confirmed


def test_predict_moves_boxes_with_velocity():
    tracker = Tracker()
    tracker.update(faces(box(100)), 0.0)
    tracker.update(faces(box(110)), 0.1)  # 100 px/s to the right
    predicted = tracker.predict(0.2)
    np.testing.assert_allclose(predicted.xyxy[0], box(120), atol=1e-3)
    assert predicted.track_id.tolist() == [1]


def test_each_tracker_counts_its_own_ids_and_reset_starts_over():
    first, second = Tracker(), Tracker()
    assert first.update(faces(box(0), box(300)), 0).faces.track_id.tolist() == [1, 2]
    assert second.update(faces(box(0)), 0).faces.track_id.tolist() == [1]
    first.reset()
    assert first.update(faces(box(0)), 0).faces.track_id.tolist() == [1]


def test_a_face_far_away_is_a_new_track():
    tracker = Tracker()
    tracker.update(faces(box(0)), 0.0)
    assert tracker.update(faces(box(900)), 0.04).faces.track_id.tolist() == [2]
