"""`edged run` as a real subprocess: systemd notifications over a real socket, signals,
configuration errors and reloads, and an RTSP camera that drops and comes back."""

import json
import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from services import Daemon, RtspServer, config, datagrams, free_port, gallery_copy, wait_until

from .conftest import run_edged


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    yield sock, str(path)
    sock.close()


def test_ready_after_warm_up_watchdog_and_a_stall(scenario_video, enrolled_gallery, tmp_path, notify_socket):
    sock, path = notify_socket
    stall = tmp_path / "stall"
    port = free_port()
    # The stall is injected from outside: the daemon runs under tests/stalling.py.
    daemon = Daemon(tmp_path, config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port),
                    env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000", "EDGED_TEST_STALL_FILE": str(stall)},
                    wrapper=[sys.executable, str(Path(__file__).with_name("stalling.py"))])
    daemon.start()
    try:
        messages: list[str] = []
        wait_until(lambda: messages.extend(datagrams(sock, 0.3)) or any("READY=1" in m for m in messages),
                   60, "READY=1")
        assert "models warmed up" in daemon.text(), "READY came before the models were warmed up"
        assert not any("WATCHDOG=1" in m for m in messages[: [i for i, m in enumerate(messages)
                                                                if "READY=1" in m][0]])
        healthy = datagrams(sock, 3)
        assert sum("WATCHDOG=1" in m for m in healthy) >= 2
        assert any("STATUS=" in m and "detections/s" in m for m in healthy)
        stall.touch()  # the next processed frame blocks the inference loop
        datagrams(sock, 3.5)  # the stall threshold (2 s here) passes
        stalled = datagrams(sock, 3)
        assert not any("WATCHDOG=1" in m for m in stalled), stalled
        assert "pipeline stalled" in daemon.text()
        stall.unlink()
        assert any("WATCHDOG=1" in m for m in datagrams(sock, 3))
    finally:
        assert daemon.stop() == 0


def test_sigterm_stops_cleanly_and_quickly(scenario_video, enrolled_gallery, tmp_path):
    port = free_port()
    daemon = Daemon(tmp_path, config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port))
    daemon.start()
    wait_until(lambda: daemon.status(port), 60, "the status endpoint")
    wait_until(lambda: "alert:" in daemon.text(), 20, "a first alert")
    shown = run_edged("status", "--url", f"http://127.0.0.1:{port}/status", check=True).stdout
    assert "camera door" in shown and "fps" in shown and "embedder mobilefacenet_paddle@" in shown
    as_json = json.loads(run_edged("status", "--config", str(daemon.config), "--json", check=True).stdout)
    assert as_json["camera"] == "door" and as_json["stats"]["frames"] > 0
    started = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.process.wait(10) == 0
    assert time.monotonic() - started < 6
    assert "stopping" in daemon.text()


def test_configuration_errors_exit_78_naming_file_and_key(tmp_path):
    daemon = Daemon(tmp_path, "[camera]\nsource = \"x.mp4\"\nfps = 5\n")
    daemon.start()
    assert daemon.process.wait(30) == 78
    assert f"{daemon.config}: camera.fps: unknown key" in daemon.text()


def test_sighup_with_a_broken_file_keeps_the_running_configuration(scenario_video, enrolled_gallery, tmp_path):
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path)
    daemon = Daemon(tmp_path, config(scenario_video, gallery, port))
    daemon.start()
    try:
        wait_until(lambda: daemon.status(port), 60, "the status endpoint")
        pid = daemon.process.pid
        daemon.config.write_text(config(scenario_video, gallery, port, mode="loud"))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in daemon.text(), 10, "the refusal")
        assert f"{daemon.config}: alerts.mode: 'loud' is out of range" in daemon.text()
        assert daemon.status(port)["camera"] == "door" and daemon.process.poll() is None
        refused = daemon.status(port)["last_reload"]
        assert refused["ok"] is False and "alerts.mode: 'loud' is out of range" in refused["message"]
        daemon.config.write_text(config(scenario_video, gallery, port, camera="porch"))
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: (daemon.status(port) or {}).get("camera") == "porch", 20, "the new configuration")
        assert daemon.process.pid == pid and daemon.status(port)["last_reload"]["ok"] is True
        wait_until(lambda: any(e["camera"] == "porch" for e in daemon.status(port)["recent_events"]), 20,
                   "events from the reloaded pipeline")
    finally:
        assert daemon.stop() == 0


def test_rtsp_camera_drops_and_comes_back_without_a_restart(scenario_video, enrolled_gallery, tmp_path):
    server = RtspServer(scenario_video)
    server.start()
    port = free_port()
    text = config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port, source=server.url)
    text = text.replace("[camera]\n", '[camera]\nrtsp_transport = "udp"\n')
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        frames = lambda: ((daemon.status(port) or {}).get("stats") or {}).get("frames", 0)  # noqa: E731
        connected = lambda: ((daemon.status(port) or {}).get("stats") or {}).get("source_connected")  # noqa: E731
        wait_until(lambda: frames() > 30, 90, "frames from the RTSP camera")
        pid = daemon.process.pid
        server.stop()
        wait_until(lambda: connected() is False, 30, "the daemon to notice the stream dropped")
        before = frames()
        server.start()
        wait_until(lambda: frames() > before + 30 and connected(), 90, "frames again after the restart")
        assert daemon.process.pid == pid and daemon.process.poll() is None
        log = daemon.text()
        assert "stopped sending frames" in log and "is back" in log
        assert log.count("stopped sending frames") == 1, "one outage is logged once"
    finally:
        daemon.stop()
        server.stop()


def test_camera_passwords_never_show(enrolled_gallery, tmp_path):
    port = free_port()
    camera = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/cam"  # nothing listens: the outage is logged
    daemon = Daemon(tmp_path, config("x.mp4", gallery_copy(enrolled_gallery, tmp_path), port, source=camera))
    daemon.start()
    try:
        status = wait_until(lambda: daemon.status(port), 60, "the status endpoint")
        wait_until(lambda: "cannot open" in daemon.text(), 20, "the outage logged")
        shown = run_edged("status", "--url", f"http://127.0.0.1:{port}/status", check=True).stdout
    finally:
        daemon.stop()
    assert status["source"] == camera.replace("hunter2", "***")
    assert "admin:***@" in shown and "admin:***@" in daemon.text()
    for text in (json.dumps(status), shown, daemon.text()):
        assert "hunter2" not in text


def test_a_second_daemon_on_the_same_state_directory_is_refused(scenario_video, enrolled_gallery, tmp_path):
    gallery = gallery_copy(enrolled_gallery, tmp_path / "state")
    first_port = free_port()
    first = Daemon(tmp_path / "first", config(scenario_video, gallery, first_port))
    first.start()
    try:
        wait_until(lambda: first.status(first_port), 60, "the first daemon")
        second = Daemon(tmp_path / "second", config(scenario_video, gallery, free_port()))
        second.start()
        assert second.process.wait(30) == 78
        text = second.text()
        assert "already runs with this state directory" in text and f"pid {first.process.pid}" in text
        assert "Traceback" not in text
        assert first.process.poll() is None and first.status(first_port)
    finally:
        assert first.stop() == 0


def test_a_box_without_an_embedder_finds_and_tracks_faces(scenario_video, tmp_path):
    """A bare box offline has no embedder: the daemon still runs, finds and tracks faces, and
    says once what names need; the page's library answers, naming nobody."""
    port = free_port()
    empty_models = tmp_path / "models"
    empty_models.mkdir()
    daemon = Daemon(tmp_path, config(scenario_video, tmp_path / "gallery.db", port),
                    env={"EDGED_MODELS": str(empty_models)})
    daemon.start()
    try:
        def confirmed():
            seen = daemon.status(port) or {}
            return seen if any(e["type"] == "confirmed" for e in seen.get("recent_events", [])) else None

        seen = wait_until(confirmed, 90, "a confirmed track from a daemon without an embedder")
        assert seen["embedder"] is None
        assert seen["recognition"]["threshold"] is None
        assert all(e.get("person") is None for e in seen["recent_events"]), seen["recent_events"]
        said = run_edged("status", "--url", f"http://127.0.0.1:{port}/status").stdout
        assert "embedder none installed" in said and "not yet identified" in said, said
    finally:
        assert daemon.stop() == 0, daemon.text()[-3000:]
    log = daemon.text()
    assert log.count("no embedder installed: faces are found and tracked") == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
