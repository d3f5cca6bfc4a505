"""Any client on the broker, against a running daemon on a real Mosquitto: malformed and forged
instance claims, unsigned, replayed and flooded gallery commands, and the links alerts carry.
Nothing a neighbour's smart plug publishes may stop the box, silence it, or change who it
trusts; a broker restart afterwards still gets every alert through."""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from services import Daemon, Mosquitto, Subscriber, config, free_port, gallery_copy, wait_until

from edged.gallery import Gallery
from edged.signing import SignatureError, Verifier, sign
from edged.sinks import mqtt_messages as m
from edged.sinks.claims import Claim, claim_payload, contender, read_claim

TOPICS = m.Topics("edged", "box1", "door")
KEY = "fleet-key-0123456789abcdef"
TOKEN = "Zq7-0d1xW3mNc8LpA5tR-owner"


def test_signed_envelopes_refuse_forgery_replay_and_staleness():
    key = KEY.encode()
    verifier = Verifier(key)
    envelope = sign(key, '{"action": "reject"}')
    assert verifier.verify(envelope).payload == '{"action": "reject"}'
    for raw, why in [(envelope, "replayed"), (sign(b"another-key-0123456789", "{}"), "wrong signature"),
                     (sign(key, "{}", now=time.time() - 3600), "clock"), (b'{"action": "reject"}', "not signed"),
                     (b"[" * 100000, "larger"), (b"[" * 5000 + b"]" * 5000, "not JSON"),
                     (b"[1, 2]", "not a signed envelope"),
                     (b"\xff\xfe", "not JSON")]:
        try:
            verifier.verify(raw)
            raise AssertionError(f"accepted: {raw[:40]!r}")
        except SignatureError as exc:
            assert why in str(exc), (why, str(exc))
    altered = json.loads(sign(key, '{"person": "bob"}'))
    altered["payload"] = '{"person": "mallory"}'
    try:
        verifier.verify(json.dumps(altered).encode())
        raise AssertionError("an altered payload was accepted")
    except SignatureError as exc:
        assert "wrong signature" in str(exc)


def test_claims_of_any_shape_are_read_without_raising():
    ours = Claim("box", "/var/lib/edged", 10, 100.0, 100.0)
    now = time.time()
    for raw in [b'{"host":"evil","state":"/x","time":null}', b'{"host":"evil","state":"/x","time":"abc"}',
                b"[1, 2]", b"\xff", b"[" * 5000, b'{"host": 5}', b"", b"x" * 10000]:
        claim, _ = read_claim(raw, None)
        assert claim is None
    future = json.dumps({"host": "evil", "state": "/x", "pid": 1, "started": 0, "time": now + 1e9}).encode()
    claim, _ = read_claim(future, None)
    assert claim is not None and contender(claim, ours, now) == (False, contender(claim, ours, now)[1])
    assert "future" in contender(claim, ours, now)[1]
    fresh = Claim("other", "/y", 2, now - 5, now - 1)
    assert contender(fresh, ours, now)[0] and not contender(Claim("box", "/var/lib/edged", 3, 0, now), ours, now)[0]
    # With a key, an unsigned claim does not count, and a signed one does.
    verifier = Verifier(KEY.encode())
    assert read_claim(claim_payload(fresh, now, None).encode(), verifier)[0] is None  # type: ignore[union-attr]
    assert read_claim(claim_payload(fresh, now, KEY.encode()), verifier)[0] == Claim("other", "/y", 2, now - 5,
                                                                                      round(now, 3))


def hostile_config(video: Path, gallery: Path, port: int, broker: int, folder: Path) -> str:
    (folder / "mqtt-key").write_text(KEY + "\n")
    text = config(video, gallery, port).replace("[mqtt]\nstats_interval_s = 1.0\n", "")
    text = text.replace(f"[stream]\nport = {port}\n", f'[stream]\nport = {port}\ntoken = "{TOKEN}"\n')
    return text + (f'[device]\nname = "box1"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker}\n'
                   f'keepalive_s = 5\nstats_interval_s = 1.0\nkey_file = "{folder / "mqtt-key"}"\n'
                   f'[notify]\nbase_url = "http://127.0.0.1:{port}"\n')


def status(port: int) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/status", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def fetch(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def test_no_client_on_the_broker_can_silence_stop_or_command_the_box(scenario_video, enrolled_gallery, tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    attacker = Subscriber(broker.port, client_id="neighbour-plug")
    # Left on the broker before the box starts: a claim that once crashed paho's thread, and
    # one from the future that once stopped the box for good (exit 78 at every restart).
    attacker.client.publish(TOPICS.instance, '{"host":"evil","state":"/x","time":null}', qos=1, retain=True)
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path / "state")
    daemon = Daemon(tmp_path, hostile_config(scenario_video, gallery, port, broker.port, tmp_path))
    daemon.start()
    try:
        wait_until(lambda: "MQTT connected" in daemon.text(), 60, "the daemon's connection")
        for payload in ['{"host":"evil","state":"/x","time":"abc"}', "[" * 5000, "\xff",
                        json.dumps({"host": "evil", "state": "/x", "pid": 1, "started": 0, "time": time.time() + 1e9}),
                        json.dumps({"host": "evil", "state": "/x", "pid": 1, "started": 0, "time": time.time()})]:
            attacker.client.publish(TOPICS.instance, payload, qos=1, retain=True)
        for payload in ["ON", "banana", "\xff" * 3]:
            attacker.client.publish(TOPICS.instance_probe, payload, qos=0)
        # 1. Still publishing: stats keep coming, the MQTT loop lives, /status says so.
        count = len(attacker.on(TOPICS.stats))
        wait_until(lambda: len(attacker.on(TOPICS.stats)) >= count + 3, 20, "stats after the malformed claims")
        part = status(port)
        assert part["mqtt"]["loop_alive"] and part["problems"] == []
        assert daemon.process.poll() is None, "a forged claim stopped the box"
        # 3. An anonymous "this stranger is obama" is ignored and not answered.
        wait_until(lambda: any(str(a.get("person", "")).startswith("unknown-") for a in attacker.json(TOPICS.alerts)),
                   60, "the stranger's alert")
        stranger = next(a["person"] for a in attacker.json(TOPICS.alerts) if a["person"].startswith("unknown-"))
        attacker.client.publish(TOPICS.gallery_command,
                                json.dumps({"action": "confirm", "person": "obama", "stranger": stranger}), qos=1)
        # A thousand commands in about a second: no thread per message, detection goes on.
        threads_before = threads_of(daemon.process.pid)
        for n in range(1000):
            attacker.client.publish(TOPICS.gallery_command, json.dumps(
                {"action": "reject", "person": "obama", "event": f"1763800000.{n % 1000:03d}-door-1"}), qos=0)
        time.sleep(3)
        # A thread per message would be a thousand; a clip being encoded meanwhile (libx264's
        # own threads) comes and goes by itself.
        assert threads_of(daemon.process.pid) <= threads_before + 12
        refused = status(port)["mqtt"]["gallery_commands"]
        assert refused["refused_unsigned"] >= 900 and refused["done"] == 0
        assert attacker.on(TOPICS.gallery_result) == []  # nothing said to a stranger
        frames = status(port)["stats"]["frames"]
        wait_until(lambda: status(port)["stats"]["frames"] > frames + 10, 20, "frames after the flood")
        # The owner's signed "not biden", sent three times, is stored once; a replay is ignored.
        wait_until(lambda: any(a.get("person") == "obama" for a in attacker.json(TOPICS.alerts)), 60, "obama's alert")
        obama = next(a for a in attacker.json(TOPICS.alerts) if a.get("person") == "obama")
        wait_until(lambda: (tmp_path / "state" / "media" / f"{obama['id']}-face.jpg").exists(), 10, "the kept face")
        body = json.dumps({"action": "reject", "person": "biden", "event": obama["id"]})
        envelopes = [sign(KEY.encode(), body) for _ in range(3)]
        for envelope in [*envelopes, envelopes[0]]:
            attacker.client.publish(TOPICS.gallery_command, envelope, qos=1)
        wait_until(lambda: len(attacker.json(TOPICS.gallery_result)) >= 3, 30, "three answers")
        time.sleep(1)
        answers = attacker.json(TOPICS.gallery_result)
        assert len(answers) == 3 and all(a["ok"] for a in answers)
        assert {a["id"] for a in answers} == {json.loads(e)["nonce"] for e in envelopes}
        unknown = sign(KEY.encode(), json.dumps({"action": "reject", "person": "nobody", "event": obama["id"]}))
        attacker.client.publish(TOPICS.gallery_command, unknown, qos=1)
        wait_until(lambda: len(attacker.json(TOPICS.gallery_result)) >= 4, 30, "the answer about nobody")
        said = attacker.json(TOPICS.gallery_result)[-1]
        assert not said["ok"] and str(gallery) not in said["message"] and "rose_leslie" not in said["message"]
        # 4. Alert links open their own file only, and never carry the owner's token.
        link = obama["snapshot"]
        assert TOKEN not in json.dumps(attacker.json(TOPICS.alerts)) and "sig=" in link
        assert fetch(link) == 200
        query = urlparse(link).query
        for other in ("/library.json", "/status", "/media/" + Path(urlparse(link).path).name.replace("face", "frame")):
            assert fetch(f"http://127.0.0.1:{port}{other}?{query}") == 401, other
        expired = parse_qs(query)
        assert fetch(f"{link.split('?')[0]}?exp={int(expired['exp'][0]) + 1}&sig={expired['sig'][0]}") == 401
        # After a broker restart, alerts still arrive.
        broker.stop()
        time.sleep(2)
        broker.start()
        listener = Subscriber(broker.port, topic=TOPICS.alerts, client_id="after-restart")
        wait_until(lambda: listener.on(TOPICS.alerts), 60, "an alert after the broker restart")
        listener.close()
        assert status(port)["mqtt"]["loop_alive"]
    finally:
        code = daemon.stop()
        attacker.close()
        broker.stop()
    assert code == 0
    with Gallery(gallery) as after:
        assert after.negatives("biden") == 1 and after.negatives("obama") == 0
        assert stranger in [p.name for p in after.people()], "the stranger was whitelisted"
    # A restart with a forged, fresh-looking claim retained starts (unsigned: it does not count) and runs.
    broker.start()
    forger = Subscriber(broker.port, client_id="neighbour-plug-2")
    forger.client.publish(TOPICS.instance, json.dumps({"host": "evil", "state": "/x", "pid": 1, "started": 0,
                                                       "time": time.time()}), qos=1, retain=True).wait_for_publish(5)
    forger.close()
    again = Daemon(tmp_path / "again", hostile_config(scenario_video, gallery, port, broker.port, tmp_path))
    again.start()
    try:
        wait_until(lambda: "MQTT connected" in again.text(), 60, "the restarted daemon's connection")
        assert again.process.poll() is None and "not signed with mqtt.key_file" in again.text()
    finally:
        again.stop()
        broker.stop()


def test_without_a_key_only_a_claim_that_answers_live_refuses_a_start(broker, tmp_path):
    """The start-up check, without a key: a retained fresh claim that nobody answers for is
    stale or forged (the box starts after a few seconds); one answered live is a real second
    instance (the box is refused); a claim from the future is ignored at once."""
    from edged.config import load_config
    from edged.sinks.mqtt import find_other_instance

    path = tmp_path / "edged.toml"
    path.write_text(f'[device]\nname = "box1"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\n')
    settings = load_config(path, {})
    other = Subscriber(broker.port, topic=TOPICS.instance_probe, client_id="other-instance")
    claim = {"host": "other-box", "state": "/var/lib/edged", "pid": 7, "started": time.time() - 100}
    other.client.publish(TOPICS.instance, json.dumps({**claim, "time": time.time() + 1e9}), 1, True).wait_for_publish(5)
    started = time.monotonic()
    assert find_other_instance(settings, tmp_path / "state") is None
    assert time.monotonic() - started < 4, "a claim from the future is ignored at once"
    other.client.publish(TOPICS.instance, json.dumps({**claim, "time": time.time()}), 1, True).wait_for_publish(5)
    started = time.monotonic()
    assert find_other_instance(settings, tmp_path / "state", answer_s=3) is None
    assert 3 <= time.monotonic() - started < 10
    # Now the other instance answers each probe with its claim, as a running edged does.
    other.client.on_message = lambda c, u, message: c.publish(
        TOPICS.instance, json.dumps({**claim, "time": time.time()}), 1, True)
    found = find_other_instance(settings, tmp_path / "state", answer_s=3)
    assert found and "other-box" in found
    other.close()
