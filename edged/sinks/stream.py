"""The live view and web page (standard library HTTP): an MJPEG stream of annotated frames, a
snapshot, the status JSON, and a small page showing the live view and recent events. Listens on
127.0.0.1 unless told otherwise; beyond loopback it needs a token or basic-auth credentials.
Frames are annotated and JPEG-encoded only while someone is watching, once for all viewers."""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import cv2
import numpy as np

from edged.draw import KNOWN, PLAIN, UNKNOWN, draw_face
from edged.errors import ConfigError
from edged.gallery import is_anonymous_name
from edged.types import Faces, Identity

log = logging.getLogger("edged.stream")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PAGE = Path(__file__).with_name("page.html")


def check_exposure(bind: str, token: str, password: str = "") -> None:
    if bind not in LOOPBACK and not (token or password):
        raise ConfigError(f"stream.bind = {bind!r} listens beyond this machine: set stream.token (or "
                          "stream.token_file), or stream.username and stream.password")


def blur_faces(image: np.ndarray, faces: Faces, identities: list[Identity]) -> None:
    """Blurs, in place, the faces of people who are not enrolled (and faces not yet identified)."""
    h, w = image.shape[:2]
    for i, box in enumerate(faces.xyxy):
        identity = identities[i] if i < len(identities) else Identity(None, -1.0)  # no answer yet: unknown
        if identity.person is not None and not is_anonymous_name(identity.person):
            continue
        x1, y1, x2, y2 = (int(v) for v in box)
        pad = int(0.15 * max(x2 - x1, y2 - y1))
        x1, y1, x2, y2 = max(x1 - pad, 0), max(y1 - pad, 0), min(x2 + pad, w), min(y2 + pad, h)
        if x2 - x1 < 2 or y2 - y1 < 2:
            continue
        region = image[y1:y2, x1:x2]
        small = cv2.resize(region, (max((x2 - x1) // 12, 1), max((y2 - y1) // 12, 1)), interpolation=cv2.INTER_AREA)
        # Twelve times coarser, then smoothed back up: no identity left, and no block edges.
        image[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)


def annotate(image: np.ndarray, faces: Faces, identities: list[Identity], fps: float, blur: bool) -> np.ndarray:
    """A copy of the frame with boxes, track ids, names and similarities, and the fps."""
    canvas = image.copy()
    if blur:
        blur_faces(canvas, faces, identities)
    for i in range(len(faces)):
        identity = identities[i] if i < len(identities) else Identity(None, -1.0)
        track = int(faces.track_id[i])
        if identity.person and not is_anonymous_name(identity.person):
            label, color = f"#{track} {identity.person} {identity.similarity:.2f}", KNOWN
        elif identity.person:
            label, color = f"#{track} {identity.person}", UNKNOWN
        else:
            label, color = f"#{track}", PLAIN if not identity.confirmed else UNKNOWN
        draw_face(canvas, faces.xyxy[i], None, label, color)
    cv2.putText(canvas, f"{fps:.1f} fps", (10, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return canvas


@dataclass
class _Latest:
    image: np.ndarray | None = None
    faces: Faces | None = None
    identities: list[Identity] | None = None
    sequence: int = 0


class LiveView:
    """`update()` from the pipeline stores references only; `jpeg()` encodes on demand."""

    def __init__(self, quality: int = 80, blur_unknowns: bool = False) -> None:
        self.quality = quality
        self.blur_unknowns = blur_unknowns
        self.fps = 0.0
        self.watchers = 0
        self.encoded = 0  # frames encoded so far: stays put while nobody watches
        self._latest = _Latest()
        self._cache: tuple[int, bytes] | None = None
        self._cond = threading.Condition()

    def watch(self) -> None:
        with self._cond:
            self.watchers += 1

    def unwatch(self) -> None:
        with self._cond:
            self.watchers -= 1

    def update(self, image: np.ndarray, faces: Faces, identities: list[Identity], fps: float) -> None:
        with self._cond:
            self._latest = _Latest(image, faces, identities, self._latest.sequence + 1)
            self.fps = fps
            self._cond.notify_all()

    def jpeg(self, after: int = 0, timeout: float = 5.0) -> tuple[int, bytes] | None:
        """The newest frame later than `after`, annotated and encoded: (sequence, JPEG)."""
        with self._cond:
            if self._latest.sequence <= after:
                self._cond.wait(timeout)
            latest = self._latest
            if latest.image is None or latest.sequence <= after:
                return None
            if self._cache and self._cache[0] == latest.sequence:
                return self._cache
        picture = annotate(latest.image, latest.faces or Faces.empty(), latest.identities or [], self.fps,
                           self.blur_unknowns)
        ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            return None
        with self._cond:
            self.encoded += 1
            self._cache = (latest.sequence, data.tobytes())
            return self._cache


class WebServer:
    """/ (page), /status (JSON), /stream.mjpg, /snapshot.jpg, /media/<file> on its own threads."""

    def __init__(self, bind: str, port: int, snapshot: Callable[[], dict[str, object]], view: LiveView,
                 token: str = "", username: str = "", password: str = "", max_fps: float = 10.0,
                 folders: dict[str, Path] | None = None) -> None:
        check_exposure(bind, token, password)
        self.token, self.username, self.password = token, username, password
        self.view = view
        self.folders = folders or {}  # URL prefix -> folder whose files it serves
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if not outer.authorised(self.headers.get("Authorization", ""), query.get("token", [""])[0]):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="edged"')
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(b'{"error": "a token or a password is required"}')
                    return
                routes = {"/": self._page, "/status": self._status, "/stream.mjpg": self._stream,
                          "/snapshot.jpg": self._snapshot}
                prefix, _, name = url.path.strip("/").partition("/")
                if prefix in outer.folders and name:
                    self._file(outer.folders[prefix], name)
                elif url.path in routes:
                    routes[url.path]()
                else:
                    self._send(404, "application/json", b'{"error": "not found"}')

            def _send(self, code: int, kind: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def _page(self) -> None:
                self._send(200, "text/html; charset=utf-8", PAGE.read_bytes())

            def _status(self) -> None:
                self._send(200, "application/json", json.dumps(snapshot(), default=str).encode())

            def _snapshot(self) -> None:
                frame = outer.view.jpeg(0, timeout=5)
                if frame is None:
                    self._send(503, "application/json", b'{"error": "no frame yet"}')
                else:
                    self._send(200, "image/jpeg", frame[1])

            def _file(self, folder: Path, name: str) -> None:
                path = (folder / name).resolve()
                if "/" in name or not path.is_file() or path.parent != folder.resolve():
                    self._send(404, "application/json", b'{"error": "no such file"}')
                    return
                kind = "video/mp4" if path.suffix == ".mp4" else "image/jpeg"
                self._send(200, kind, path.read_bytes())

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                outer.view.watch()
                sequence, interval = 0, 1.0 / max_fps
                try:
                    while not outer.stopping:
                        started = time.monotonic()
                        frame = outer.view.jpeg(sequence, timeout=2)
                        if frame is None:
                            continue
                        sequence, data = frame
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")
                        self.wfile.flush()
                        time.sleep(max(0.0, interval - (time.monotonic() - started)))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the viewer went away
                finally:
                    outer.view.unwatch()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("web: " + format, *args)

        self.stopping = False
        self.server = ThreadingHTTPServer((bind, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="edged-web", daemon=True)

    def authorised(self, header: str, query_token: str) -> bool:
        if not (self.token or self.password):
            return True
        if self.token:
            given = header[len("Bearer "):] if header.startswith("Bearer ") else query_token
            if given and hmac.compare_digest(given.encode(), self.token.encode()):
                return True
        if self.password and header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(header[len("Basic "):]).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(f"{user}:{password}".encode(), f"{self.username}:{self.password}".encode())
        return False

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping = True
        self.server.shutdown()
        self.server.server_close()
