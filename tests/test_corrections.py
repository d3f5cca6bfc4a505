"""The owner's corrections on real photos and models: "not X" stops a false name at once (in
another process too), "this is X" names strangers and adds good faces only, corrections
survive export/import, the command line and MQTT (real Mosquitto) reach the same functions."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from services import Daemon, Mosquitto, Subscriber, config, free_port, gallery_copy, wait_until

from edged import corrections
from edged.engine import EngineOptions, FaceEngine
from edged.errors import EdgedError
from edged.gallery import Gallery
from edged.io.images import load_image
from edged.signing import sign
from edged.sinks import mqtt_messages as m

from .conftest import DATA, run_edged

FACES = DATA / "faces"


@pytest.fixture(scope="module")
def engine():
    return FaceEngine(EngineOptions(embedder="mobilefacenet"))


def vector(engine, person, photo):
    return engine.embed_for_enroll(load_image(FACES / person / photo), photo)[0]


def test_not_x_stops_a_false_name_and_keeps_the_true_ones(engine, tmp_path):
    model_id = engine.embedder_loaded().model_id
    biden2, obama2 = vector(engine, "biden", "biden2.jpg"), vector(engine, "obama", "obama2.jpg")
    with Gallery(tmp_path / "g.db") as gallery, Gallery(tmp_path / "g.db") as daemon_view:
        gallery.enroll("obama", vector(engine, "obama", "obama.jpg")[None], model_id)
        # A threshold loose enough that biden is taken for obama: the false accept to correct.
        loose = daemon_view.match(biden2[None], model_id, -1.0)[0].similarity - 0.01
        assert daemon_view.match(biden2[None], model_id, loose)[0].person == "obama"
        face = corrections.face_from_photo(engine, FACES / "biden" / "biden.jpg")  # another photo of him
        outcome = corrections.reject(gallery, "obama", face, model_id)
        assert outcome.ok and "not obama" in outcome.message
        # The other connection (the daemon's) sees it at its next match, no restart.
        assert daemon_view.match(biden2[None], model_id, loose)[0].person is None
        assert daemon_view.match(obama2[None], model_id, loose)[0].person == "obama"
        gallery.export(tmp_path / "export.json", model_id)
    document = json.loads((tmp_path / "export.json").read_text())
    assert len(document["people"][0]["negatives"]) == 1
    with Gallery(tmp_path / "other.db") as other:
        assert other.import_file(tmp_path / "export.json", model_id, engine.embedder_spec.output_size) == 1
        assert other.negatives("obama") == 1
        assert other.match(biden2[None], model_id, loose)[0].person is None


def test_confirm_adds_good_faces_only_and_names_strangers(engine, tmp_path):
    model_id = engine.embedder_loaded().model_id
    with Gallery(tmp_path / "g.db") as gallery:
        gallery.enroll("obama", vector(engine, "obama", "obama.jpg")[None], model_id)
        good = corrections.face_from_photo(engine, FACES / "obama" / "obama2.jpg")
        assert corrections.confirm(gallery, engine, "obama", good).ok
        assert gallery.people()[0].embeddings[model_id] == 2
        blurred = cv2.resize(good.image, None, fx=0.12, fy=0.12)  # a face of about 30 px
        refused = corrections.confirm(gallery, engine, "obama", corrections.Face(good.vector, "blurred", blurred))
        assert not refused.ok and "left as they were" in refused.message
        assert gallery.people()[0].embeddings[model_id] == 2
        stranger = gallery.new_anonymous(vector(engine, "paul_rudd", "1.jpg")[None], model_id, "door")
        gallery.add_sighting(stranger, "door", 100.0, 110.0)
        assert corrections.apply(gallery, engine, tmp_path, "confirm", "paul", stranger=stranger).ok
        assert [s.person for s in gallery.sightings()] == ["paul"]
        with pytest.raises(EdgedError, match="only be confirmed"):
            corrections.apply(gallery, engine, tmp_path, "reject", "paul", stranger="unknown-9")


def test_event_references_are_checked_before_any_file_is_read(tmp_path):
    for crafted in ("../../etc/passwd", "1.000-door-1/../../x", "1.000-door-1\x00", ""):
        with pytest.raises(EdgedError, match="not an event id"):
            corrections.event_face_path(tmp_path, crafted)
    with pytest.raises(EdgedError, match="no face kept"):
        corrections.event_face_path(tmp_path, "1763800000.123-door-4")


def test_in_situ_estimate_counts_strangers_faces_named_as_someone(engine, tmp_path):
    model_id = engine.embedder_loaded().model_id
    with Gallery(tmp_path / "g.db") as gallery:
        gallery.enroll("obama", vector(engine, "obama", "obama.jpg")[None], model_id)
        gallery.new_anonymous(np.stack([vector(engine, "biden", "biden.jpg"), vector(engine, "biden", "biden2.jpg")]),
                              model_id)
        gallery.new_anonymous(vector(engine, "obama", "obama2.jpg")[None], model_id)  # a miss: obama as a stranger
        estimate = corrections.in_situ_false_accepts(gallery, model_id, engine.match_threshold)
    assert (estimate.strangers, estimate.faces, estimate.false_accepts) == (2, 3, 1)
    assert estimate.to_json()["rate"] == round(1 / 3, 4)


def test_command_line_reject_confirm_and_stats(engine, tmp_path):
    gallery = tmp_path / "gallery.db"
    run_edged("enroll", "obama", str(FACES / "obama" / "obama.jpg"), "--gallery", str(gallery), check=True)
    media = tmp_path / "media"
    media.mkdir()
    shutil.copy(FACES / "biden" / "biden.jpg", media / "1763800000.123-door-4-face.jpg")
    rejected = run_edged("gallery", "reject", "obama", "--event", "1763800000.123-door-4", "--gallery", str(gallery))
    assert rejected.returncode == 0 and "event 1763800000.123-door-4 is not obama" in rejected.stdout
    confirmed = run_edged("gallery", "confirm", "obama", "--photo", str(FACES / "obama" / "obama2.jpg"),
                          "--gallery", str(gallery))
    assert confirmed.returncode == 0 and "added to obama" in confirmed.stdout
    stats = json.loads(run_edged("gallery", "stats", "--json", "--gallery", str(gallery), check=True).stdout)
    assert stats["enrolled"] == 1 and stats["negatives"] == 1
    assert stats["false_accepts_in_situ"]["faces"] == 0
    missing = run_edged("gallery", "reject", "obama", "--event", "1.000-door-1", "--gallery", str(gallery))
    assert missing.returncode != 0 and "no face kept for event 1.000-door-1" in missing.stderr


def test_mqtt_corrections_reach_the_running_daemon(scenario_video, enrolled_gallery, tmp_path):
    """Over a real Mosquitto: naming the scenario's stranger takes effect on the next loop of
    the video without a restart; a "not X" on an alert's face is stored; a crafted command is
    refused with a message on the result topic. Commands are signed with the shared key."""
    topics = m.Topics("edged", "box1", "door")
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    subscriber = Subscriber(broker.port, client_id="sub-corrections")
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path)
    key = "correction-key-0123456789"
    (tmp_path / "mqtt-key").write_text(key + "\n")
    extra = (f'[device]\nname = "box1"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\n'
             f'stats_interval_s = 1.0\nkey_file = "{tmp_path / "mqtt-key"}"\n')
    text = config(scenario_video, gallery, port).replace("[mqtt]\nstats_interval_s = 1.0\n", "") + extra
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        def alert_of(check):
            return next((a for a in subscriber.json(topics.alerts) if check(a.get("person"))), None)

        wait_until(lambda: alert_of(lambda p: p and p.startswith("unknown-")), 60, "the stranger's alert")
        wait_until(lambda: alert_of(lambda p: p == "obama"), 30, "obama's alert")
        stranger = alert_of(lambda p: p and p.startswith("unknown-"))["person"]
        obama = alert_of(lambda p: p == "obama")
        wait_until(lambda: (tmp_path / "media" / f"{obama['id']}-face.jpg").exists(), 10, "obama's kept face")

        def send(body):
            count = len(subscriber.json(topics.gallery_result))
            subscriber.client.publish(topics.gallery_command, sign(key.encode(), json.dumps(body)), qos=1)
            wait_until(lambda: len(subscriber.json(topics.gallery_result)) > count, 20, "the result")
            return subscriber.json(topics.gallery_result)[-1]

        named = send({"action": "confirm", "person": "paul", "stranger": stranger})
        assert named["ok"] and f"{stranger} is paul" in named["message"]
        wait_until(lambda: any(e.get("person") == "paul" for e in subscriber.json(topics.events)), 30,
                   "paul named on the video's next loop")
        rejected = send({"action": "reject", "person": "biden", "event": obama["id"]})
        assert rejected["ok"] and "is not biden" in rejected["message"]
        crafted = send({"action": "reject", "person": "obama", "event": "../../gallery.db"})
        assert not crafted["ok"] and "not an event id" in crafted["message"]
        bad = send({"action": "delete", "person": "obama"})
        assert not bad["ok"] and "action" in bad["message"]
    finally:
        daemon.stop()
        subscriber.close()
        broker.stop()
    with Gallery(gallery) as after:
        assert after.negatives("biden") == 1
        assert "paul" in [p.name for p in after.people()]
