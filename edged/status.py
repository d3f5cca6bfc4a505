"""The status endpoint: GET /status returns what the daemon is doing as JSON (standard
library HTTP server). Listening beyond loopback requires a token (Bearer header or ?token=)."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from edged.errors import ConfigError

log = logging.getLogger("edged.status")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def check_exposure(bind: str, token: str) -> None:
    if bind not in LOOPBACK and not token:
        raise ConfigError(f"status.bind = {bind!r} listens beyond this machine: set status.token "
                          "(or status.token_file) too")


class StatusServer:
    """Serves `snapshot()` (a JSON-able dict) at /status on its own thread."""

    def __init__(self, bind: str, port: int, token: str, snapshot: Callable[[], dict[str, object]]) -> None:
        check_exposure(bind, token)
        self.token = token
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                url = urlparse(self.path)
                if url.path not in ("/status", "/"):
                    self._send(404, {"error": "not found; try /status"})
                    return
                if outer.token and not outer.authorised(self.headers.get("Authorization", ""),
                                                        parse_qs(url.query).get("token", [""])[0]):
                    self._send(401, {"error": "a token is required"})
                    return
                self._send(200, snapshot())

            def _send(self, code: int, body: dict[str, object]) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("status: " + format, *args)

        self.server = ThreadingHTTPServer((bind, port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="edged-status", daemon=True)

    def authorised(self, header: str, query_token: str) -> bool:
        given = header[len("Bearer "):] if header.startswith("Bearer ") else query_token
        return hmac.compare_digest(given.encode(), self.token.encode())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
