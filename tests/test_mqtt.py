"""MQTT against a real Mosquitto broker: availability and last will, events and alerts per
mode, Home Assistant discovery, presence clearing, control switches, and alerts kept while
the broker is down arriving after it is back, none lost and in order."""

import json
import re
import signal
import time

import cv2
import numpy as np
import pytest
from services import Daemon, Mosquitto, Subscriber, config, free_port, gallery_copy, home_assistant_python, wait_until

from edged.events import TrackEvent
from edged.gallery import Gallery
from edged.sinks import mqtt_messages as m

TOPICS = m.Topics("edged", "box1", "door")


def mqtt_config(video, gallery, status_port, broker_port, **kwargs):
    extra = (f'[device]\nname = "box1"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker_port}\n'
             "keepalive_s = 5\npresence_timeout_s = 1.0\nstats_interval_s = 1.0\ncamera_interval_s = 2.0\n")
    return config(video, gallery, status_port, **kwargs).replace("[mqtt]\nstats_interval_s = 1.0\n", "") + extra


def test_message_builders_without_a_broker():
    event = TrackEvent("confirmed", "door", 7, 10.0, 9.5, (1.0, 2.0, 3.0, 4.0), "alice", 0.71234, True)
    topic, payload, qos, retain = m.event_message(TOPICS, event)
    assert (topic, qos, retain) == ("edged/box1/door/events", 1, False)
    body = json.loads(payload)
    assert body["type"] == "new" and body["id"] == "9.500-door-7" and body["person"] == "alice"
    assert body["end_time"] is None and body["similarity"] == 0.7123
    assert m.event_message(TOPICS, TrackEvent("started", "door", 7, 1, 1, (0, 0, 1, 1), None, -1, False)) is None
    assert m.availability(TOPICS, False) == ("edged/box1/available", "offline", 1, True)
    assert m.presence(TOPICS, 12, True) == ("edged/box1/door/person/12", "ON", 1, True)
    assert m.switch_state(TOPICS, "alerts", True) == ("edged/box1/alerts/state", "ON", 1, True)


@pytest.mark.parametrize(("name", "expected"), [
    ("alice", "alice"), ("rose_leslie", "rose_leslie"), ("José Núñez", "jose_nunez_"), ("küche", "kuche_"),
    ("李小龙", "p_"), ("Alice", "alice_"),
])
def test_names_become_ascii_slugs_in_topics_and_ids(name, expected):
    import re

    value = m.slug(name)
    assert value.startswith(expected) and re.fullmatch(r"[a-z0-9_]+", value)
    assert m.slug("José") != m.slug("Jose") and m.slug("李小龙") != m.slug("李连杰")
    topic = TOPICS.old_person(name)
    assert not set(topic) & set("+#") and topic.isascii()
    config_topic, body, _, retain = m.person_discovery(TOPICS, "homeassistant", name, 7)
    assert json.loads(body)["name"] == f"{name} at door" and retain and config_topic.isascii()
    assert json.loads(body)["state_topic"] == "edged/box1/door/person/7"
    assert m.person_discovery(TOPICS, "homeassistant", name, 7, removed=True)[1] == ""


# Home Assistant's published discovery rules (integrations/mqtt, "Discovery messages", and each
# platform's page): the topic is <prefix>/<component>/[<node_id>/]<object_id>/config with ids of
# [a-zA-Z0-9_-]; each platform's required keys; entities need a unique_id to join a device;
# a device needs identifiers or connections; a device trigger's automation_type is "trigger".
DISCOVERY_TOPIC = re.compile(r"^homeassistant/(?P<component>[a-z_]+)/(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config$")
REQUIRED = {"sensor": {"state_topic"}, "binary_sensor": {"state_topic"}, "switch": {"command_topic"},
            "event": {"state_topic", "event_types"}, "image": {"image_topic"}, "camera": {"topic"},
            "device_automation": {"automation_type", "topic", "type", "subtype"}}
WILDCARDS = set("+#")


def check_home_assistant_rules(topic: str, body: dict) -> None:
    match = DISCOVERY_TOPIC.match(topic)
    assert match, f"{topic}: not a discovery topic Home Assistant accepts"
    component = match["component"]
    assert component in REQUIRED, f"{topic}: component {component} not used by edged"
    missing = REQUIRED[component] - set(body)
    assert not missing, f"{topic}: lacks {missing}"
    assert body["device"].get("identifiers"), f"{topic}: a device needs identifiers"
    if component == "device_automation":
        assert body["automation_type"] == "trigger"
    else:
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", body["unique_id"]), f"{topic}: unique_id {body['unique_id']!r}"
    for key, value in body.items():
        if key.endswith("topic"):
            assert isinstance(value, str) and not WILDCARDS & set(value), f"{topic}: {key} {value!r}"


def test_discovery_payloads():
    published = m.discovery(TOPICS, "homeassistant", {"alice": 3}, "http://box:8090/cameras/door/")
    # The one-camera edged's box-wide fps and latency sensors are cleared (now per camera).
    cleared = {topic for topic, payload, _, retain in published if payload == "" and retain}
    assert cleared == {f"homeassistant/sensor/edged_box1/{key}/config" for key in ("fps", "latency_ms")}
    messages = {topic: json.loads(payload) for topic, payload, _, _ in published if topic not in cleared}
    # Per camera: detections achieved and wanted, and whether inference keeps up, from its own stats.
    for key in ("fps", "detect_fps_target", "camera_fps", "latency_ms"):
        assert messages[f"homeassistant/sensor/edged_box1/door_{key}/config"]["state_topic"] == "edged/box1/door/stats"
    behind = messages["homeassistant/binary_sensor/edged_box1/door_behind/config"]
    assert behind["entity_category"] == "diagnostic" and "falling_behind" in behind["value_template"]
    assert messages["homeassistant/sensor/edged_box1/cpu_percent/config"]["state_topic"] == "edged/box1/stats"
    sensor = messages["homeassistant/sensor/edged_box1/door_last_person/config"]
    assert sensor["state_topic"] == "edged/box1/door/last_person"
    assert sensor["availability_topic"] == "edged/box1/available"
    assert sensor["device"]["identifiers"] == ["edged_box1"]
    person = messages["homeassistant/binary_sensor/edged_box1/door_person_3/config"]
    assert person["state_topic"] == "edged/box1/door/person/3" and person["payload_on"] == "ON"
    # Off stays off at rest (no expire_after); the device links to its live page.
    assert "expire_after" not in person and person["name"] == "alice at door"
    assert sensor["device"]["configuration_url"] == "http://box:8090/cameras/door/"
    assert sensor["origin"]["name"] == "edged"
    switch = messages["homeassistant/switch/edged_box1/alerts/config"]
    assert switch["command_topic"] == "edged/box1/alerts/set"
    assert "homeassistant/sensor/edged_box1/door_faces/config" in messages
    entities = [s for t, s in messages.items() if "/device_automation/" not in t]
    assert len({s["unique_id"] for s in entities}) == len(entities)
    for topic, body in messages.items():
        check_home_assistant_rules(topic, body)
    triggers = {b["type"]: b for t, b in messages.items() if "/device_automation/" in t}
    assert set(triggers) == {"known_seen", "stranger_seen", "unidentified_seen"}
    assert {(b["topic"], b["subtype"], b["payload"]) for b in triggers.values()} == {
        ("edged/box1/door/trigger", "door", kind) for kind in ("known", "stranger", "unidentified")}
    # Names Home Assistant would drop or that would be wildcards still give valid topics and ids.
    for topic, payload, _, _ in m.discovery(TOPICS, "homeassistant", {"José Núñez": 1, "a+b": 2, "küche #1": 3}):
        if payload:
            check_home_assistant_rules(topic, json.loads(payload))


@pytest.mark.parametrize("mode, alerted", [("knowns", {"obama", "biden", "rose_leslie"}), ("unknowns", {"unknown-1"})])
def test_events_alerts_discovery_and_presence(broker, scenario_video, enrolled_gallery, tmp_path, mode, alerted):
    subscriber = Subscriber(broker.port, client_id=f"sub-{mode}")
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path)
    daemon = Daemon(tmp_path, mqtt_config(scenario_video, gallery, port, broker.port, loop=False, mode=mode))
    daemon.start()
    try:
        assert daemon.process.wait(90) == 0  # the file ends, the daemon stops by itself
        wait_until(lambda: subscriber.on(TOPICS.available)[-1:] == [b"offline"], 10, "a goodbye")
    finally:
        daemon.stop()
        subscriber.close()
    assert subscriber.on(TOPICS.available)[0] == b"online"
    events = subscriber.json(TOPICS.events)
    new = {e["person"] for e in events if e["type"] == "new"}
    assert new == {"obama", "biden", "rose_leslie", "unknown-1"}
    ended = [e for e in events if e["type"] == "end"]
    assert {e["person"] for e in ended} == new and all(e["end_time"] >= e["start_time"] for e in ended)
    alerts = subscriber.json(TOPICS.alerts)
    assert {a["person"] for a in alerts} == alerted
    assert len(alerts) == len({a["id"] for a in alerts}), "once per track"
    assert subscriber.on(TOPICS.snapshot) and subscriber.on(TOPICS.snapshot)[0][:2] == b"\xff\xd8"
    # Home Assistant's camera entity: the live view as a picture every camera_interval_s.
    picture = cv2.imdecode(np.frombuffer(subscriber.on(TOPICS.camera_picture)[-1], np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[1] == 640
    assert any(t == "homeassistant/camera/edged_box1/door_live/config" for t, _, _ in subscriber.messages)
    # The whole frame too (its own image entity), larger than the face alone.
    frame = cv2.imdecode(np.frombuffer(subscriber.on(TOPICS.frame)[0], np.uint8), cv2.IMREAD_COLOR)
    face = cv2.imdecode(np.frombuffer(subscriber.on(TOPICS.snapshot)[0], np.uint8), cv2.IMREAD_COLOR)
    assert frame.shape[0] * frame.shape[1] > 4 * face.shape[0] * face.shape[1]
    # Presence: on while a person is in view, off a second after their track ended.
    # (First OFF: on connect, nobody enrolled is left ON by a retained state from before.)
    with Gallery(gallery) as g:
        obama = g.person_ids()["obama"]
    # (The OFF a second after his track ended comes only if the daemon still runs then: the
    # file may end first on a loaded machine, and a stop keeps presence as it was.)
    states = subscriber.on(TOPICS.person(obama))
    assert states[:2] == [b"OFF", b"ON"] and states[2:3] in ([], [b"OFF"]), states
    assert subscriber.on(TOPICS.last_person)
    discovery = [t for t, _, retain in subscriber.messages if t.startswith("homeassistant/") and retain is False]
    assert f"homeassistant/binary_sensor/edged_box1/door_person_{obama}/config" in discovery
    for entity in ("event/edged_box1/door_face", "image/edged_box1/door_snapshot",
                   "binary_sensor/edged_box1/door_stranger", "sensor/edged_box1/rss_mb"):
        assert f"homeassistant/{entity}/config" in discovery, entity
    # Alerts and events carry absolute links; the events of a track that alerted carry its pictures.
    base = f"http://127.0.0.1:{port}/"
    assert all(a["snapshot"].startswith(base + "media/") and a["clip"].startswith(base + "clips/") for a in alerts)
    alerted_ids = {a["id"] for a in alerts}
    ends = [e for e in ended if e["id"] in alerted_ids]
    assert ends and all(e["snapshot"].startswith(base) and e["clip"].startswith(base) for e in ends)
    fired = subscriber.json(TOPICS.event)
    kinds = {"knowns": {"known"}, "unknowns": {"stranger"}}[mode]
    assert {e["event_type"] for e in fired} == kinds and len(fired) == len(alerts)
    triggered = subscriber.on(TOPICS.trigger)
    assert {t.decode() for t in triggered} == kinds and len(triggered) == len(alerts)
    assert subscriber.on(TOPICS.stranger)[:2] == [b"OFF", b"ON"]  # none at connect, then unknown-1
    attributes = json.loads(subscriber.on(TOPICS.last_person_attributes)[-1])
    assert attributes["person"] in {"obama", "biden", "rose_leslie"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", attributes["time"]), attributes
    stats = subscriber.json(TOPICS.camera_stats)
    assert stats and {"fps", "skipped", "latency_ms", "embeddings_per_s", "cpu_percent", "rss_mb"} <= set(stats[0])
    box = subscriber.json(TOPICS.stats)  # one message for the box, each camera's figures in it
    assert box and {"cpu_percent", "rss_mb", "cameras"} <= set(box[0]) and set(box[0]["cameras"]) == {"door"}


def test_last_will_says_offline_when_the_daemon_dies(broker, scenario_video, enrolled_gallery, tmp_path):
    subscriber = Subscriber(broker.port, topic=TOPICS.available, client_id="sub-will")
    port = free_port()
    daemon = Daemon(tmp_path, mqtt_config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port, broker.port))
    daemon.start()
    try:
        wait_until(lambda: subscriber.on(TOPICS.available)[-1:] == [b"online"], 60, "online")
        daemon.signal(signal.SIGKILL)
        wait_until(lambda: subscriber.on(TOPICS.available)[-1:] == [b"offline"], 20, "the broker's last will")
    finally:
        daemon.stop()
        subscriber.close()


def test_control_switches(broker, scenario_video, enrolled_gallery, tmp_path):
    subscriber = Subscriber(broker.port, client_id="sub-control")
    port = free_port()
    daemon = Daemon(tmp_path, mqtt_config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port, broker.port))
    daemon.start()
    try:
        wait_until(lambda: subscriber.on(TOPICS.switch("alerts")), 60, "the alerts switch state")
        subscriber.client.publish(TOPICS.switch_command("alerts"), "OFF", qos=1)
        wait_until(lambda: (daemon.status(port) or {}).get("alerts_enabled") is False, 10, "alerts off")
        wait_until(lambda: subscriber.on(TOPICS.switch("alerts"))[-1:] == [b"OFF"], 10, "the OFF state published")
        subscriber.client.publish(TOPICS.switch_command("detection"), "OFF", qos=1)
        wait_until(lambda: (daemon.status(port) or {}).get("detection_enabled") is False, 10, "detection off")
        # While off, latency is unknown rather than its last value; switched back on, the off
        # time is not counted as falling behind.
        wait_until(lambda: [s for s in subscriber.json(TOPICS.camera_stats)[-1:] if s["latency_ms"] is None], 10,
                   "latency unknown")
        time.sleep(6)
        seen = len(subscriber.on(TOPICS.camera_stats))
        subscriber.client.publish(TOPICS.switch_command("detection"), "ON", qos=1)
        wait_until(lambda: len(subscriber.on(TOPICS.camera_stats)) >= seen + 4, 20, "stats after switching on")
        after = subscriber.json(TOPICS.camera_stats)[seen:]
        assert not any(s["falling_behind"] for s in after), after
        assert after[-1]["latency_ms"] is not None and 0 <= after[-1]["cpu_percent"] <= 100
    finally:
        daemon.stop()
        subscriber.close()


def test_alerts_while_the_broker_is_down_arrive_after_in_order(broker, scenario_video, enrolled_gallery, tmp_path):
    subscriber = Subscriber(broker.port, topic=TOPICS.alerts, client_id="sub-outbox")
    port = free_port()
    daemon = Daemon(tmp_path, mqtt_config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port, broker.port))
    daemon.start()
    try:
        wait_until(lambda: subscriber.on(TOPICS.alerts), 60, "a first alert")
        broker.stop()
        logged = lambda: re.findall(r"alert: \S+ on door \(track (\d+)\)", daemon.text())  # noqa: E731
        during = len(logged())
        wait_until(lambda: len(logged()) >= during + 3, 40, "alerts while the broker is down")
        assert "unreachable" in daemon.text()
        broker.start()
        wait_until(lambda: "delivered" in daemon.text(), 40, "the outbox flushed")
    finally:
        assert daemon.stop() == 0
    expected = [int(t) for t in logged()]
    wait_until(lambda: len(subscriber.on(TOPICS.alerts)) >= len(expected), 20, "every alert at the subscriber")
    subscriber.close()
    got = [json.loads(p)["track_id"] for p in subscriber.on(TOPICS.alerts)]
    assert got == expected, "alerts lost or out of order"


def test_tls_and_password(tmp_path, scenario_video, enrolled_gallery):
    broker = Mosquitto(tmp_path / "mosquitto")
    ca = broker.secure("edged", "s3cret-pass")
    broker.start()
    (tmp_path / "mqtt-password").write_text("s3cret-pass\n")
    subscriber = Subscriber(broker.port, topic=TOPICS.available, client_id="sub-tls", ca_file=ca,
                            username="edged", password="s3cret-pass")
    port = free_port()
    secure = (f'username = "edged"\npassword_file = "{tmp_path / "mqtt-password"}"\ntls = true\n'
              f'ca_file = "{ca}"\n')
    text = mqtt_config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port, broker.port) + secure
    daemon = Daemon(tmp_path / "good", text)
    daemon.start()
    try:
        wait_until(lambda: subscriber.on(TOPICS.available)[-1:] == [b"online"], 60, "online over TLS")
    finally:
        daemon.stop()
    wrong = text.replace(str(tmp_path / "mqtt-password"), str(tmp_path / "wrong"))
    (tmp_path / "wrong").write_text("guess\n")
    daemon = Daemon(tmp_path / "bad", wrong)
    daemon.start()
    try:
        wait_until(lambda: "refused the connection" in daemon.text(), 60, "the refusal to be logged")
        assert daemon.process.poll() is None, "a refused broker must not stop the daemon"
    finally:
        daemon.stop()
        subscriber.close()
        broker.stop()


def test_discovery_follows_the_gallery_while_running(broker, scenario_video, enrolled_gallery, tmp_path):


    subscriber = Subscriber(broker.port, client_id="sub-follow")
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path)
    daemon = Daemon(tmp_path, mqtt_config(scenario_video, gallery, port, broker.port))
    daemon.start()
    with Gallery(gallery) as g:
        ids = g.person_ids()
    config_of = lambda pid: m.person_discovery(TOPICS, "homeassistant", "", pid)[0]  # noqa: E731
    try:
        wait_until(lambda: subscriber.on(config_of(ids["obama"])), 60, "discovery at start")
        with Gallery(gallery) as g:
            model = next(iter(g.model_ids()))
            g.enroll("José Núñez", np.ones((1, 128), np.float32) / np.sqrt(128), model)  # any unit vector
            g.remove("biden")
            g.rename("rose_leslie", "Rose Leslie")
            jose = g.person_ids()["José Núñez"]
        added = wait_until(lambda: subscriber.on(config_of(jose)), 20, "the new person's sensor")
        assert json.loads(added[-1])["name"] == "José Núñez at door"
        wait_until(lambda: subscriber.on(config_of(ids["biden"]))[-1:] == [b""], 20,
                   "the removed person's sensor cleared")
        # A rename keeps the entity (same unique id and topic), under the new name.
        renamed = wait_until(lambda: [p for p in subscriber.on(config_of(ids["rose_leslie"]))
                                      if p and json.loads(p)["name"] == "Rose Leslie at door"], 20, "the rename")
        assert json.loads(renamed[-1])["unique_id"] == f"edged_box1_door_person_{ids['rose_leslie']}"
    finally:
        daemon.stop()
        subscriber.close()


def test_a_person_named_like_a_built_in_sensor_collides_with_nothing():
    people = {"stranger": 5, "connected": 6, "behind": 7, "faces": 8}
    published = m.discovery(TOPICS, "homeassistant", people)
    bodies = {topic: json.loads(p) for topic, p, _, _ in published if p}
    ids = [b["unique_id"] for t, b in bodies.items() if "/device_automation/" not in t]
    assert len(ids) == len(set(ids))
    assert bodies["homeassistant/binary_sensor/edged_box1/door_stranger/config"]["name"] == "door stranger present"
    # Removing "stranger" clears the person's entity only, never the built-in one; nor does the
    # clean-up of configs by name that edged before 0.2 published.
    removed = m.person_discovery(TOPICS, "homeassistant", "stranger", 5, removed=True)[0]
    old = [t for t, _, _, _ in m.old_person_configs(TOPICS, "homeassistant", list(people))]
    for built_in in ("door_stranger", "door_connected", "door_behind"):
        assert f"homeassistant/binary_sensor/edged_box1/{built_in}/config" not in [removed, *old]


def test_presence_survives_reloads_restarts_and_kill_9(broker, stamped_videos, enrolled_gallery, tmp_path):
    """Obama stays in view (the looped video leaves him out for 3 s, within the 30 s presence
    timeout), biden is never there: a SIGHUP, a SIGTERM and a restart, a kill -9 and a restart
    leave obama ON and biden OFF, with no OFF or ON in between; `online` comes after the states."""
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path)
    with Gallery(gallery) as g:
        ids = g.person_ids()
    text = mqtt_config(stamped_videos["frames"], gallery, port, broker.port).replace(
        "presence_timeout_s = 1.0", "presence_timeout_s = 30.0")
    subscriber = Subscriber(broker.port, client_id="sub-presence")
    daemon = Daemon(tmp_path, text)
    daemon.start()
    obama, biden = TOPICS.person(ids["obama"]), TOPICS.person(ids["biden"])
    try:
        wait_until(lambda: subscriber.on(obama)[-1:] == [b"ON"], 60, "obama present")
        start = len(subscriber.messages)
        reloads = daemon.text().count("configuration reloaded")
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: daemon.text().count("configuration reloaded") > reloads, 30, "the reload")
        time.sleep(3)
        after_reload = subscriber.messages[start:]
        assert (TOPICS.available, b"offline", False) not in after_reload, "a reload said the box went offline"
        for kill in (signal.SIGTERM, signal.SIGKILL):
            daemon.signal(kill)
            daemon.process.wait(30)
            connects = daemon.text().count("MQTT connected")
            daemon.start()
            wait_until(lambda c=connects: daemon.text().count("MQTT connected") > c, 60, "the daemon back")
            wait_until(lambda: subscriber.on(TOPICS.available)[-1:] == [b"online"], 30, "online again")
            time.sleep(3)
        states = [(t, p) for t, p, _ in subscriber.messages[start:] if t in (obama, biden, TOPICS.available)]
        assert (obama, b"OFF") not in states and (biden, b"ON") not in states, states
        # On each connect the states come before `online`.
        onlines = [i for i, (t, p) in enumerate(states) if (t, p) == (TOPICS.available, b"online")]
        assert len(onlines) == 3  # the reload, the restart, the restart after kill -9
        for i in onlines:
            assert {states[i - 1], states[i - 2]} == {(obama, b"ON"), (biden, b"OFF")}, states
    finally:
        daemon.stop()
        subscriber.close()


def test_every_discovery_payload_passes_home_assistants_own_schemas():
    """Home Assistant 2024.1's DISCOVERY_SCHEMA of each platform (and of device triggers), run
    by Home Assistant's own code on every config edged publishes: one camera and several, names
    that collide with built-ins or are not ASCII, the camera entity on and off."""
    import subprocess

    from .conftest import ROOT

    published = m.discovery(TOPICS, "homeassistant", {"alice": 3, "stranger": 4, "José Núñez": 5, "a+b": 6},
                            "http://box:8090/cameras/door/")
    published += m.discovery(m.Topics("edged", "box1", "yard"), "homeassistant", {"alice": 3}, box_wide=False,
                             camera_entity=False)
    published.append(m.person_discovery(TOPICS, "homeassistant", "Rose Leslie", 9))
    payloads = [[topic, payload] for topic, payload, _, _ in published if isinstance(payload, str)]
    result = subprocess.run([str(home_assistant_python()), str(ROOT / "tools" / "ha_schemas.py")],
                            input=json.dumps(payloads), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["errors"] == []
    assert report["checked"] == sum(1 for _, p in payloads if p)
    components = {t.split("/")[1] for t, p in payloads if p}
    assert components == {"binary_sensor", "sensor", "switch", "image", "event", "camera", "device_automation"}
