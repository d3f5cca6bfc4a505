"""A bounded, ordered, on-disk queue of MQTT messages waiting for the broker (JSON lines).
It survives a restart of the daemon; when full, the oldest messages go first, and it says so."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections import deque
from pathlib import Path

from edged import durable
from edged.sinks.mqtt_messages import Message

log = logging.getLogger("edged.mqtt")


def _encode(message: Message) -> str:
    topic, payload, qos, retain = message
    binary = isinstance(payload, bytes)
    text = base64.b64encode(payload).decode() if isinstance(payload, bytes) else payload
    return json.dumps({"topic": topic, "payload": text, "binary": binary, "qos": qos, "retain": retain})


def _decode(line: str) -> Message:
    item = json.loads(line)
    payload = base64.b64decode(item["payload"]) if item["binary"] else item["payload"]
    return item["topic"], payload, int(item["qos"]), bool(item["retain"])


class Outbox:
    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.dropped = 0
        self._items: deque[Message] = deque()
        if path.exists():
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    self._items.append(_decode(line))
                except (ValueError, KeyError):
                    log.warning("%s:%d: unreadable outbox line skipped (a write cut short)", path, number)
            if self._items:
                log.info("%d undelivered MQTT messages from before the restart are waiting", len(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def append(self, message: Message) -> None:
        self._items.append(message)
        if len(self._items) > self.limit:
            self._items.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("MQTT outbox full (%d): dropped the oldest message (%d so far)", self.limit, self.dropped)
            self._rewrite()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(_encode(message) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def take_all(self) -> list[Message]:
        items = list(self._items)
        self._items.clear()
        self._rewrite()
        return items

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        durable.write_text(self.path, "".join(_encode(m) + "\n" for m in self._items))
