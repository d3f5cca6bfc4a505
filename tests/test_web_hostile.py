"""The web server against the clients a box on a network really meets: byte ranges and HEAD
for phones, files still being written, idle and slowloris connections by the thousand, many
viewers, a port already taken, IPv6, and a name crafted to run script in the owner's browser."""

import contextlib
import http.client
import json
import socket
import sqlite3
import subprocess
import threading
import time

import numpy as np
import pytest
from services import Daemon, config, free_port, gallery_copy, wait_until

from edged.errors import ConfigError
from edged.sinks.connections import ConnectionLimits
from edged.sinks.http_ranges import ByteRange, Unsatisfiable, parse_range
from edged.sinks.stream import LiveView
from edged.sinks.web import WebServer

from .conftest import run_edged

TOKEN = "Zq7-0d1xW3mNc8LpA5tR"


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None, host: str = "127.0.0.1"):
    connection = http.client.HTTPConnection(host, port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_range_header_parsing():
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == ByteRange(0, 9)
    assert parse_range("bytes=90-", 100) == ByteRange(90, 99)
    assert parse_range("bytes=-10", 100) == ByteRange(90, 99)
    assert parse_range("bytes=50-500", 100) == ByteRange(50, 99)
    assert parse_range("bytes=0-1,5-6", 100) is None  # several ranges: the whole file
    assert parse_range("items=0-1", 100) is None
    assert parse_range("bytes=x-1", 100) is None
    with pytest.raises(Unsatisfiable):
        parse_range("bytes=100-", 100)


@pytest.fixture
def file_server(tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    body = np.random.default_rng(1).integers(0, 256, 3_000_000, dtype=np.uint8).tobytes()
    (clips / "door-1.mp4").write_bytes(body)
    (clips / "door-2.mp4.part").write_bytes(b"half a clip")
    (clips / "s3-pending.txt").write_text("door-1.mp4\n")
    recording = {"door-3.mp4": 7.2}
    server = WebServer("127.0.0.1", 0, lambda: {"ok": True}, LiveView(), folders={"clips": clips},
                       recording=recording.get)
    server.start()
    yield server.port, body
    server.stop()


def test_files_are_streamed_with_ranges_and_head(file_server):
    port, body = file_server
    status, headers, got = request(port, "GET", "/clips/door-1.mp4")
    assert status == 200 and got == body and headers["Accept-Ranges"] == "bytes"
    assert headers["Content-Type"] == "video/mp4"
    status, headers, got = request(port, "GET", "/clips/door-1.mp4", {"Range": "bytes=1000-1999"})
    assert status == 206 and got == body[1000:2000]
    assert headers["Content-Range"] == f"bytes 1000-1999/{len(body)}" and headers["Content-Length"] == "1000"
    status, headers, got = request(port, "GET", "/clips/door-1.mp4", {"Range": "bytes=-100"})
    assert status == 206 and got == body[-100:]
    status, headers, got = request(port, "HEAD", "/clips/door-1.mp4")
    assert status == 200 and got == b"" and headers["Content-Length"] == str(len(body))
    status, headers, _ = request(port, "GET", "/clips/door-1.mp4", {"Range": f"bytes={len(body)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(body)}"


def test_unfinished_clips_and_the_spool_are_never_served(file_server):
    port, _ = file_server
    for name in ("door-2.mp4.part", "s3-pending.txt", ".hidden.mp4", "..%2Fclips%2Fdoor-1.mp4", "door-2.mp4"):
        assert request(port, "GET", f"/clips/{name}")[0] == 404, name
    status, headers, body = request(port, "GET", "/clips/door-3.mp4")  # still recording
    assert status == 202 and "ready in about 7 s" in body.decode() and headers["Retry-After"] == "8"


def test_idle_and_slow_connections_are_bounded():
    limits = ConnectionLimits(request_timeout_s=2.0, max_waiting=64, max_waiting_per_client=32)
    server = WebServer("127.0.0.1", 0, lambda: {"ok": True}, LiveView(), limits=limits)
    server.start()
    idle: list[socket.socket] = []
    try:
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        # A real request still gets through while a thousand connections sit idle ...
        assert request(server.port, "GET", "/status")[0] == 200
        # ... and slowloris clients, sending a header line now and then, are cut at the deadline.
        slow = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(20)]
        started = time.monotonic()
        for s in slow:
            s.sendall(b"GET /status HTTP/1.1\r\n")
        while time.monotonic() - started < 3.5:
            for s in slow:
                with contextlib.suppress(OSError):  # cut off already
                    s.sendall(b"X-a: b\r\n")
            time.sleep(0.5)
        counts = server.guard.counts()
        assert counts["waiting"] <= 64 and counts["closed_waiting"] >= 1000 - 64
        alive = [t for t in threading.enumerate() if t.name.startswith("Thread") or "process_request" in t.name]
        assert len(alive) <= 64 + 5, f"{len(alive)} threads held by idle and slow clients"
        assert request(server.port, "GET", "/status")[0] == 200
    finally:
        for s in idle:
            s.close()
        server.stop()


def test_a_taken_port_and_ipv6():
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"stream.port = {port}: cannot listen there"):
            WebServer("127.0.0.1", port, dict, LiveView())
    finally:
        taken.close()
    with pytest.raises(ConfigError, match="192.0.2.1.*not one of this machine's"):
        WebServer("192.0.2.1", 0, dict, LiveView(), token=TOKEN)
    with pytest.raises(ConfigError, match="stream.token is 1 characters: use at least 16"):
        WebServer("0.0.0.0", 0, dict, LiveView(), token="a")
    if not socket.has_ipv6:
        return
    try:
        server = WebServer("::1", 0, lambda: {"ok": True}, LiveView())
    except ConfigError:
        pytest.skip("this machine has no IPv6 loopback")
    server.start()
    try:
        assert request(server.port, "GET", "/status", host="::1")[0] == 200
    finally:
        server.stop()


def test_a_daemon_on_a_taken_port_exits_78_before_loading_models(tmp_path):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        daemon = Daemon(tmp_path, config("x.mp4", tmp_path / "g.db", port))
        daemon.start()
        assert daemon.process.wait(30) == 78
        text = daemon.text()
        assert f"stream.port = {port}: cannot listen there" in text and "Traceback" not in text
        assert "models warmed up" not in text
    finally:
        taken.close()


def daemon_rss(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def daemon_threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Threads"))


def test_the_daemon_holds_against_idle_slow_and_many_clients(stamped_videos, enrolled_gallery, tmp_path):
    port = free_port()
    text = config(stamped_videos["packets"], gallery_copy(enrolled_gallery, tmp_path), port, mode="knowns")
    text += "[clips]\npre_roll_s = 1.0\npost_roll_s = 2.0\n"
    daemon = Daemon(tmp_path, text)
    daemon.start()
    idle: list[socket.socket] = []
    try:
        wait_until(lambda: daemon.status(port), 60, "the status endpoint")
        pid = daemon.process.pid
        for _ in range(1000):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        started = time.monotonic()
        assert daemon.status(port) is not None, "/status does not answer beside 1,000 idle connections"
        # Clips go on being written (no "Too many open files").
        wait_until(lambda: len(list((tmp_path / "clips").glob("*.mp4"))) >= 2, 60, "clips beside the idle clients")
        assert daemon_threads(pid) < 120, daemon_threads(pid)
        for s in idle:
            s.close()
        idle = []
        before = daemon_rss(pid)
        viewers = []
        statuses = []
        for _ in range(50):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/stream.mjpg")
            response = c.getresponse()
            statuses.append(response.status)
            if response.status == 200:
                response.read(50_000)
            viewers.append((c, response))
        time.sleep(3)
        during = daemon_rss(pid)
        assert statuses.count(200) == 10 and statuses.count(503) == 40, statuses
        for c, _ in viewers:
            c.close()
        assert during - before < 100, f"50 viewers took RSS from {before:.0f} to {during:.0f} MB"
        assert time.monotonic() - started < 120
        assert "Too many open files" not in daemon.text()
        assert "writing clip" not in daemon.text()
    finally:
        for s in idle:
            s.close()
        assert daemon.stop() == 0


HOSTILE = "<img src=x onerror=\"document.title='pwned:'+location.search\">"


def test_a_crafted_name_is_refused_and_an_old_one_is_shown_as_text(stamped_videos, enrolled_gallery, tmp_path):
    gallery = gallery_copy(enrolled_gallery, tmp_path)
    refused = run_edged("gallery", "rename", "obama", HOSTILE, "--gallery", str(gallery))
    assert refused.returncode == 1 and "not a usable name" in refused.stderr
    # A gallery written before the name rule existed may still hold such a name.
    with sqlite3.connect(gallery) as db:
        db.execute("UPDATE people SET name = ? WHERE name = 'obama'", (HOSTILE,))
    port = free_port()
    text = config(stamped_videos["frames"], gallery, port, mode="knowns").replace(
        "[stream]\n", f'[stream]\ntoken = "{TOKEN}"\n')
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        wait_until(lambda: HOSTILE in _people_in_events(port), 90, "the crafted name in events")
        chromium = "chromium"
        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=4000"]
        dom = subprocess.run([chromium, *flags, "--dump-dom", f"http://127.0.0.1:{port}/?token={TOKEN}"],
                             capture_output=True, text=True, timeout=60).stdout
    finally:
        daemon.stop()
    assert "<title>edged</title>" in dom and "<title>pwned" not in dom, "the crafted name ran as script"
    assert "&lt;img src=x onerror=" in dom, "the name is not shown as text"


def _people_in_events(port: int) -> list[str]:
    try:
        status, _, body = request(port, "GET", f"/status?token={TOKEN}")
    except OSError:
        return []
    return [e.get("person") for e in json.loads(body)["recent_events"]] if status == 200 else []


def test_thirty_parallel_downloads_of_a_big_clip_cost_no_memory(tmp_path):
    """Files go from disk to socket (sendfile): 30 clients fetching a 50 MB clip at once do not
    bring the clip into the server's memory 30 times (before: 658 MB -> 2.14 GB)."""
    clips = tmp_path / "clips"
    clips.mkdir()
    big = clips / "door-big.mp4"
    with big.open("wb") as f:
        f.truncate(50 * 2**20)
    server = WebServer("127.0.0.1", 0, dict, LiveView(), folders={"clips": clips})
    server.start()

    def rss_mb() -> float:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024

    got: list[int] = []

    def download(n: int) -> None:
        # Thirty clients, each from an address of its own (all of 127/8 is loopback): one client
        # gets at most 16 requests answered at once.
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60, source_address=(f"127.0.0.{n + 2}", 0))
        c.request("GET", "/clips/door-big.mp4")
        response = c.getresponse()
        total = 0
        while block := response.read(1 << 20):  # the client keeps nothing either
            total += len(block)
        got.append(total)
        c.close()

    try:
        before = rss_mb()
        peak = before
        threads = [threading.Thread(target=download, args=(n,)) for n in range(30)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            peak = max(peak, rss_mb())
            time.sleep(0.05)
    finally:
        server.stop()
    assert got == [50 * 2**20] * 30
    assert peak - before < 100, f"RSS went from {before:.0f} to {peak:.0f} MB"


def test_stalled_downloads_from_a_few_clients_leave_room_for_everyone_else(tmp_path):
    """Four addresses each hold 16 downloads of a big clip and never read them: a fifth
    address still gets /status every time, and the stalled sends are dropped."""
    clips = tmp_path / "clips"
    clips.mkdir()
    (clips / "door-1.mp4").write_bytes(np.random.default_rng(2).integers(0, 256, 20_000_000, np.uint8).tobytes())
    limits = ConnectionLimits(send_timeout_s=4.0)
    server = WebServer("127.0.0.1", 0, lambda: {"ok": True}, LiveView(), folders={"clips": clips}, limits=limits)
    server.start()
    stalled = []
    try:
        for client in range(2, 6):
            for _ in range(16):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=5,
                                                source_address=(f"127.0.0.{client}", 0))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.sendall(b"GET /clips/door-1.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                stalled.append(sock)
        time.sleep(1)
        answers = []
        for _ in range(40):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10,
                                                    source_address=("127.0.0.6", 0))
            connection.request("GET", "/status")
            answers.append(connection.getresponse().status)
            connection.close()
        assert answers.count(200) == 40, answers
        wait_until(lambda: server.guard.counts()["connections"] < 8, 20, "the stalled sends dropped")
    finally:
        for sock in stalled:
            sock.close()
        server.stop()


def test_host_names_if_range_and_clients_that_go_away(file_server, capfd):
    port, body = file_server
    # A page on another name, rebound to this box's address, is refused; the box's own names are not.
    assert request(port, "GET", "/status", {"Host": "evil.example"})[0] == 421
    assert request(port, "GET", "/status", {"Host": f"evil.example:{port}"})[0] == 421
    assert request(port, "POST", "/library", {"Host": "evil.example", "Origin": "http://evil.example"})[0] == 421
    for host in (f"127.0.0.1:{port}", "localhost", f"[::1]:{port}", socket.gethostname()):
        assert request(port, "GET", "/status", {"Host": host})[0] == 200, host
    # If-Range: a part of the same file, or the whole file when it changed.
    _, headers, _ = request(port, "GET", "/clips/door-1.mp4", {"Range": "bytes=0-9"})
    status, _, got = request(port, "GET", "/clips/door-1.mp4", {"Range": "bytes=0-9", "If-Range": headers["ETag"]})
    assert status == 206 and got == body[:10]
    status, _, got = request(port, "GET", "/clips/door-1.mp4", {"Range": "bytes=0-9", "If-Range": '"other"'})
    assert status == 200 and got == body
    # Clients that ask for a clip and go away are not tracebacks in the log.
    capfd.readouterr()
    for _ in range(30):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /clips/door-1.mp4 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    time.sleep(1)
    assert request(port, "GET", "/status")[0] == 200
    assert "Traceback" not in capfd.readouterr().err
