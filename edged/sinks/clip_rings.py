"""The pre-roll rings of clips and the packet timeline: pure logic, no threads, no files. The
rings keep the last seconds as compressed data, bounded by time and bytes; the timeline
gives packets times that never go backwards, whatever the source does to its own."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from edged.io.video import Packet


class PacketRing:
    """Encoded packets of the last `keep_s` seconds, reaching back to a keyframe, at most
    `max_bytes` (past that the oldest GOP goes, and a clip's pre-roll may come out shorter)."""

    def __init__(self, keep_s: float, max_bytes: int) -> None:
        self.keep_s = keep_s
        self.max_bytes = max_bytes
        self.items: deque[Packet] = deque()
        self.bytes = 0

    def add(self, item: Packet) -> None:
        self.items.append(item)
        self.bytes += item.size
        self._trim(item.ts)

    def _trim(self, now: float) -> None:
        # Drop whole GOPs while the next keyframe is still old enough to start a pre-roll from.
        while True:
            keys = [i for i, p in enumerate(self.items) if p.keyframe]
            if len(keys) < 2:
                break
            second = keys[1]
            if self.items[second].ts <= now - self.keep_s or self.bytes > self.max_bytes:
                for _ in range(second):
                    self.bytes -= self.items.popleft().size
            else:
                break
        while self.bytes > self.max_bytes and len(self.items) > 1:  # one GOP larger than the cap
            self.bytes -= self.items.popleft().size
        while self.items and not self.items[0].keyframe:  # a clip must start on a keyframe
            self.bytes -= self.items.popleft().size

    def since(self, ts: float) -> list[Packet]:
        """From the newest keyframe at or before `ts` (or the oldest kept) to now, all of one
        stream format: packets from before the stream's format changed cannot share a clip."""
        items = list(self.items)
        newest_key = items[-1].template.key if items and items[-1].template is not None else None
        first = 0
        for i in range(len(items) - 1, -1, -1):
            template = items[i].template
            if template is not None and template.key != newest_key:
                first = i + 1
                break
        start = None
        for i in range(first, len(items)):
            p = items[i]
            if p.keyframe and (start is None or p.ts <= ts):
                start = i
        return [] if start is None else items[start:]


@dataclass
class JpegFrame:
    ts: float  # capture time, monotonic seconds
    jpeg: bytes


class JpegRing:
    """JPEG-compressed frames of the last `keep_s` seconds, at most `max_bytes`."""

    def __init__(self, keep_s: float, max_bytes: int) -> None:
        self.keep_s = keep_s
        self.max_bytes = max_bytes
        self.items: deque[JpegFrame] = deque()
        self.bytes = 0

    def add(self, item: JpegFrame) -> None:
        self.items.append(item)
        self.bytes += len(item.jpeg)
        while self.items and (self.items[0].ts < item.ts - self.keep_s or self.bytes > self.max_bytes):
            self.bytes -= len(self.items.popleft().jpeg)

    def since(self, ts: float) -> list[JpegFrame]:
        return [f for f in self.items if f.ts >= ts]


class PacketTimeline:
    """Rebases packets' times (dts, pts, in their stream's time base) onto one timeline that
    only moves forward. A looped file, a camera that reconnects or restarts its clock starts
    its times again: that begins a segment, placed one frame after everything before it."""

    def __init__(self) -> None:
        self.segment: object = None
        self.offset = 0
        self.last_raw_dts: int | None = None
        self.last_dts: int | None = None
        self.max_pts: int | None = None

    def place(self, dts: int | None, pts: int | None, segment: object,
              frame_ticks: int) -> tuple[int | None, int | None]:
        """The rebased (dts, pts) of a packet of `segment` (any value that changes when the
        source reopens or seeks); `frame_ticks` is one frame's duration in the time base."""
        dts = pts if dts is None else dts
        pts = dts if pts is None else pts
        if dts is None or pts is None:
            return None, None
        restart = segment != self.segment or (self.last_raw_dts is not None and dts <= self.last_raw_dts)
        if restart and self.last_dts is not None and self.max_pts is not None:
            self.offset = max(self.last_dts + frame_ticks - dts, self.max_pts + frame_ticks - pts)
        self.segment = segment
        self.last_raw_dts = dts
        placed_dts, placed_pts = dts + self.offset, pts + self.offset
        self.last_dts = placed_dts
        self.max_pts = placed_pts if self.max_pts is None else max(self.max_pts, placed_pts)
        return placed_dts, placed_pts
