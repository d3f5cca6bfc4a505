"""Bounds on the web server's connections, so idle, slow and many clients cannot take it
down: a request must arrive whole within a deadline; only so many connections may wait for
their request, overall and per client, and past that the one that has waited longest is
closed (a real request arrives in milliseconds; an idle or slowloris one waits); only so
many requests may be served at once per client, and a client with only a few under way is
served even when others have filled the box-wide limit, so a few stalled clients cannot lock
everyone else out. Sockets are shut down, never closed, from
outside their own thread, so the thread blocked on one wakes up and ends."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConnectionLimits:
    request_timeout_s: float = 10.0  # from connecting to the end of the request's headers
    max_waiting: int = 128  # connections waiting for their request, all clients
    max_waiting_per_client: int = 32
    max_busy: int = 64  # requests being answered at once, all clients (viewers included)
    max_busy_per_client: int = 16
    # Past max_busy, a client with fewer requests than this under way is still served (up to
    # max_busy_hard in all): the box-wide limit never locks out a client that asks little.
    reserved_per_client: int = 4
    max_busy_hard: int = 256
    send_timeout_s: float = 10.0  # a client that reads nothing for this long is dropped


@dataclass
class _Connection:
    client: str
    since: float
    waiting: bool = True  # still reading its request


@dataclass
class ConnectionGuard:
    limits: ConnectionLimits = field(default_factory=ConnectionLimits)
    closed_waiting: int = 0  # connections closed for waiting too long or too many
    refused_busy: int = 0  # requests refused (503) because their client had too many under way

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, _Connection] = {}

    def admit(self, sock: socket.socket, client: str, now: float | None = None) -> None:
        """A new connection; makes room by closing the longest-waiting ones past the limits."""
        now = time.monotonic() if now is None else now
        victims = []
        with self._lock:
            self._connections[sock] = _Connection(client, now)
            waiting = [(c.since, s) for s, c in self._connections.items() if c.waiting]
            mine = [(since, s) for since, s in waiting if self._connections[s].client == client]
            for group, limit in ((mine, self.limits.max_waiting_per_client), (waiting, self.limits.max_waiting)):
                group.sort(key=lambda pair: pair[0])
                while len(group) > limit:
                    _, victim = group.pop(0)
                    if victim in self._connections and victim not in victims:
                        victims.append(victim)
        self._shut(victims)

    def request_read(self, sock: socket.socket) -> bool:
        """The request has arrived; False when too many are under way (for its client, or in all)."""
        with self._lock:
            connection = self._connections.get(sock)
            if connection is None:
                return False
            connection.waiting = False
            busy = [c for c in self._connections.values() if not c.waiting]
            mine = sum(1 for c in busy if c.client == connection.client)
            crowded = len(busy) > self.limits.max_busy and mine > self.limits.reserved_per_client
            if crowded or mine > self.limits.max_busy_per_client or len(busy) > self.limits.max_busy_hard:
                self.refused_busy += 1
                return False
            return True

    def release(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    def reap(self, now: float | None = None) -> int:
        """Closes connections whose request has not arrived within the deadline."""
        now = time.monotonic() if now is None else now
        with self._lock:
            late = [s for s, c in self._connections.items()
                    if c.waiting and now - c.since > self.limits.request_timeout_s]
        self._shut(late)
        return len(late)

    def counts(self) -> dict[str, int]:
        with self._lock:
            waiting = sum(1 for c in self._connections.values() if c.waiting)
            return {"connections": len(self._connections), "waiting": waiting,
                    "closed_waiting": self.closed_waiting, "refused_busy": self.refused_busy}

    def _shut(self, sockets: list[socket.socket]) -> None:
        for sock in sockets:
            self.closed_waiting += 1
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)
