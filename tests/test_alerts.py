"""Alert engine: modes, once per track, cooldown, mute list (pure, fake clock)."""

from dataclasses import replace

import pytest

from edged.alerts import AlertEngine, AlertSettings
from edged.events import TrackEvent


def event(kind, track=1, person=None, t=0.0, confirmed=True, camera="door"):
    return TrackEvent(kind, camera, track, t, 0.0, (0, 0, 10, 10), person, 0.7 if person else -1.0, confirmed)


@pytest.mark.parametrize("mode, alerted", [
    ("none", []),
    ("unknowns", [None, "unknown-3"]),
    ("knowns", ["alice"]),
    ("all", [None, "alice", "unknown-3"]),
])
def test_modes(mode, alerted):
    engine = AlertEngine(AlertSettings(mode=mode, cooldown_s=0))
    got = []
    for track, person in enumerate([None, "alice", "unknown-3"], start=1):
        got += [a.person for a in engine.handle(event("confirmed", track, person))]
    assert got == alerted


def test_only_confirmed_tracks_alert():
    engine = AlertEngine(AlertSettings(mode="all"))
    assert engine.handle(event("started", confirmed=False)) == []
    assert engine.handle(event("confirmed", confirmed=False)) == []
    assert len(engine.handle(event("confirmed"))) == 1


def test_once_per_track_without_cooldown_even_when_identity_changes():
    engine = AlertEngine(AlertSettings(mode="all", cooldown_s=0))
    assert len(engine.handle(event("confirmed", person=None))) == 1
    assert engine.handle(event("identity_changed", person="alice", t=5)) == []
    engine.handle(event("ended", t=6))
    assert len(engine.handle(event("confirmed", track=2, person="alice", t=7))) == 1


def test_known_mode_alerts_when_an_unknown_track_is_recognised():
    engine = AlertEngine(AlertSettings(mode="knowns"))
    assert engine.handle(event("confirmed", person=None)) == []
    alerts = engine.handle(event("identity_changed", person="alice", t=2))
    assert [(a.person, a.reason) for a in alerts] == [("alice", "known")]


def test_cooldown_is_per_person_across_tracks():
    engine = AlertEngine(AlertSettings(mode="all", cooldown_s=60))
    assert len(engine.handle(event("confirmed", 1, "alice", t=0))) == 1
    assert engine.handle(event("confirmed", 2, "alice", t=30)) == []  # her track broke up
    assert len(engine.handle(event("confirmed", 3, "bob", t=31))) == 1
    assert engine.handle(event("confirmed", 4, "alice", t=61)) == []  # still the same visit (seen at 30)
    engine.handle(event("ended", 4, "alice", t=70))
    assert len(engine.handle(event("confirmed", 5, "alice", t=131))) == 1  # away for 61 s: a new visit


def test_by_default_one_walk_by_is_one_alert_and_two_walk_bys_are_two():
    """The default cooldown: a person whose track breaks (3 s apart, as measured with Home
    Assistant) alerts once; a stranger who comes back two minutes later alerts again."""
    engine = AlertEngine(AlertSettings(mode="all"))
    assert len(engine.handle(event("confirmed", 24, "obama", t=0))) == 1
    engine.handle(event("ended", 24, "obama", t=4))
    assert engine.handle(event("confirmed", 25, "obama", t=7)) == []
    engine.handle(event("ended", 25, "obama", t=12))
    assert len(engine.handle(event("confirmed", 30, "unknown-4", t=20))) == 1
    engine.handle(event("ended", 30, "unknown-4", t=25))
    assert len(engine.handle(event("confirmed", 31, "unknown-4", t=145))) == 1


def test_unidentified_faces_share_one_cooldown():
    engine = AlertEngine(AlertSettings(mode="unknowns", cooldown_s=60))
    assert len(engine.handle(event("confirmed", 1, None, t=0))) == 1
    assert [engine.handle(event("confirmed", n, None, t=n)) for n in range(2, 9)] == [[]] * 7  # a crowd
    assert len(engine.handle(event("confirmed", 9, "unknown-4", t=10))) == 1  # a stranger with an id
    assert len(engine.handle(event("confirmed", 10, None, t=70))) == 1  # 62 s after the crowd was last seen


def test_ignore_list_and_switch_off():
    engine = AlertEngine(AlertSettings(mode="all", ignore=("alice", "unknown-2")))
    assert engine.handle(event("confirmed", 1, "alice")) == []
    assert engine.handle(event("confirmed", 2, "unknown-2")) == []
    engine.enabled = False
    assert engine.handle(event("confirmed", 3, "bob")) == []
    engine.enabled = True
    alert = engine.handle(event("confirmed", 4, "bob"))[0]
    assert alert.to_json()["id"] == "0.000-door-4" and alert.who == "bob"


def test_bad_settings():
    with pytest.raises(ValueError, match="alert mode 'loud'"):
        AlertSettings(mode="loud")


def test_a_track_without_an_answer_is_no_stranger_until_its_time_is_up():
    engine = AlertEngine(AlertSettings(mode="unknowns", cooldown_s=0))
    not_yet = TrackEvent("confirmed", "door", 1, 0.0, 0.0, (0, 0, 10, 10), None, -1.0, True, identified=False)
    assert engine.handle(not_yet) == []
    overdue = engine.handle(replace(not_yet, kind="unidentified", time=10.0))
    assert [(a.reason, a.who) for a in overdue] == [("unidentified", "not yet identified")]
    answered = replace(not_yet, kind="identity_changed", identified=True, track_id=2)
    assert [a.reason for a in engine.handle(answered)] == ["unknown"]
    assert AlertEngine(AlertSettings(mode="knowns")).handle(replace(not_yet, kind="unidentified")) == []
