"""The on-disk log of MQTT messages that must reach the broker (events and alerts): every
message is written here (and flushed to disk) before it is sent, and leaves only when the
broker has acknowledged it, so a frozen broker, a lost connection or a kill -9 loses nothing;
after a restart the log is sent again from its oldest message (a message may then arrive
twice: QoS 1 is at least once). Bounded: past `limit` the oldest go first, and it says so.

The file is JSON lines: `{"seq": N, "topic", "payload", "binary", "qos", "retain"}` for a
message, `{"ack": N}` when the broker acknowledged N; it is rewritten without the delivered
ones now and then."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections import OrderedDict
from pathlib import Path

from edged import durable
from edged.sinks.mqtt_messages import Message

log = logging.getLogger("edged.mqtt")


def _encode(seq: int, message: Message) -> str:
    topic, payload, qos, retain = message
    binary = isinstance(payload, bytes)
    text = base64.b64encode(payload).decode() if isinstance(payload, bytes) else payload
    return json.dumps({"seq": seq, "topic": topic, "payload": text, "binary": binary, "qos": qos, "retain": retain})


def _decode(item: dict[str, object]) -> Message:
    payload = base64.b64decode(str(item["payload"])) if item["binary"] else str(item["payload"])
    return str(item["topic"]), payload, int(str(item["qos"])), bool(item["retain"])


class Outbox:
    """`append` before sending; `next_unsent` and `mark_sent` for the sender; `ack` when the
    broker confirms. After a restart every waiting message counts as not yet sent."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.limit = limit
        self.dropped = 0
        self._waiting: OrderedDict[int, Message] = OrderedDict()  # seq -> message, oldest first
        self._sent: set[int] = set()  # handed to the client, not yet acknowledged
        self._next_seq = 1
        self._acks_in_file = 0
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        acked: set[int] = set()
        # Line by line from bytes: one damaged line (not UTF-8, cut short) costs that line only.
        for number, line in enumerate(self.path.read_bytes().splitlines(), 1):
            try:
                item = json.loads(line.decode("utf-8"))
                if "ack" in item:
                    acked.add(int(item["ack"]))
                else:
                    self._waiting[int(item["seq"])] = _decode(item)
            except (ValueError, KeyError, TypeError, RecursionError):
                log.warning("%s:%d: unreadable outbox line skipped (a write cut short, or not UTF-8)", self.path,
                            number)
        for seq in acked:
            self._waiting.pop(seq, None)
        self._next_seq = max(self._waiting, default=max(acked, default=0)) + 1
        if self._waiting:
            log.info("%d undelivered MQTT messages from before the restart are waiting", len(self._waiting))
        self._rewrite()

    def __len__(self) -> int:
        return len(self._waiting)

    def append(self, message: Message) -> int:
        """Writes the message durably; returns its sequence number."""
        seq = self._next_seq
        self._next_seq += 1
        self._waiting[seq] = message
        if len(self._waiting) > self.limit:
            oldest, _ = self._waiting.popitem(last=False)
            self._sent.discard(oldest)
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.warning("MQTT outbox full (%d): dropped the oldest message (%d so far)", self.limit, self.dropped)
            self._rewrite()
            return seq
        self._write_line(_encode(seq, message), sync=True)
        return seq

    def next_unsent(self) -> tuple[int, Message] | None:
        """The oldest message not yet handed to the client."""
        for seq, message in self._waiting.items():
            if seq not in self._sent:
                return seq, message
        return None

    def mark_sent(self, seq: int) -> None:
        self._sent.add(seq)

    def ack(self, seq: int) -> None:
        """The broker has the message: it leaves the log (an ack line; the file is compacted later)."""
        self._sent.discard(seq)
        if self._waiting.pop(seq, None) is None:
            return
        if not self._waiting:
            self._rewrite()  # nothing waits: an empty file
            return
        self._write_line(json.dumps({"ack": seq}), sync=False)  # lost on a crash: a duplicate, not a loss
        self._acks_in_file += 1
        if self._acks_in_file > 2 * len(self._waiting) + 100:
            self._rewrite()

    def _write_line(self, line: str, sync: bool) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line + "\n")
            if sync:
                f.flush()
                os.fsync(f.fileno())

    def _rewrite(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        durable.write_text(self.path, "".join(_encode(s, m) + "\n" for s, m in self._waiting.items()))
        self._acks_in_file = 0
