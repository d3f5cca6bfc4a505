"""Notifications through Apprise (the one apprise import): a message from a template with
${person}, ${camera}, ${time}, ${similarity}, ${snapshot_url} and ${clip_url} (links that open
from a phone: absolute, signed for that file where the box needs it), the face or the framed
picture attached where the service takes attachments, a timeout per notification, and
retries with back-off for the services that failed only (one Apprise object per URL, so a
working service never gets a message twice). Optionally a second message when the clip is
ready. Each service (URL) has its own worker and bounded queue, so a slow, dead or hanging
service holds up neither the pipeline, nor the other sinks, nor the other services."""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from string import Template

from edged.config import NotifyConfig
from edged.events import Alert
from edged.links import LINK_EXPIRY_S, box_link
from edged.pipeline import SinkItem

log = logging.getLogger("edged.notify")


def with_timeouts(url: str, seconds: float) -> str:
    """Adds Apprise's connect and read timeouts (cto, rto) unless the URL sets its own."""
    if "cto=" in url or "rto=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}cto={seconds:g}&rto={seconds:g}"


def render(template: str, alert: Alert, base_url: str, clip_link: Callable[[str], str] | None = None,
           link_key: bytes = b"", link_expiry_s: float = LINK_EXPIRY_S) -> str:
    """The template with the alert's fields; unknown ${names} are left as they are.
    `clip_link` turns a clip's file name into its link (S3), else the box's own URL is used."""

    def link(path: str | None) -> str:
        if path and clip_link is not None and path.startswith("clips/"):
            return clip_link(path.removeprefix("clips/"))
        return box_link(base_url, path, link_key, link_expiry_s) if path else "none"

    return Template(template).safe_substitute(
        person=alert.who, camera=alert.camera, time=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(alert.time)),
        similarity=f"{alert.similarity:.2f}" if alert.person else "n/a",
        snapshot_url=link(alert.snapshot), clip_url=link(alert.clip))


@dataclass(frozen=True)
class ClipReady:
    """A clip finished: told to the owner when notify.clip_ready is on."""

    name: str
    camera: str


@dataclass(frozen=True)
class Message:
    """One notification, rendered once for every service."""

    title: str
    body: str
    attach: Path | None
    what: str  # for logs: "the alert for alice"


class Service:
    """One Apprise URL with its own worker and its own bounded queue, so a service that fails,
    or hangs until its timeout, costs the others nothing: each tries again (with back-off) on
    its own time."""

    def __init__(self, name: str, target: object, settings: NotifyConfig, apprise_module: object,
                 queue_size: int) -> None:
        self.name = name
        self.target = target
        self.settings = settings
        self.apprise_module = apprise_module
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[Message | None] = queue.Queue(maxsize=queue_size)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"edged-notify-{name[:20]}", daemon=True)
        self.thread.start()

    def put(self, message: Message) -> None:
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self.dropped += 1
            log.warning("notify: %d notifications waiting for %s; dropping %s", self._queue.qsize(), self.name,
                        message.what)

    def close(self) -> None:
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)

    def _run(self) -> None:
        while (message := self._queue.get()) is not None:
            try:
                self._deliver(message)
            except Exception:  # one broken message must not end the service's worker
                log.exception("notify: sending %s to %s failed", message.what, self.name)

    def _deliver(self, message: Message) -> None:
        """Tries with back-off (1, 2, 4 ... s); each try bounded by Apprise's timeouts."""
        s = self.settings
        attach = (self.apprise_module.AppriseAttachment(str(message.attach))  # type: ignore[attr-defined]
                  if message.attach is not None else None)
        for attempt in range(s.retries + 1):
            if self.stop_event.is_set() and attempt:
                break
            if self.target.notify(title=message.title, body=message.body, attach=attach):  # type: ignore[attr-defined]
                self.sent += 1
                return
            if attempt < s.retries:
                self.stop_event.wait(2**attempt)
        self.failed += 1
        log.error("notify: could not deliver %s to %s after %d tries", message.what, self.name, s.retries + 1)


class NotifySink:
    def __init__(self, settings: NotifyConfig, media: Path, base_url: str, queue_size: int = 100,
                 clip_link: Callable[[str], str] | None = None, link_key: bytes = b"",
                 link_expiry_s: float = LINK_EXPIRY_S) -> None:
        import apprise

        self.settings = settings
        self.media = media
        self.base_url = base_url
        self.clip_link = clip_link
        self.link_key = link_key  # signs each link for its one file (links.py)
        self.link_expiry_s = link_expiry_s
        self.services: list[Service] = []
        for url in settings.urls:
            target = apprise.Apprise()
            if target.add(with_timeouts(url, settings.timeout_s)):
                name = url.split("?", 1)[0].split("@")[-1][:40]  # scheme and host, for logs: no secrets
                self.services.append(Service(name, target, settings, apprise, queue_size))
            else:
                log.error("notify: Apprise does not understand the URL %s...; it is skipped", url[:16])

    @property
    def sent(self) -> int:
        return sum(s.sent for s in self.services)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.services)

    @property
    def _stop(self) -> _StopAll:
        return _StopAll(self.services)

    def handle(self, item: SinkItem) -> None:
        if isinstance(item, Alert):
            self._send_alert(item)

    def clip_ready(self, path: Path, camera: str) -> None:
        """Called when a clip is finished (from the clip writer's thread)."""
        if self.settings.clip_ready:
            self._send_clip_ready(ClipReady(path.name, camera))

    def _send_alert(self, alert: Alert) -> None:
        s = self.settings
        attach = None
        picture = alert.frame if s.attach == "frame" else alert.snapshot
        if s.attach_snapshot and picture:
            path = self.media / Path(picture).name
            if path.is_file():
                attach = path
        title = render(s.title, alert, self.base_url, self.clip_link, self.link_key, self.link_expiry_s)
        body = render(s.body, alert, self.base_url, self.clip_link, self.link_key, self.link_expiry_s)
        self._fan_out(Message(title, body, attach, f"the alert for {alert.who}"))

    def _send_clip_ready(self, clip: ClipReady) -> None:
        path = f"clips/{clip.name}"
        link = (self.clip_link(clip.name) if self.clip_link
                else box_link(self.base_url, path, self.link_key, self.link_expiry_s))
        self._fan_out(Message(f"edged: clip ready at {clip.camera}", f"The clip {clip.name} is ready: {link}", None,
                              f"the clip-ready message for {clip.name}"))

    def _fan_out(self, message: Message) -> None:
        for service in self.services:
            service.put(message)

    def close(self) -> None:
        """Sends what is queued for up to a few seconds in all, then leaves the rest."""
        for service in self.services:
            service.close()
        deadline = time.monotonic() + 5
        for service in self.services:
            service.thread.join(max(0.0, deadline - time.monotonic()))
        for service in self.services:
            service.stop_event.set()


class _StopAll:
    """`sink._stop.set()` stops every service's retries (what a test or a shutdown wants)."""

    def __init__(self, services: list[Service]) -> None:
        self.services = services

    def set(self) -> None:
        for service in self.services:
            service.stop_event.set()
