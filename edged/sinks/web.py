"""The web server (standard library HTTP): the page, /status, the MJPEG stream, a snapshot,
and the files of media/ and clips/. Listens on 127.0.0.1 unless told otherwise (IPv4 or IPv6);
beyond loopback it needs a token or basic-auth credentials. It holds against idle, slow, many
and hostile clients: connections are bounded (connections.py), files are streamed from disk
with byte ranges (phones play MP4 through them), and only finished clips and pictures are
served, never files still being written or the upload spool. A file may also be opened by a
link signed for it alone (links.py), as alerts carry; such a link opens nothing else. Requests
naming a host the box does not answer to are refused (DNS rebinding)."""

from __future__ import annotations

import base64
import contextlib
import email.utils
import hashlib
import hmac
import ipaddress
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from edged.config import CAMERA_NAME
from edged.errors import ConfigError, EdgedError
from edged.links import link_allows, link_key
from edged.sinks.connections import ConnectionGuard, ConnectionLimits
from edged.sinks.http_ranges import Unsatisfiable, parse_range
from edged.sinks.stream import LiveView, check_exposure

if TYPE_CHECKING:
    from edged.sinks.http_api import HttpApi

log = logging.getLogger("edged.web")
PAGE = Path(__file__).with_name("page.html")
LIBRARY_PAGE = Path(__file__).with_name("library.html")
CLIPS_PAGE = Path(__file__).with_name("clips.html")
MAX_FORM = 4096  # bytes of a library action
DRAIN_LIMIT = 64 * 1024  # bytes of a refused request's body read anyway, so that its answer arrives
MAX_PHOTO = 20 * 2**20  # bytes of a photo uploaded to enroll: more than a phone's full-size JPEG
# The tab's icon: a face in a frame, in the page's colours. Public (no token): browsers ask for
# it without one, and it says nothing about the box.
FAVICON = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" '
           b'fill="#222"/><rect x="5" y="5" width="22" height="22" rx="3" fill="none" stroke="#9cf" '
           b'stroke-width="2.5"/><circle cx="16" cy="14" r="5" fill="#9cf"/><path d="M8 27c1-5 4-7 8-7s7 2 8 7" '
           b'fill="#9cf"/></svg>')
LIBRARY_FACE = re.compile(r"/library/face/([0-9]{1,12})\.jpg")
CAMERA_ROUTE = re.compile(r"/cameras/([A-Za-z0-9_-]{1,64})/(|status|stream\.mjpg|snapshot\.jpg)")
SERVED_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}\.(mp4|jpg)")  # no .part, no spool, no dot files
KINDS = {".mp4": "video/mp4", ".jpg": "image/jpeg"}
CHUNK = 256 * 1024
GONE = (ConnectionError, TimeoutError)  # a client that went away or stopped reading: not an error of ours


def host_allowed(host_header: str | None, names: set[str]) -> bool:
    """The Host a request names is one the box answers to: an address (a name an attacker's
    page cannot rebind to), or one of `names` (this host's names, localhost, notify.base_url's
    host). No Host header (HTTP/1.0) is allowed."""
    if not host_header:
        return True
    host = host_header.strip().lower()
    if host.startswith("["):  # [IPv6]:port
        host = host[1:].partition("]")[0]
    elif host.count(":") == 1:
        host = host.partition(":")[0]
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host.rstrip(".") in names


def own_host_names(extra: tuple[str, ...] = ()) -> set[str]:
    name = socket.gethostname().lower()
    names = {"localhost", name, name.split(".")[0], name.split(".")[0] + ".local"}
    with contextlib.suppress(OSError):
        names.add(socket.getfqdn().lower())
    return names | {n.lower() for n in extra if n}


def page_headers(page: bytes) -> dict[str, str]:
    """Security headers for the page: only its own inline script runs (by hash), so markup that
    slipped into a name could not run even if it were not escaped; the token in the address
    never leaves in a Referer."""
    script = page.split(b"<script>", 1)[1].split(b"</script>", 1)[0] if b"<script>" in page else b""
    digest = base64.b64encode(hashlib.sha256(script).digest()).decode()
    return {"Content-Security-Policy": f"default-src 'self'; script-src 'sha256-{digest}'; "
                                       "style-src 'unsafe-inline'; img-src 'self'; object-src 'none'; "
                                       "base-uri 'none'; frame-ancestors 'none'",
            "Referrer-Policy": "no-referrer"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # bursts of connections wait in the kernel, not refused

    def __init__(self, bind: str, port: int, handler: type[BaseHTTPRequestHandler], guard: ConnectionGuard) -> None:
        self.guard = guard
        self.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        super().__init__((bind, port), handler, bind_and_activate=False)
        try:
            if bind == "::":  # every address, IPv4 ones included where the system allows
                self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            self.server_bind()
            self.server_activate()
        except BaseException:
            self.server_close()
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        self.guard.admit(request, str(client_address[0]))
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.guard.release(request)
        super().shutdown_request(request)

    def service_actions(self) -> None:  # serve_forever calls this twice a second
        self.guard.reap()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away is one debug line, not a traceback (slowloris runs made
        thousands); anything else is logged once with its traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, GONE):
            log.debug("web: client %s went away (%s)", client_address[0], type(error).__name__)
        else:
            log.exception("web: a request from %s failed", client_address[0])


class WebServer:
    """/ (page), /status (JSON), /stream.mjpg, /snapshot.jpg, /cameras/<name>/..., /<folder>/<file>
    on its own threads. `recording(name)`: seconds until a clip still being recorded is ready, or None."""

    def __init__(self, bind: str, port: int, snapshot: Callable[[], dict[str, object]], view: LiveView,
                 token: str = "", username: str = "", password: str = "", max_fps: float = 10.0,
                 folders: dict[str, Path] | None = None, recording: Callable[[str], float | None] | None = None,
                 limits: ConnectionLimits | None = None, library: Any = None,
                 cameras: dict[str, LiveView] | None = None,
                 camera_status: Callable[[str], dict[str, object]] | None = None,
                 host_names: tuple[str, ...] = ()) -> None:
        """`library`: an edged.library.Library for the face library page (/library), or None;
        `cameras`: each camera's live view, served under /cameras/<name>/ (the page, stream.mjpg,
        snapshot.jpg, and `camera_status(name)` as status); `view` is the one / shows."""
        check_exposure(bind, token, password)
        self.library = library
        self.history: Any = None  # an edged.history.AlertHistory, for /alerts.json and the clips page
        self.api: HttpApi | None = None  # the HTTP API (/api/v1/, /v1/vision/), when the daemon has models
        self.cameras = cameras or {}
        self.camera_status = camera_status
        self.token, self.username, self.password = token, username, password
        self.link_key = link_key(token, password)  # opens one file per signed link (alerts carry them)
        self.host_names = own_host_names((bind, *host_names))
        self.view = view
        self.folders = folders or {}  # URL prefix -> folder whose files it serves
        self.recording = recording or (lambda name: None)
        self.guard = ConnectionGuard(limits or ConnectionLimits())
        self.stopping = False
        page = PAGE.read_bytes()
        security = page_headers(page)
        library_page = LIBRARY_PAGE.read_bytes()
        library_security = page_headers(library_page)
        clips_page = CLIPS_PAGE.read_bytes()
        clips_security = page_headers(clips_page)
        outer = self
        limits_in_use = self.guard.limits

        class Handler(BaseHTTPRequestHandler):
            server_version = "edged"
            sys_version = ""
            timeout = limits_in_use.request_timeout_s  # no single read waits longer than the whole request may
            head = False
            width = 0  # the live view width this viewer asked for (0: the configured one)

            def parse_request(self) -> bool:
                if not super().parse_request():
                    return False
                if not outer.guard.request_read(self.connection):
                    self.close_connection = True
                    self._send(503, "application/json", b'{"error": "too many requests from this client"}',
                               {"Retry-After": "5"})
                    return False
                self.connection.settimeout(limits_in_use.send_timeout_s)
                return True

            def do_HEAD(self) -> None:  # noqa: N802 - the standard library's name
                self.head = True
                self.do_GET()

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                if outer.api is not None and outer.api.serves(url.path):
                    self._api(url.path, url.query)
                    return
                if url.path == "/favicon.ico" and not self._wrong_host():
                    self._send(200, "image/svg+xml", FAVICON, {"Cache-Control": "max-age=86400"})
                    return
                if self._wrong_host() or self._refused(url.query, url.path):
                    return
                routes = {"/": self._page, "/status": self._status, "/stream.mjpg": self._stream,
                          "/snapshot.jpg": self._snapshot, "/alerts.json": lambda: self._alerts(url.query),
                          "/clips.json": lambda: self._clips(url.query), "/clips/": self._clips_page,
                          "/clips": lambda: self._send(301, "text/plain", b"", {
                              "Location": "/clips/" + (f"?{url.query}" if url.query else "")})}
                try:  # ?width= asks the live view for a narrower picture (a phone's)
                    self.width = int(parse_qs(url.query).get("width", ["0"])[0])
                except ValueError:
                    self._send(400, "application/json", b'{"error": "width must be a number of pixels"}')
                    return
                if outer.library is not None:
                    routes.update({"/library": self._library_page, "/library.json": self._library_view})
                prefix, _, name = url.path.strip("/").partition("/")
                picture = LIBRARY_FACE.fullmatch(url.path)
                camera = CAMERA_ROUTE.fullmatch(url.path)
                if camera:
                    self._camera(camera.group(1), camera.group(2))
                elif picture and outer.library is not None:
                    self._library_face(int(picture.group(1)))
                elif prefix in outer.folders and name:
                    self._file(outer.folders[prefix], name)
                elif url.path in routes:
                    routes[url.path]()
                else:
                    self._send(404, "application/json", b'{"error": "not found"}')

            def _send(self, code: int, kind: str, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("X-Content-Type-Options", "nosniff")
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if not self.head:
                    self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                """A face library action: authorised, same-origin, a small form with the page's
                token (CSRF); the answer is JSON. Or a request to the API."""
                url = urlparse(self.path)
                self.close_connection = True  # a body left unread must not be taken for a request
                if outer.api is not None and outer.api.serves(url.path):
                    self._api(url.path, url.query)
                    return
                if self._wrong_host() or self._refused(url.query):
                    return
                if url.path not in ("/library", "/library/photo") or outer.library is None:
                    self._send(404, "application/json", b'{"error": "not found"}')
                    return
                origin = self.headers.get("Origin")
                if origin and urlparse(origin).netloc != self.headers.get("Host", ""):
                    self._send(403, "application/json", b'{"error": "actions come from this box\'s own page"}')
                    return
                try:
                    length = int(self.headers.get("Content-Length", "-1"))
                except ValueError:
                    length = -1
                if url.path == "/library/photo":
                    self._photo(url.query, length)
                    return
                if not 0 <= length <= MAX_FORM:
                    self._send(413, "application/json", b'{"error": "a form of at most 4096 bytes is expected"}')
                    return
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
                library = outer.library
                self._answer(lambda: library.act(form))

            def do_PUT(self) -> None:  # noqa: N802
                self._api_only()

            def do_PATCH(self) -> None:  # noqa: N802
                self._api_only()

            def do_DELETE(self) -> None:  # noqa: N802
                self._api_only()

            def _api_only(self) -> None:
                url = urlparse(self.path)
                self.close_connection = True
                if outer.api is not None and outer.api.serves(url.path):
                    self._api(url.path, url.query)
                else:
                    self._send(405, "application/json", b'{"error": "method not allowed"}',
                               {"Allow": "GET, HEAD, POST"})

            def _api(self, path: str, query: str) -> None:
                """A request to the HTTP API (http_api.py): the same host rule and credentials as
                the page, plus CompreFace's x-api-key header; a browser's request from another
                site's page is refused (a page cannot enroll a face on a box without a token)."""
                from edged.sinks.http_api import ApiRequest
                from edged.sinks.uploads import read_upload

                if self._wrong_host():
                    return
                origin = self.headers.get("Origin")
                if origin and urlparse(origin).netloc != self.headers.get("Host", ""):
                    self._send(403, "application/json", b'{"error": "requests from another site\'s page are refused"}')
                    return
                fields = {k: v[0] for k, v in parse_qs(query).items()}
                key = self.headers.get("x-api-key", "") or fields.get("token", "")
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = ApiRequest(self.command, path, fields, headers,
                                     lambda: read_upload(headers, self.rfile.read1),
                                     outer.authorised(self.headers.get("Authorization", ""), key),
                                     lambda given: bool(outer.token) and outer.authorised("", given))
                assert outer.api is not None
                reply = outer.api.handle(request)
                if not request.body_read:
                    self._drain(headers)
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                answer_headers = dict(reply.headers)
                if reply.status == 401:
                    answer_headers["WWW-Authenticate"] = 'Bearer realm="edged"'
                self._send(reply.status, reply.kind, body, answer_headers)

            def _drain(self, headers: dict[str, str]) -> None:
                """Reads a small body a refusal left unread: closing on unread bytes resets the
                connection, and the client could lose the answer."""
                try:
                    length = int(headers.get("content-length", "0"))
                except ValueError:
                    return
                if 0 < length <= DRAIN_LIMIT:
                    with contextlib.suppress(OSError):
                        self.rfile.read(length)

            def _answer(self, action: Callable[[], Any]) -> None:
                """Runs a library action and answers in JSON: 403 for a missing or wrong page
                token, 400 for anything refused, with the reason; never a traceback."""
                try:
                    outcome = action()
                except PermissionError as exc:
                    self._send(403, "application/json", json.dumps({"ok": False, "error": str(exc)}).encode())
                    return
                except (EdgedError, ValueError) as exc:
                    self._send(400, "application/json", json.dumps({"ok": False, "error": str(exc)}).encode())
                    return
                log.info("face library: %s", outcome.message)
                self._send(200 if outcome.ok else 400, "application/json", json.dumps(outcome.to_json()).encode())

            def _photo(self, query: str, length: int) -> None:
                """A photo to enroll, posted as the request body (the page sends the file as
                it is: no multipart form to parse), with the page's token in a header."""
                from edged.io.images import decode_image

                if not 0 < length <= MAX_PHOTO:
                    self._send(413, "application/json", json.dumps(
                        {"ok": False, "error": f"a photo of 1 byte to {MAX_PHOTO // 2**20} MB is expected"}).encode())
                    return
                name = parse_qs(query).get("person", [""])[0].strip()
                token = self.headers.get("X-Edged-Form-Token", "")
                library = outer.library
                assert library is not None

                def enroll() -> Any:
                    library.check_token(token)  # before the body is read and decoded
                    return library.enroll_photo(name, decode_image(self.rfile.read(length), "the photo"), token)

                self._answer(enroll)

            def _wrong_host(self) -> bool:
                if host_allowed(self.headers.get("Host"), outer.host_names):
                    return False
                self._send(421, "application/json", b'{"error": "this box does not answer to that host name"}')
                return True

            def _refused(self, query: str, path: str | None = None) -> bool:
                """Answers 401 unless the request carries the token or the password, or (for
                `path`, a file) a link signed for that file."""
                fields = parse_qs(query)
                token = fields.get("token", [""])[0]
                if outer.authorised(self.headers.get("Authorization", ""), token):
                    return False
                if path is not None and outer.signed_link_opens(path, fields):
                    return False
                self._send(401, "application/json", b'{"error": "a token or a password is required"}',
                           {"WWW-Authenticate": 'Basic realm="edged"'})
                return True

            def _clips_page(self) -> None:
                self._send(200, "text/html; charset=utf-8", clips_page, clips_security)

            def _asked(self, query: str) -> tuple[str | None, int]:
                fields = parse_qs(query)
                camera = fields.get("camera", [""])[0]
                try:
                    limit = max(1, min(500, int(fields.get("limit", ["100"])[0])))
                except ValueError:
                    limit = 100
                return (camera if CAMERA_NAME.fullmatch(camera) else None), limit

            def _alerts(self, query: str) -> None:
                """The alert history, newest first: ?camera=NAME, ?limit=N (at most 500)."""
                camera, limit = self._asked(query)
                alerts = outer.history.recent(limit, camera) if outer.history is not None else []
                self._send(200, "application/json", json.dumps({"alerts": alerts}).encode())

            def _clips(self, query: str) -> None:
                """The finished clips, newest first, each with the alerts it was recorded for."""
                camera, limit = self._asked(query)
                self._send(200, "application/json", json.dumps(outer.clip_rows(camera, limit)).encode())

            def _library_page(self) -> None:
                self._send(200, "text/html; charset=utf-8", library_page, library_security)

            def _library_face(self, person_id: int) -> None:
                jpeg = outer.library.picture(person_id)
                if jpeg is None:
                    self._send(404, "application/json", b'{"error": "no picture"}')
                else:
                    self._send(200, "image/jpeg", jpeg)

            def _library_view(self) -> None:
                self._send(200, "application/json", json.dumps(outer.library.view()).encode())

            def _page(self) -> None:
                self._send(200, "text/html; charset=utf-8", page, security)

            def _status(self) -> None:
                self._send(200, "application/json", json.dumps(snapshot(), default=str).encode())

            def _camera(self, name: str, what: str) -> None:
                view = outer.cameras.get(name)
                if view is None:
                    self._send(404, "application/json", b'{"error": "no such camera"}')
                elif what == "":
                    self._page()
                elif what == "status" and outer.camera_status is not None:
                    self._send(200, "application/json", json.dumps(outer.camera_status(name), default=str).encode())
                elif what == "stream.mjpg":
                    self._stream(view)
                elif what == "snapshot.jpg":
                    self._snapshot(view)
                else:
                    self._send(404, "application/json", b'{"error": "not found"}')

            def _snapshot(self, view: LiveView | None = None) -> None:
                frame = (view or outer.view).jpeg(0, timeout=5, width=self.width)
                if frame is None:
                    self._send(503, "application/json", b'{"error": "no frame yet"}')
                else:
                    self._send(200, "image/jpeg", frame[1])

            def _file(self, folder: Path, name: str) -> None:
                path = folder / name
                if not SERVED_FILE.fullmatch(name) or not path.is_file():
                    left = outer.recording(name) if SERVED_FILE.fullmatch(name) else None
                    if left is not None:
                        self._still_recording(left)
                    else:
                        self._send(404, "application/json", b'{"error": "no such file"}')
                    return
                with path.open("rb") as f:
                    info = os.fstat(f.fileno())
                    size = info.st_size
                    etag = f'"{size:x}-{info.st_mtime_ns:x}"'
                    modified = email.utils.formatdate(info.st_mtime, usegmt=True)
                    asked = self.headers.get("Range")
                    if_range = self.headers.get("If-Range")
                    if if_range and if_range.strip() not in (etag, modified):
                        asked = None  # the file changed since the client's part: the whole file (RFC 9110 13.1.5)
                    try:
                        wanted = parse_range(asked, size)
                    except Unsatisfiable:
                        self._send(416, "application/json", b'{"error": "range not satisfiable"}',
                                   {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"})
                        return
                    start, length = (0, size) if wanted is None else (wanted.start, wanted.length)
                    self.send_response(200 if wanted is None else 206)
                    self.send_header("Content-Type", KINDS[path.suffix])
                    self.send_header("Content-Length", str(length))
                    self.send_header("Accept-Ranges", "bytes")
                    self.send_header("ETag", etag)
                    self.send_header("Last-Modified", modified)
                    self.send_header("Cache-Control", "private, max-age=3600")
                    self.send_header("X-Content-Type-Options", "nosniff")
                    if wanted is not None:
                        self.send_header("Content-Range", wanted.content_range(size))
                    self.end_headers()
                    if not self.head and length:
                        # Straight from the file to the socket: no copy of a clip in memory.
                        self.connection.sendfile(f, start, length)

            def _still_recording(self, seconds_left: float) -> None:
                wait = max(1, round(seconds_left))
                body = (f"<!doctype html><meta charset=utf-8><meta http-equiv=refresh content={wait + 1}>"
                        f"<title>recording</title><p>This clip is still recording: it will be ready in about "
                        f"{wait} s. This page reloads by itself.</p>").encode()
                self._send(202, "text/html; charset=utf-8", body, {"Retry-After": str(wait + 1)})

            def _stream(self, view: LiveView | None = None) -> None:
                view = view or outer.view
                if not view.watch():
                    self._send(503, "application/json", b'{"error": "too many viewers"}', {"Retry-After": "10"})
                    return
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                    self.send_header("Cache-Control", "no-store")
                    self.end_headers()
                    if self.head:
                        return
                    sequence, interval = 0, 1.0 / max_fps
                    while not outer.stopping:
                        started = time.monotonic()
                        frame = view.jpeg(sequence, timeout=2, width=self.width)
                        if frame is None:
                            continue
                        sequence, data = frame
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(data)).encode() + b"\r\n\r\n" + data + b"\r\n")
                        self.wfile.flush()
                        time.sleep(max(0.0, interval - (time.monotonic() - started)))
                except OSError:
                    pass  # the viewer went away, or stopped reading (send timeout)
                finally:
                    view.unwatch()

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("web: " + format, *args)

        try:
            self.server = _Server(bind, port, Handler, self.guard)
        except OSError as exc:
            raise ConfigError(f"stream.bind = {bind!r}, stream.port = {port}: cannot listen there "
                              f"({exc.strerror or exc}); another program (or another edged) may use that port, "
                              "or the address is not one of this machine's") from exc
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

    def clip_rows(self, camera: str | None, limit: int) -> dict[str, object]:
        from edged.sinks.http_api import clip_rows

        return clip_rows(self.folders.get("clips"), self.history, set(self.cameras), camera, limit, SERVED_FILE)

    def alert_rows(self, camera: str | None, limit: int) -> list[dict[str, object]]:
        return self.history.recent(limit, camera) if self.history is not None else []

    def signed_link_opens(self, path: str, fields: dict[str, list[str]]) -> bool:
        prefix = path.strip("/").partition("/")[0]
        if prefix not in self.folders:
            return False
        return link_allows(self.link_key, path, fields.get("exp", [""])[0], fields.get("sig", [""])[0])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stops serving; safe before start (shutdown() would wait for a loop never begun)."""
        self.stopping = True
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()
