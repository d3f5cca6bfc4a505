"""Notifications through Apprise (the one apprise import): a message from a template with
${person}, ${camera}, ${time}, ${similarity}, ${snapshot_url} and ${clip_url}, the face
attached where the service takes attachments, a timeout per notification, and retries with
back-off. Alerts wait in a bounded queue served by a thread of its own, so a slow or dead
service holds up neither the pipeline nor the other sinks."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from string import Template

from edged.config import NotifyConfig
from edged.events import Alert
from edged.pipeline import SinkItem

log = logging.getLogger("edged.notify")


def with_timeouts(url: str, seconds: float) -> str:
    """Adds Apprise's connect and read timeouts (cto, rto) unless the URL sets its own."""
    if "cto=" in url or "rto=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}cto={seconds:g}&rto={seconds:g}"


def render(template: str, alert: Alert, base_url: str, clip_link: Callable[[str], str] | None = None) -> str:
    """The template with the alert's fields; unknown ${names} are left as they are.
    `clip_link` turns a clip's file name into its link (S3), else the box's own URL is used."""

    def link(path: str | None) -> str:
        if path and clip_link is not None and path.startswith("clips/"):
            return clip_link(path.removeprefix("clips/"))
        return f"{base_url.rstrip('/')}/{path}" if path else "none"

    return Template(template).safe_substitute(
        person=alert.who, camera=alert.camera, time=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(alert.time)),
        similarity=f"{alert.similarity:.2f}" if alert.person else "n/a",
        snapshot_url=link(alert.snapshot), clip_url=link(alert.clip))


class NotifySink:
    def __init__(self, settings: NotifyConfig, media: Path, base_url: str, queue_size: int = 100,
                 clip_link: Callable[[str], str] | None = None) -> None:
        import apprise

        self.apprise_module = apprise
        self.settings = settings
        self.media = media
        self.base_url = base_url
        self.clip_link = clip_link
        self.sender = apprise.Apprise()
        for url in settings.urls:
            if not self.sender.add(with_timeouts(url, settings.timeout_s)):
                log.error("notify: Apprise does not understand the URL %s...; it is skipped", url[:16])
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edged-notify", daemon=True)
        self._thread.start()

    def handle(self, item: SinkItem) -> None:
        if not isinstance(item, Alert) or not len(self.sender):
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.warning("notify: %d notifications waiting; dropping the alert for %s", self._queue.qsize(), item.who)

    def _run(self) -> None:
        while (alert := self._queue.get()) is not None:
            self._send(alert)

    def _send(self, alert: Alert) -> None:
        s = self.settings
        attach = None
        if s.attach_snapshot and alert.snapshot:
            face = self.media / Path(alert.snapshot).name
            if face.is_file():
                attach = self.apprise_module.AppriseAttachment(str(face))
        title = render(s.title, alert, self.base_url, self.clip_link)
        body = render(s.body, alert, self.base_url, self.clip_link)
        for attempt in range(s.retries + 1):
            if self._stop.is_set() and attempt:
                break
            if self.sender.notify(title=title, body=body, attach=attach):
                self.sent += 1
                return
            if attempt < s.retries:
                self._stop.wait(2**attempt)
        self.failed += 1
        log.error("notify: could not deliver the alert for %s after %d tries", alert.who, s.retries + 1)

    def close(self) -> None:
        """Sends what is queued for up to a few seconds, then leaves the rest."""
        self._queue.put(None)
        self._thread.join(5)
        self._stop.set()
