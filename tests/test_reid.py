"""Embedding back-off schedule and identity voting (pure)."""

import numpy as np

from edged.tracking.reid import Reid, ReidSettings
from edged.types import Identity

BOX = np.array([100, 100, 180, 180], np.float32)


def run(reid: Reid, detections: int, person: str | None = "alice", quality: float = 0.5, box=BOX) -> list[int]:
    """Feeds `detections` detections of track 1; returns the detection numbers embedded."""
    embedded = []
    for n in range(detections):
        if reid.due(1, box, quality):
            reid.record(1, Identity(person, 0.7), np.ones(4, np.float32) / 2, quality)
            embedded.append(n)
    return embedded


def test_interval_doubles_up_to_the_cap():
    reid = Reid(ReidSettings(max_interval=8))
    assert run(reid, 40) == [0, 1, 3, 7, 15, 23, 31, 39]


def test_disabled_back_off_embeds_every_detection():
    assert run(Reid(ReidSettings(enabled=False)), 5) == [0, 1, 2, 3, 4]


def test_identity_change_resets_the_interval():
    reid = Reid(ReidSettings(max_interval=16))
    run(reid, 16)  # interval now 16
    # bob outvotes alice after enough embeddings; each change of leader resets the gap to 1
    for _ in range(3):
        reid.record(1, Identity("bob", 0.8), np.ones(4, np.float32) / 2, 0.9)
    assert reid.tracks[1].current == "bob" and reid.tracks[1].interval == 1


def test_big_jump_or_much_better_face_forces_an_embedding():
    reid = Reid()
    run(reid, 8, quality=0.3)  # interval is long now
    assert not reid.due(1, BOX, 0.3)
    assert reid.due(1, BOX + 200, 0.3)  # jumped
    reid.record(1, Identity("alice", 0.7), np.ones(4) / 2, 0.3)
    assert not reid.due(1, BOX + 200, 0.3)
    assert reid.due(1, BOX + 200, 0.9)  # three times the quality


def test_vote_is_weighted_by_quality_not_last_answer():
    reid = Reid()
    reid.record(1, Identity("alice", 0.8), np.ones(4) / 2, 0.9)
    reid.record(1, Identity("alice", 0.6), np.ones(4) / 2, 0.8)
    reid.record(1, Identity("bob", 0.4), np.ones(4) / 2, 0.1)  # a poor, late frame
    identity = reid.identity(1, confirmed=True)
    assert identity.person == "alice" and identity.votes == 2 and identity.confirmed
    assert abs(identity.similarity - 0.7) < 1e-6
    assert reid.tracks[1].switches == 0


def test_a_name_needs_a_clear_margin_over_the_runner_up_and_unknown():
    reid = Reid()
    assert not reid.identity(1, confirmed=True).identified  # never embedded: not yet identified
    reid.record(1, Identity("alice", 0.5), np.ones(4) / 2, 0.5)
    assert reid.identity(1).person == "alice"  # one clear answer decides
    reid.record(1, Identity(None, 0.2), np.ones(4) / 2, 0.5)
    tie = reid.identity(1)
    assert tie.person is None and not tie.identified  # alice against unknown, a tie: no answer
    reid.record(1, Identity("alice", 0.5), np.ones(4) / 2, 0.5)
    assert reid.identity(1).person == "alice"  # 2 against 1: a margin of a third
    reid.record(2, Identity(None, 0.1), np.ones(4) / 2, 0.5)
    stranger = reid.identity(2)
    assert stranger.person is None and stranger.identified  # a clear "unknown" is an answer
    strict = Reid(ReidSettings(margin=0.5))
    for person in ("alice", "alice", None):
        strict.record(1, Identity(person, 0.5), np.ones(4) / 2, 0.5)
    assert not strict.identity(1).identified
