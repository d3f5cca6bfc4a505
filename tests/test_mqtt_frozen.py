"""A broker that freezes (SIGSTOP, as a hung host or a paused VM) rather than closing: every
alert still arrives, in order, once it wakes, and what waited on disk survives a kill -9 of
the daemon in the middle of the outage."""

import json
import signal
import time

from services import Daemon, Mosquitto, Subscriber, free_port, gallery_copy, wait_until

from .test_mqtt import TOPICS, mqtt_config


def alert_ids_in_outbox(path) -> list[str]:
    """The alerts a (killed) daemon's outbox still holds, unacknowledged."""
    waiting: dict[int, str] = {}
    acked = set()
    for line in path.read_text().splitlines():
        item = json.loads(line)
        if "ack" in item:
            acked.add(item["ack"])
        elif item["topic"] == TOPICS.alerts:
            waiting[item["seq"]] = json.loads(item["payload"])["id"]
    return [alert for seq, alert in sorted(waiting.items()) if seq not in acked]


def first_seen(ids: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for i in ids:
        seen.setdefault(i)
    return list(seen)


def test_a_frozen_broker_loses_and_reorders_nothing_even_across_kill_9(scenario_video, enrolled_gallery, tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    subscriber = Subscriber(broker.port, topic=TOPICS.alerts, client_id="sub-frozen")
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path)
    text = mqtt_config(scenario_video, gallery, port, broker.port, mode="all").replace(
        "keepalive_s = 5", "keepalive_s = 3") + "[clips]\nenabled = false\n"
    daemon = Daemon(tmp_path, text)
    daemon.start()
    times = {}

    def received() -> list[str]:
        ids = []
        for payload in subscriber.on(TOPICS.alerts):
            alert = json.loads(payload)
            times[alert["id"]] = alert["time"]
            ids.append(alert["id"])
        return ids

    try:
        wait_until(lambda: received(), 60, "a first alert")
        # 1. The broker freezes for 15 s while alerts go on.
        broker.process.send_signal(signal.SIGSTOP)
        time.sleep(15)
        assert "has not acknowledged a message" in daemon.text() or "unreachable" in daemon.text()
        broker.process.send_signal(signal.SIGCONT)
        # 2. Frozen again, and the daemon is killed outright in the middle of it.
        time.sleep(5)
        broker.process.send_signal(signal.SIGSTOP)
        time.sleep(6)
        daemon.process.send_signal(signal.SIGKILL)
        daemon.process.wait(10)
        kept = alert_ids_in_outbox(tmp_path / "mqtt-outbox.jsonl")
        broker.process.send_signal(signal.SIGCONT)
        # 3. The daemon comes back and delivers what its outbox kept.
        daemon.start()
        wait_until(lambda: set(kept) <= set(received()), 60, "the alerts kept across the kill -9")
    finally:
        broker.process.send_signal(signal.SIGCONT)
        assert daemon.stop() == 0
    stored = {p.name.removesuffix("-face.jpg") for p in (tmp_path / "media").glob("*-face.jpg")}
    got = received()
    subscriber.close()
    broker.stop()
    assert kept, "the outage left nothing waiting: the test did not test the kill -9"
    # Every alert whose pictures were stored before the kill reached the subscriber, except at
    # most those in the pipeline's memory at the instant of the kill (not yet on disk).
    missing = stored - set(got)
    assert len(missing) <= 2, f"{len(missing)} alerts lost: {sorted(missing)[:5]}"
    order = [times[i] for i in first_seen(got)]
    assert order == sorted(order), "alerts arrived out of order"
