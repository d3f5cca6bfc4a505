"""Real services for the daemon's tests and tools/bench_daemon.py, on loopback and free ports:
Mosquitto, an RTSP server fed by ffmpeg, the daemon itself as a subprocess, and an MQTT
subscriber."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from edged.gallery import Gallery

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_udp_range(count: int = 16) -> int:
    """An even UDP port with the `count` ports from it free now (RTP pairs for the streams)."""
    import random

    for _ in range(200):
        base = random.randrange(30000, 60000 - count, 2)
        sockets = []
        try:
            for port in range(base, base + count):
                udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                sockets.append(udp)
                udp.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for udp in sockets:
                udp.close()
    raise RuntimeError(f"no {count} free UDP ports in a row")


# Debian's rtsp-server-perl, started so that its RTP ports are ours: the packaged script takes
# --rtp_start_port, but the server goes back to its built-in 20000 whenever its last stream
# ends, so two servers (two tests, or a test and a restart) collided on UDP 20000 and
# answered DESCRIBE with 404. The built-in start lives in a package variable we set first.
RTSP_SERVER = """
use strict; use warnings; use AnyEvent; use RTSP::Server;
$RTSP::Server::RTP_START_PORT = shift @ARGV;
my $server = RTSP::Server->new_with_options();
$server->listen;
AnyEvent->condvar->recv;
"""


def wait_for_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def wait_until(predicate, seconds: float, what: str, step: float = 0.1):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"waited {seconds} s for {what}")


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if not found:
        raise RuntimeError("mosquitto is not installed: run tools/setup.sh --dev (Debian package mosquitto)")
    return found


class Mosquitto:
    """A broker with persistence, so subscribers' sessions survive its restarts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
                               f"persistence_location {folder}/\n{self._user()}")
        self.process: subprocess.Popen[bytes] | None = None

    def secure(self, username: str, password: str) -> Path:
        """TLS with a certificate for 127.0.0.1 signed by a fresh CA, and a password; returns
        the CA certificate for clients."""
        d = self.folder
        run = lambda *args: subprocess.run(args, check=True, capture_output=True, cwd=d)  # noqa: E731
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=edged test CA",
            "-keyout", "ca.key", "-out", "ca.crt")
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server.key",
            "-out", "server.csr")
        (d / "san.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
        run("openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.cnf", "-out", "server.crt")
        run("mosquitto_passwd", "-c", "-b", "passwords", username, password)
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
                               f"password_file {d}/passwords\ncafile {d}/ca.crt\ncertfile {d}/server.crt\n"
                               f"keyfile {d}/server.key\n{self._user()}")
        return d / "ca.crt"

    @staticmethod
    def _user() -> str:
        # Started as root, mosquitto drops to its own user, which cannot read a test's private
        # folder; the test broker keeps the user that started it.
        return "user root\n" if os.geteuid() == 0 else ""

    def start(self) -> None:
        self.process = subprocess.Popen([mosquitto_binary(), "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def stop(self) -> None:
        if self.process:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`: a network link the test can cut (every connection
    closed, new ones refused at once) and restore, as when a box's network goes away."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = True
        self.pairs: list[tuple[socket.socket, socket.socket]] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


class Subscriber:
    """Collects every message on `topic` with a persistent session (QoS 1)."""

    def __init__(self, port: int, topic: str = "#", client_id: str = "edged-test-subscriber",
                 ca_file: Path | None = None, username: str = "", password: str = "") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, bytes, bool]] = []
        self.received_at: list[float] = []  # wall time each message arrived
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        if ca_file:
            self.client.tls_set(ca_certs=str(ca_file))
        if username:
            self.client.username_pw_set(username, password)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload, bool(message.retain)))
            self.received_at.append(time.time())

    def on(self, topic: str) -> list[bytes]:
        with self._lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def timed(self, topic_end: str) -> list[tuple[float, bytes]]:
        """(arrival time, payload) of the messages whose topic ends with `topic_end`."""
        with self._lock:
            return [(t, p) for (topic, p, _), t in zip(self.messages, self.received_at, strict=True)
                    if topic.endswith(topic_end)]

    def json(self, topic: str) -> list[dict]:
        return [json.loads(p) for p in self.on(topic)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class RtspServer:
    """Debian's rtsp-server-perl, fed a looped video by ffmpeg (publishing over UDP, which is
    what that server takes); clients read rtsp://127.0.0.1:PORT/cam."""

    def __init__(self, video: Path, substream: tuple[int, int] | None = None,
                 size: tuple[int, int] | None = None) -> None:
        """`substream`: also publish the same pictures at this (width, height) on /sub, from
        the same ffmpeg, so both streams show each moment together (a camera's main and
        substream); `size`: scale the main stream to this (width, height)."""
        self.video = video
        self.substream = substream
        self.size = size
        self.client_port, self.source_port, self.rtp_port = free_port(), free_port(), free_udp_range()
        self.url = f"rtsp://127.0.0.1:{self.client_port}/cam"
        self.sub_url = f"rtsp://127.0.0.1:{self.client_port}/sub"
        self.processes: list[subprocess.Popen[bytes]] = []

    def start_server(self) -> None:
        """Only the server: something else publishes to rtsp://127.0.0.1:SOURCE_PORT/cam."""
        if not shutil.which("rtsp-server-perl"):
            raise RuntimeError("rtsp-server-perl is not installed: run tools/setup.sh --dev")
        self.processes.append(subprocess.Popen(
            ["perl", "-e", RTSP_SERVER, str(self.rtp_port),
             "--clientport", str(self.client_port), "--serverport", str(self.source_port),
             "--client_listen_address", "127.0.0.1", "--source_listen_address", "127.0.0.1",
             "--rtp_start_port", str(self.rtp_port), "--loglevel", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for_port(self.source_port)

    def start(self) -> None:
        """The server, and ffmpeg publishing the looped video to it."""
        self.start_server()
        encode = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-f", "rtsp",
                  "-rtsp_transport", "udp"]
        scale = ["-vf", f"scale={self.size[0]}:{self.size[1]}"] if self.size else []
        outputs = ["-map", "0:v", *scale, *encode, f"rtsp://127.0.0.1:{self.source_port}/cam"]
        if self.substream:
            width, height = self.substream
            outputs += ["-map", "0:v", "-vf", f"scale={width}:{height}", *encode,
                        f"rtsp://127.0.0.1:{self.source_port}/sub"]
        self.processes.append(subprocess.Popen(
            ["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(self.video), *outputs],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes = []


class Daemon:
    """`edged run --config FILE` as a subprocess; its stderr is kept in a file."""

    def __init__(self, folder: Path, config_text: str, env: dict[str, str] | None = None,
                 wrapper: list[str] | None = None, root: Path = ROOT) -> None:
        """`wrapper`: a command the daemon runs under (tools/sandbox.py, for example); `root`:
        the checkout whose edged runs (a benchmark's baseline may be an older one)."""
        self.folder = folder
        self.root = root
        self.wrapper = wrapper or []
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "edged.toml"
        self.config.write_text(config_text)
        self.log = folder / "daemon.log"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen([*self.wrapper, sys.executable, "-m", "edged.cli", "run", "--config",
                                         str(self.config)],
                                        cwd=self.root, env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=self.log.open("ab"))  # a restart adds to the log

    def status(self, port: int) -> dict | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def signal(self, number: int) -> None:
        assert self.process is not None
        self.process.send_signal(number)

    def stop(self, timeout: float = 15) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def gallery_copy(source, folder):
    folder.mkdir(parents=True, exist_ok=True)
    with Gallery(source) as g:
        g._db.execute("VACUUM INTO ?", (str(folder / "gallery.db"),))
    return folder / "gallery.db"


def config(video, gallery, status_port, *, camera="door", loop=True, mode="all", extra="", source=None):
    return f"""
[camera]
name = "{camera}"
source = "{source or video}"
loop = {str(loop).lower()}
open_timeout_s = 3.0
reconnect_max_s = 2.0
[detector]
detect_fps = 8.0
[recognition]
gallery = "{gallery}"
[stream]
port = {status_port}
[alerts]
mode = "{mode}"
cooldown_s = 0.0
[mqtt]
stats_interval_s = 1.0
{extra}
"""


def enroll_first_photos(engine, path: Path, people: list[tuple[str, str]]) -> Path:
    """A gallery at `path` with one photo of each (person, photo) of shared/data/faces."""
    from scenarios import DATA

    from edged.io.images import load_image

    with Gallery(path) as gallery:
        for person, photo in people:
            image = DATA / "faces" / person / photo
            face = engine.enroll_face(load_image(image), str(image))
            gallery.enroll(person, face.vector[None], engine.embedder_loaded().model_id, str(image))
            gallery.set_picture(person, face.picture, face.quality)
    return path


def datagrams(sock: socket.socket, seconds: float) -> list[str]:
    """Every datagram a (timeout-set) socket receives within `seconds`."""
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return got


def home_assistant_python() -> Path:
    """The Python of the virtual environment holding Home Assistant (tools/setup.sh --dev)."""
    marker = ROOT / ".venv" / ".edged-ha-venv"
    folder = os.environ.get("EDGED_HA_VENV") or (marker.read_text().strip() if marker.is_file() else "")
    python = Path(folder) / "bin" / "python"
    if not python.is_file():
        raise RuntimeError("Home Assistant's virtual environment is missing: run tools/setup.sh --dev")
    return python


class HomeAssistant:
    """A real Home Assistant on 127.0.0.1 with a fresh configuration: the HTTP API, onboarding
    and config flows (tools/ha_watch.py sets up its MQTT integration and follows its states)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "configuration.yaml").write_text(
            "homeassistant:\n  name: edged-test\n  time_zone: UTC\n  unit_system: metric\n  latitude: 0\n"
            "  longitude: 0\n  elevation: 0\n  currency: EUR\n  country: DE\n"
            f"http:\n  server_host: 127.0.0.1\n  server_port: {self.port}\napi:\nonboarding:\nconfig:\n")
        self.process: subprocess.Popen[bytes] | None = None
        self.watcher: subprocess.Popen[str] | None = None
        self.events_file = folder / "states.jsonl"

    def start(self, broker_port: int, seconds: float = 240) -> None:
        python = home_assistant_python()
        self.process = subprocess.Popen([str(python), "-m", "homeassistant", "-c", str(self.folder)],
                                        stdout=subprocess.DEVNULL, stderr=(self.folder / "hass.log").open("wb"))

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"{self.url}/api/onboarding", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        wait_until(up, seconds, "Home Assistant's HTTP API")
        self.watcher = subprocess.Popen([str(python), str(ROOT / "tools" / "ha_watch.py"), self.url, str(broker_port)],
                                        stdin=subprocess.PIPE, stdout=self.events_file.open("w"),
                                        stderr=(self.folder / "watch.log").open("w"), text=True)
        wait_until(lambda: self.events_file.read_text().startswith("ready "), 60, "Home Assistant's MQTT and states")

    def states(self) -> list[dict]:
        """Every state change Home Assistant made since the watcher started, in order."""
        return [json.loads(line) for line in self.events_file.read_text().splitlines()[1:] if line.startswith("{")]

    def stop(self) -> None:
        for process in (self.watcher, self.process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
