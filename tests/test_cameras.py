"""Several cameras in one daemon: [cameras.NAME] tables, the models loaded once, one inference
scheduler serving each camera's detect_fps (and saying when it cannot), per-camera web routes
and MQTT topics, and a second instance on the same broker with the same client id refused.
Real rendered videos as cameras, a real Mosquitto."""

import json
import os
import re
import shutil
import signal
import time
import urllib.error
import urllib.request

from services import Daemon, Subscriber, free_port, gallery_copy, wait_until

from edged.config import CONFIG_EXIT
from edged.gallery import Gallery
from edged.sinks import mqtt_messages as m

from .conftest import chromium_page, live_image_shown, run_edged


def cameras_config(videos: dict[str, tuple[str, float]], gallery, port: int, extra: str = "") -> str:
    """One [cameras.NAME] table per (video, detect_fps); [camera] keys as every camera's defaults."""
    tables = "".join(f'[cameras.{name}]\nsource = "{video}"\ndetect_fps = {fps}\n'
                     for name, (video, fps) in videos.items())
    return (f'[camera]\nloop = true\nopen_timeout_s = 3.0\n[recognition]\ngallery = "{gallery}"\n'
            f'[stream]\nport = {port}\n[alerts]\nmode = "all"\ncooldown_s = 0.0\n[mqtt]\nstats_interval_s = 1.0\n'
            f'{extra}{tables}')


def copies(video, folder, names):
    """The same scene as separate files: two cameras may not read one source."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(video, folder / f"{name}.mp4")
    return {name: str(folder / f"{name}.mp4") for name in names}


def get(port: int, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_two_cameras_one_daemon(broker, scenario_video, enrolled_gallery, tmp_path):
    videos = copies(scenario_video, tmp_path / "videos", ["door", "yard"])
    port = free_port()
    mqtt = (f'[device]\nname = "box1"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\n'
            "stats_interval_s = 1.0\n")
    gallery = gallery_copy(enrolled_gallery, tmp_path)
    text = cameras_config({"door": (videos["door"], 6.0), "yard": (videos["yard"], 3.0)}, gallery,
                          port).replace("[mqtt]\nstats_interval_s = 1.0\n", "")
    text = text.replace("[cameras.door]", mqtt + "[cameras.door]")
    subscriber = Subscriber(broker.port, client_id="sub-cameras")
    door, yard = (m.Topics("edged", "box1", name) for name in ("door", "yard"))
    daemon = Daemon(tmp_path / "run", text)
    daemon.start()
    try:
        wait_until(lambda: subscriber.json(door.events) and subscriber.json(yard.events), 90, "events of both cameras")

        def settled():
            status = daemon.status(port)
            if not status:
                return None
            rates = {c["camera"]: c["stats"] for c in status["cameras"]}
            return status if all(s["fps"] > 0 and s["camera_fps"] > 0 for s in rates.values()) else None

        status = wait_until(settled, 30, "detection rates of both cameras")
        # Each camera at its own rate (measured over the last 10 s), and the box keeps up.
        wait_until(lambda: daemon.status(port)["uptime_s"] > 12, 30, "ten seconds of running")
        status = daemon.status(port)
        stats = {c["camera"]: c["stats"] for c in status["cameras"]}
        assert [c["camera"] for c in status["cameras"]] == ["door", "yard"]
        assert (stats["door"]["detect_fps_target"], stats["yard"]["detect_fps_target"]) == (6.0, 3.0)
        # Rates are the scheduler's behaviour, not the machine's speed: never above what was asked,
        # and, on a loaded machine too, door's about twice yard's; a camera served under 90% of its
        # rate says so. (bench_daemon.py measures the rates themselves.)
        assert stats["door"]["fps"] <= 6.6 and stats["yard"]["fps"] <= 3.3, stats
        assert 1.3 <= stats["door"]["fps"] / stats["yard"]["fps"] <= 2.7 or stats["door"]["falling_behind"], stats
        for name, wanted in (("door", 6.0), ("yard", 3.0)):
            short = stats[name]["fps"] < 0.9 * min(wanted, stats[name]["camera_fps"]) - 0.3  # 0.3: sampling edge
            assert stats[name]["falling_behind"] or not short, stats[name]
        assert status["camera"] == "door"  # the top of /status is the first camera, as with one
        # Each camera's own page, status, stream and snapshot; an unknown camera is a 404.
        code, body = get(port, "/cameras/yard/status")
        assert code == 200 and json.loads(body)["camera"] == "yard"
        code, body = get(port, "/cameras/yard/snapshot.jpg")
        assert code == 200 and body[:2] == b"\xff\xd8"
        code, body = get(port, "/cameras/yard/")
        assert code == 200 and b"stream.mjpg" in body
        assert get(port, "/cameras/garage/status")[0] == 404
        # The yard's page as Chromium renders it: its own stream and summary, links to both
        # cameras' pages, and the face library and pictures at the root.
        dom, picture = chromium_page(f"http://127.0.0.1:{port}/cameras/yard/", tmp_path)
        assert live_image_shown(picture), "the yard's live image is not on its page"
        assert "yard · camera" in dom and 'href="../../library"' in dom
        assert 'href="../../cameras/door/"' in dom and 'class="here" href="../../cameras/yard/"' in dom.replace(
            'href="../../cameras/yard/" class="here"', 'class="here" href="../../cameras/yard/"')
        # MQTT: each camera's events, stats and Home Assistant entities under its own name.
        assert {e["camera"] for e in subscriber.json(door.events)} == {"door"}
        assert {e["camera"] for e in subscriber.json(yard.events)} == {"yard"}
        wait_until(lambda: subscriber.json(door.camera_stats) and subscriber.json(yard.camera_stats), 10,
                   "stats per camera")
        assert subscriber.json(yard.camera_stats)[-1]["detect_fps_target"] == 3.0
        wait_until(lambda: [b for b in subscriber.json(door.stats) if set(b["cameras"]) == {"door", "yard"}], 10,
                   "one box stats message with both cameras")
        with Gallery(gallery) as g:
            obama = g.person_ids()["obama"]
        discovery = [t for t, p, _ in subscriber.messages if t.startswith("homeassistant/") and p]
        for cam in ("door", "yard"):
            for entity in (f"event/edged_box1/{cam}_face", f"sensor/edged_box1/{cam}_fps",
                           f"binary_sensor/edged_box1/{cam}_person_{obama}", f"binary_sensor/edged_box1/{cam}_behind"):
                assert f"homeassistant/{entity}/config" in discovery, entity
        # The box's own entities are announced once per connect, by one camera's connection.
        assert discovery.count("homeassistant/sensor/edged_box1/cpu_percent/config") == 1
        # A camera's own switch turns that camera only.
        subscriber.client.publish(yard.camera_switch_command("detection"), "OFF", qos=1)
        enabled = lambda: {c["camera"]: c["detection_enabled"] for c in daemon.status(port)["cameras"]}  # noqa: E731
        wait_until(lambda: enabled() == {"door": True, "yard": False}, 10, "yard's detection off, door's on")
        wait_until(lambda: subscriber.on(yard.camera_switch("detection"))[-1:] == [b"OFF"], 10, "yard's state")
        assert subscriber.on(door.camera_switch("detection"))[-1:] == [b"ON"]
        # SIGHUP with the yard replaced by a porch: the routes follow the cameras.
        porch = copies(scenario_video, tmp_path / "videos", ["porch"])["porch"]
        daemon.config.write_text(text.replace("[cameras.yard]", "[cameras.porch]").replace(videos["yard"], porch))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: [c["camera"] for c in (daemon.status(port) or {}).get("cameras", [])] == ["door", "porch"],
                   30, "the reloaded cameras")
        assert get(port, "/cameras/yard/status")[0] == 404
        assert json.loads(get(port, "/cameras/porch/status")[1])["camera"] == "porch"
        assert get(port, "/cameras/porch/snapshot.jpg")[1][:2] == b"\xff\xd8"
        # edged status: each camera with its own events, and the last reload's result.
        wait_until(lambda: [c for c in daemon.status(port)["cameras"] if c["camera"] == "porch" and c["recent_events"]],
                   30, "events of the porch")
        shown = run_edged("status", "--url", f"http://127.0.0.1:{port}/status", check=True).stdout
        door_part, porch_part = shown.split("camera door", 1)[1].split("camera porch", 1)
        assert "event:" in door_part and "event:" in porch_part, shown
        assert "last reload at" in shown and ": done: reloaded from" in shown
    finally:
        code = daemon.stop()
        subscriber.close()
    assert code == 0
    log = daemon.text()
    assert log.count("models warmed up") == 1, "the models are loaded once for both cameras"
    assert f"live view at http://127.0.0.1:{port}/cameras/yard/" in log


def test_an_overloaded_box_serves_every_camera_alike_and_says_so(scenario_video, enrolled_gallery, tmp_path):
    """Three cameras asking for far more detections than two cores give: each gets a like
    share, each is flagged as falling behind, and the log says what to change."""
    names = ["a", "b", "c"]
    videos = copies(scenario_video, tmp_path / "videos", names)
    port = free_port()
    text = cameras_config({n: (videos[n], 40.0) for n in names}, gallery_copy(enrolled_gallery, tmp_path), port)
    daemon = Daemon(tmp_path / "run", text)
    daemon.start()
    try:
        wait_until(lambda: (daemon.status(port) or {}).get("uptime_s", 0) > 14, 90, "fourteen seconds of running")
        status = daemon.status(port)
    finally:
        daemon.stop()
    stats = {c["camera"]: c["stats"] for c in status["cameras"]}
    achieved = [stats[n]["fps"] for n in names]
    # A worker per camera up to one per core, each detection on its share of the cores.
    workers = min(3, os.cpu_count() or 1)
    assert status["inference"] == {"workers": workers, "detection_threads": max(1, (os.cpu_count() or 1) // workers)}
    assert all(stats[n]["falling_behind"] for n in names), stats
    assert max(achieved) < 0.9 * 25.0  # the video gives 25 frames a second: the cap was the box
    # The camera's own rate counts the frames the busy scheduler never took.
    assert all(22 <= stats[n]["camera_fps"] <= 27 for n in names), [stats[n]["camera_fps"] for n in names]
    mean = sum(achieved) / len(achieved)
    assert all(abs(a - mean) <= 0.25 * mean for a in achieved), achieved
    # The first warning names the cameras behind at that moment (a camera between two people
    # may be idle then, and idle heartbeats are no shortfall), whichever comes first.
    assert re.search(r"inference cannot keep up: camera [abc] wanted 40\.0 detections/s", daemon.text())


def test_a_second_edged_publishing_as_the_same_device_is_refused(broker, scenario_video, enrolled_gallery,
                                                                 tmp_path):
    """Two instances (or two boxes) with one device name and camera name on one broker share a
    client id: the broker drops one for the other, on and on. The later one sees the first
    one's fresh claim, says why and exits 78; the first runs on, and a restart of the first
    (same state directory) is not taken for a second one."""
    mqtt = (f'[device]\nname = "box1"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\n'
            "stats_interval_s = 1.0\n")
    daemons = []
    for name in ("first", "second"):
        port = free_port()
        text = cameras_config({"door": (copies(scenario_video, tmp_path / name, ["door"])["door"], 2.0)},
                              gallery_copy(enrolled_gallery, tmp_path / name / "state"), port)
        daemons.append((Daemon(tmp_path / name, text.replace("[mqtt]\nstats_interval_s = 1.0\n", "") + mqtt), port))
    (first, first_port), (second, second_port) = daemons
    first.start()
    watcher = Subscriber(broker.port, client_id="sub-second-instance")
    try:
        wait_until(lambda: "MQTT connected" in first.text(), 60, "the first daemon's connection")
        wait_until(lambda: watcher.on("edged/box1/available")[-1:] == [b"online"], 20, "the first online")
        before = len(watcher.messages)
        second.start()
        assert second.process.wait(60) == CONFIG_EXIT
        log = second.text()
        assert "already publishes as device 'box1'" in log
        assert "give each edged its own device.name" in log
        assert first.process.poll() is None and first.status(first_port) is not None, "the first runs on"
        # The refused one published nothing: no offline, no discovery, no state of its own.
        time.sleep(2)
        published = [(t, p) for t, p, _ in watcher.messages[before:]
                     if not t.endswith(("/stats", "/instance", "/faces", "/events", "/alerts", "/probe"))
                     and "/person" not in t and "/last_" not in t and "/snapshot" not in t]
        assert ("edged/box1/available", b"offline") not in published, published
        assert not [t for t, _ in published if t.startswith("homeassistant/")], published
        retained = Subscriber(broker.port, topic="edged/box1/available", client_id="sub-after-refusal")
        wait_until(lambda: retained.on("edged/box1/available"), 10, "the retained availability")
        assert retained.on("edged/box1/available") == [b"online"]
        retained.close()
        # The first restarted (same state directory): its own earlier claim is no obstacle.
        assert first.stop() == 0
        first.start()
        wait_until(lambda: first.text().count("MQTT connected") >= 2 and first.status(first_port), 60,
                   "the first daemon back")
        assert first.process.poll() is None
    finally:
        watcher.close()
        for daemon, _ in daemons:
            daemon.stop()


def test_a_camera_that_is_down_holds_up_no_other(scenario_video, enrolled_gallery, tmp_path):
    """One camera's stream unreachable (reconnecting with back-off) while the other runs: the
    scheduler never waits on the dead one, whose status says it is not connected."""
    videos = copies(scenario_video, tmp_path / "videos", ["door"])
    port, dead = free_port(), free_port()
    text = cameras_config({"door": (videos["door"], 5.0), "gate": (f"rtsp://127.0.0.1:{dead}/gate", 5.0)},
                          gallery_copy(enrolled_gallery, tmp_path), port)
    daemon = Daemon(tmp_path / "run", text)
    daemon.start()
    try:
        wait_until(lambda: (daemon.status(port) or {}).get("uptime_s", 0) > 12, 60, "twelve seconds of running")
        stats = {c["camera"]: c["stats"] for c in daemon.status(port)["cameras"]}
    finally:
        daemon.stop()
    # Held up by the dead camera's opens (3 s each), door would make a detection or two in 12 s;
    # 2/s is far above that and still met when the other test worker loads the machine (2.7/s
    # was seen then, 5/s alone).
    assert stats["door"]["source_connected"] and 2.0 <= stats["door"]["fps"] <= 5.5, stats["door"]
    assert not stats["gate"]["source_connected"] and stats["gate"]["fps"] == 0
    assert not stats["gate"]["falling_behind"], "no frames is not the scheduler's shortfall"
    assert "gate" in daemon.text() and "cannot open" in daemon.text()
