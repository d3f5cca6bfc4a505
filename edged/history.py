"""Alert history on disk: every alert the box raised (its camera, person, time, and the box's
own paths to its face, frame and clip), kept across restarts, bounded by count and by age, so
the pages and `edged clips list` can say who each alert and clip was about long after the
live event list has moved on. JSON lines, appended and flushed per alert; rewritten without
the oldest when it grows past its bound."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

from edged import durable
from edged.events import Alert
from edged.pipeline import SinkItem

log = logging.getLogger("edged.history")
HISTORY_NAME = "alerts.jsonl"
KEPT_FIELDS = ("id", "camera", "track_id", "time", "person", "similarity", "reason", "snapshot", "frame", "clip")


class AlertHistory:
    """`add(alert)` from every camera's sink thread; `recent()` and `for_clip()` for readers."""

    def __init__(self, path: Path, max_count: int = 1000, max_age_days: float = 30.0, writer: bool = True) -> None:
        """`writer`: the daemon's (it trims the file); a reader (`edged clips list`) never writes."""
        self.path = path
        self.max_count = max_count
        self.max_age_s = max_age_days * 86400
        self._lock = threading.Lock()
        self._items: list[dict[str, object]] = self._load()
        self._trim(time.time(), rewrite=writer)

    def _load(self) -> list[dict[str, object]]:
        items: list[dict[str, object]] = []
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            return items
        except OSError as exc:
            log.warning("%s: cannot read the alert history (%s); starting a new one", self.path, exc.strerror)
            return items
        for line in lines:
            try:
                item = json.loads(line.decode("utf-8"))
            except (ValueError, RecursionError):
                continue  # a line cut short by a power cut
            if isinstance(item, dict) and isinstance(item.get("time"), (int, float)):
                items.append({k: item.get(k) for k in KEPT_FIELDS})
        return items

    def add(self, alert: Alert) -> None:
        record = {k: v for k, v in alert.to_json().items() if k in KEPT_FIELDS}
        line = json.dumps(record)
        with self._lock:
            self._items.append(record)
            try:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(line + "\n")
            except OSError as exc:  # a full disk must not stop alerts
                log.warning("%s: cannot add to the alert history (%s)", self.path, exc.strerror)
            if len(self._items) > self.max_count * 1.2:  # rewrite now and then, not on every alert
                self._trim(time.time(), rewrite=True)

    def _trim(self, now: float, rewrite: bool) -> None:
        kept = [i for i in self._items if now - float(i["time"]) <= self.max_age_s][-self.max_count:]  # type: ignore[arg-type]
        changed = len(kept) != len(self._items)
        self._items = kept
        if rewrite and changed:
            try:
                durable.write_text(self.path, "".join(json.dumps(i) + "\n" for i in kept))
            except OSError as exc:
                log.warning("%s: cannot rewrite the alert history (%s)", self.path, exc.strerror)

    def recent(self, limit: int = 100, camera: str | None = None) -> list[dict[str, object]]:
        """The newest alerts first, of one camera or of all."""
        with self._lock:
            items = [i for i in self._items if camera is None or i.get("camera") == camera]
        return items[::-1][:limit]

    def for_clip(self, name: str) -> list[dict[str, object]]:
        """The alerts a clip (its file name) was recorded for, oldest first."""
        return self.by_clip().get(name, [])

    def by_clip(self) -> dict[str, list[dict[str, object]]]:
        """Every clip's alerts, oldest first, by the clip's file name: one pass for a whole list."""
        clips: dict[str, list[dict[str, object]]] = {}
        with self._lock:
            for item in self._items:
                clip = item.get("clip")
                if isinstance(clip, str) and clip.startswith("clips/"):
                    clips.setdefault(clip[len("clips/"):], []).append(item)
        return clips


class HistorySink:
    """A sink: every alert into the shared history (after the media store, before MQTT)."""

    def __init__(self, history: AlertHistory) -> None:
        self.history = history

    def handle(self, item: SinkItem) -> None:
        if isinstance(item, Alert):
            self.history.add(item)

    def close(self) -> None:
        pass
