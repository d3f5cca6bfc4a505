"""Notifications through Apprise (the one apprise import): a message from a template with
${person}, ${camera}, ${time}, ${similarity}, ${snapshot_url} and ${clip_url} (links that open
from a phone: absolute, signed for that file where the box needs it), the face or the framed
picture attached where the service takes attachments, a timeout per notification, and
retries with back-off for the services that failed only (one Apprise object per URL, so a
working service never gets a message twice). Optionally a second message when the clip is
ready. Alerts wait in a bounded queue served by a thread of its own, so a slow or dead
service holds up neither the pipeline nor the other sinks."""

from __future__ import annotations

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


class NotifySink:
    def __init__(self, settings: NotifyConfig, media: Path, base_url: str, queue_size: int = 100,
                 clip_link: Callable[[str], str] | None = None, link_key: bytes = b"",
                 link_expiry_s: float = LINK_EXPIRY_S) -> None:
        import apprise

        self.apprise_module = apprise
        self.settings = settings
        self.media = media
        self.base_url = base_url
        self.clip_link = clip_link
        self.link_key = link_key  # signs each link for its one file (links.py)
        self.link_expiry_s = link_expiry_s
        self.targets: list[tuple[str, object]] = []  # (URL's scheme and host, for logs; its own Apprise)
        for url in settings.urls:
            target = apprise.Apprise()
            if target.add(with_timeouts(url, settings.timeout_s)):
                self.targets.append((url.split("?", 1)[0].split("@")[-1][:40], target))
            else:
                log.error("notify: Apprise does not understand the URL %s...; it is skipped", url[:16])
        self.sent = 0
        self.failed = 0
        self._queue: queue.Queue[Alert | ClipReady | None] = queue.Queue(maxsize=queue_size)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edged-notify", daemon=True)
        self._thread.start()

    def handle(self, item: SinkItem) -> None:
        if isinstance(item, Alert):
            self._enqueue(item)

    def clip_ready(self, path: Path, camera: str) -> None:
        """Called when a clip is finished (from the clip writer's thread)."""
        if self.settings.clip_ready:
            self._enqueue(ClipReady(path.name, camera))

    def _enqueue(self, item: Alert | ClipReady) -> None:
        if not self.targets:
            return
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            log.warning("notify: %d notifications waiting; dropping one (%s)", self._queue.qsize(),
                        item.who if isinstance(item, Alert) else item.name)

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if isinstance(item, Alert):
                self._send_alert(item)
            else:
                self._send_clip_ready(item)

    def _send_alert(self, alert: Alert) -> None:
        s = self.settings
        attach = None
        picture = alert.frame if s.attach == "frame" else alert.snapshot
        if s.attach_snapshot and picture:
            path = self.media / Path(picture).name
            if path.is_file():
                attach = self.apprise_module.AppriseAttachment(str(path))
        title = render(s.title, alert, self.base_url, self.clip_link, self.link_key, self.link_expiry_s)
        body = render(s.body, alert, self.base_url, self.clip_link, self.link_key, self.link_expiry_s)
        self._deliver(title, body, attach, f"the alert for {alert.who}")

    def _send_clip_ready(self, clip: ClipReady) -> None:
        path = f"clips/{clip.name}"
        link = (self.clip_link(clip.name) if self.clip_link
                else box_link(self.base_url, path, self.link_key, self.link_expiry_s))
        self._deliver(f"edged: clip ready at {clip.camera}", f"The clip {clip.name} is ready: {link}", None,
                      f"the clip-ready message for {clip.name}")

    def _deliver(self, title: str, body: str, attach: object, what: str) -> None:
        """Sends to every target; tries again, with back-off, only those that failed."""
        s = self.settings
        waiting = list(self.targets)
        for attempt in range(s.retries + 1):
            if self._stop.is_set() and attempt:
                break
            waiting = [(name, target) for name, target in waiting
                       if not target.notify(title=title, body=body, attach=attach)]  # type: ignore[attr-defined]
            if not waiting:
                self.sent += 1
                return
            if attempt < s.retries:
                self._stop.wait(2**attempt)
        self.failed += 1
        log.error("notify: could not deliver %s to %s after %d tries", what, ", ".join(n for n, _ in waiting),
                  s.retries + 1)

    def close(self) -> None:
        """Sends what is queued for up to a few seconds, then leaves the rest."""
        self._queue.put(None)
        self._thread.join(5)
        self._stop.set()
