"""systemd notifications over a real $NOTIFY_SOCKET: READY, STATUS, WATCHDOG while the
pipeline's heartbeat is fresh, and none once it stalls."""

import socket
import threading
import time

import pytest
from services import datagrams

from edged import service


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    yield sock
    sock.close()


def test_notify_sends_a_datagram(notify_socket):
    assert service.notify("READY=1\nSTATUS=warming up")
    assert datagrams(notify_socket, 0.3) == ["READY=1\nSTATUS=warming up"]


def test_no_socket_means_no_systemd(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert service.notify("READY=1") is False


def test_watchdog_stops_when_the_heartbeat_stalls(notify_socket, monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # WatchdogSec=0.2 -> ping every 0.1 s
    beat = {"t": time.monotonic()}
    alive = threading.Event()
    alive.set()

    def pipeline():
        while alive.is_set():
            beat["t"] = time.monotonic()
            time.sleep(0.02)

    worker = threading.Thread(target=pipeline, daemon=True)
    worker.start()
    dog = service.Watchdog(lambda: beat["t"], stall_after=0.3, status=lambda: "5.0 fps, 2 faces in view")
    dog.start()
    try:
        healthy = datagrams(notify_socket, 0.6)
        assert sum("WATCHDOG=1" in m for m in healthy) >= 3
        assert all("STATUS=5.0 fps, 2 faces in view" in m for m in healthy)
        alive.clear()  # the pipeline stalls
        datagrams(notify_socket, 0.5)  # stall_after passes
        stalled = datagrams(notify_socket, 0.6)
        assert stalled and not any("WATCHDOG=1" in m for m in stalled), stalled
        assert dog.stalled
    finally:
        dog.stop()
