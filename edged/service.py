"""systemd integration: READY / STATUS / STOPPING / WATCHDOG notifications, and a watchdog
that is fed only while the pipeline's heartbeat is fresh, so a stalled pipeline gets the
service restarted. Uses systemd-python where installed, else speaks the $NOTIFY_SOCKET
datagram protocol itself (it is one datagram of KEY=value lines)."""

from __future__ import annotations

import importlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable

log = logging.getLogger("edged.service")


def _send_direct(message: str) -> bool:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
        return True
    except OSError as exc:
        log.warning("cannot notify systemd at %s: %s", os.environ.get("NOTIFY_SOCKET"), exc)
        return False


def notify(message: str) -> bool:
    """Sends one notification; False when not run by systemd (no $NOTIFY_SOCKET)."""
    if not os.environ.get("NOTIFY_SOCKET"):
        return False
    try:
        daemon = importlib.import_module("systemd.daemon")  # systemd-python, where the box has it
    except ImportError:
        return _send_direct(message)
    return bool(daemon.notify(message))


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings: half of WatchdogSec, or None when not asked for."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return max(int(usec) / 1e6 / 2, 0.05)


class Watchdog:
    """Pings systemd while `heartbeat()` says the pipeline moved within `stall_after` seconds."""

    def __init__(self, heartbeat: Callable[[], float], stall_after: float,
                 status: Callable[[], str] | None = None, problem: Callable[[], str | None] | None = None) -> None:
        """`problem()`: what else is broken beyond repair in this process (a dead MQTT loop),
        or None; while it says something, the watchdog is not fed, so systemd restarts."""
        self.heartbeat = heartbeat
        self.problem = problem or (lambda: None)
        self.broken: str | None = None
        self.stall_after = stall_after
        self.status = status
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stalled = False

    def start(self) -> None:
        interval = watchdog_interval()
        if interval is None and self.status is None:
            return
        self._thread = threading.Thread(target=self._run, args=(interval or 5.0,), name="edged-watchdog",
                                        daemon=True)
        self._thread.start()

    def _run(self, interval: float) -> None:
        with_watchdog = watchdog_interval() is not None
        while not self._stop.wait(interval):
            age = time.monotonic() - self.heartbeat()
            stalled = age > self.stall_after
            if stalled != self.stalled:
                self.stalled = stalled
                if stalled:
                    log.error("pipeline stalled for %.1f s: no longer feeding the watchdog", age)
                else:
                    log.info("pipeline moving again")
            broken = self.problem()
            if broken != self.broken:
                self.broken = broken
                if broken:
                    log.error("%s: no longer feeding the watchdog", broken)
            parts = []
            if with_watchdog and not stalled and not broken:
                parts.append("WATCHDOG=1")
            if self.status is not None:
                parts.append(f"STATUS={self.status()}")
            if parts:
                notify("\n".join(parts))

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
