"""Clips that start before the moment that mattered. A pre-roll ring keeps the last seconds as
compressed data, bounded by design: encoded H.264 packets where the source is H.264 (remuxed
into the clip as they are, from a keyframe at or before the pre-roll), JPEG frames otherwise
(encoded by libx264 while the clip records). An alert starts a clip `pre_roll_s` before it; an
alert while recording extends it to `post_roll_s` after the newest alert, up to
`max_length_s`. Clips are written to a temporary name and renamed when complete."""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged.video import H264Writer, Packet, remux

log = logging.getLogger("edged.clips")


@dataclass(frozen=True)
class ClipSettings:
    pre_roll_s: float = 5.0
    post_roll_s: float = 10.0
    max_length_s: float = 60.0
    max_buffer_mb: float = 30.0  # the pre-roll ring's memory cap
    jpeg_quality: int = 80
    keep_days: float = 7.0
    keep_mb: float = 2000.0
    max_width: int = 1280  # frame-path clips are encoded at most this wide, while they record
    min_free_mb: float = 200.0  # below this much free disk, the oldest clips go, waiting uploads first
    annotate: bool = False  # boxes and names drawn into clips (the frame path, re-encoding)
    blur_unknowns: bool = False  # faces of people not enrolled blurred in clips (the frame path too)


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
        """From the newest keyframe at or before `ts` (or the oldest kept) to now."""
        start = 0
        for i, p in enumerate(self.items):
            if p.keyframe and p.ts <= ts:
                start = i
        return list(self.items)[start:]


@dataclass
class JpegFrame:
    ts: float
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


@dataclass
class Recording:
    name: str
    start_ts: float  # monotonic
    end_ts: float
    limit_ts: float
    alerts: list[str] = field(default_factory=list)
    packets: list[Packet] = field(default_factory=list)
    frames: list[JpegFrame] = field(default_factory=list)
    max_pts: int = -(2**62)  # highest presentation time among the packets so far
    encoder: FrameEncoder | None = None  # the frame path's encoder, running while it records


def retain(folder: Path, keep_days: float, keep_mb: float, min_free_mb: float = 0.0,
           waiting: list[str] | None = None) -> list[Path]:
    """Removes clips older than `keep_days`, then the oldest while the total passes `keep_mb`.
    When the disk has less than `min_free_mb` free, clips still waiting for upload (`waiting`,
    oldest first) go first, then the oldest others, and it says so."""
    clips = sorted(folder.glob("*.mp4"), key=lambda p: p.stat().st_mtime)
    removed = []
    cutoff = time.time() - keep_days * 86400
    total = sum(p.stat().st_size for p in clips)
    for path in clips:
        if path.stat().st_mtime < cutoff or total > keep_mb * 2**20:
            total -= path.stat().st_size
            path.unlink(missing_ok=True)
            removed.append(path)
    if removed:
        log.info("removed %d old clip(s) from %s", len(removed), folder)
    if min_free_mb:
        order = [folder / n for n in waiting or []] + [p for p in clips if p.name not in set(waiting or [])]
        for path in order:
            if shutil.disk_usage(folder).free >= min_free_mb * 2**20:
                break
            if path.exists():
                log.warning("disk nearly full (%s): removed clip %s%s", folder, path.name,
                            " before it was uploaded" if waiting and path.name in waiting else "")
                path.unlink()
                removed.append(path)
    return removed


class FrameEncoder:
    """Encodes a frame-path clip while it records, on its own thread, from the JPEG frames the
    ring already made; when the post-roll ends only the last frames are left to encode."""

    def __init__(self, path: Path, fps: float, max_width: int, finished: list[Path],
                 keep: Callable[[], object]) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".part")
        self._queue: queue.Queue[JpegFrame | None] = queue.Queue()
        self._writer = H264Writer(self.tmp, fps, max_width=max_width)
        self._finished = finished
        self._keep = keep
        self.ended_at = 0.0
        self.thread = threading.Thread(target=self._run, name="edged-clip-encoder", daemon=True)
        self.thread.start()

    def add(self, frame: JpegFrame) -> None:
        self._queue.put(frame)

    def finish(self) -> None:
        self.ended_at = time.monotonic()
        self._queue.put(None)

    def _run(self) -> None:
        try:
            while (frame := self._queue.get()) is not None:
                image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
                if image is not None:
                    self._writer.write(image)
            count = self._writer.close()
            self.tmp.replace(self.path)
            self._finished.append(self.path)
            log.info("clip %s: %d frames, ready %.2f s after its post-roll", self.path.name, count,
                     time.monotonic() - self.ended_at)
            self._keep()
        except Exception:  # a failed clip must not stop the next one
            log.exception("writing clip %s failed", self.path.name)
            self.tmp.unlink(missing_ok=True)


class FinishedClips(list[Path]):
    """The clips written so far; each one appended is also handed to `on_clip` (the uploader)."""

    def __init__(self, recorder: ClipRecorder) -> None:
        super().__init__()
        self.recorder = recorder

    def append(self, path: Path) -> None:
        super().append(path)
        if self.recorder.on_clip is not None:
            self.recorder.on_clip(path)


class ClipRecorder:
    """Fed every packet (H.264 sources) or frame (others) by the source thread; told about
    alerts by the pipeline; hands finished recordings to a writer thread."""

    def __init__(self, settings: ClipSettings, folder: Path, camera: str, time_offset: float) -> None:
        self.settings = settings
        self.folder = folder
        self.camera = camera
        self.time_offset = time_offset  # wall = monotonic + offset
        keep = settings.pre_roll_s + 1.0
        cap = int(settings.max_buffer_mb * 2**20)
        self.packets = PacketRing(keep, cap)
        self.jpegs = JpegRing(keep, cap)
        self.template: Any = None  # the source's stream, for remuxing its packets
        self.fps = 25.0
        self.recording: Recording | None = None
        self.finished = FinishedClips(self)
        self.on_clip: Callable[[Path], None] | None = None  # told of every finished clip
        # Draws the newest boxes (and blurs) onto a frame, for annotated or privacy clips.
        self.overlay: Callable[[np.ndarray], np.ndarray] | None = None
        self.waiting_uploads: Callable[[], list[str]] = list  # clips not yet uploaded, oldest first
        self._lock = threading.Lock()
        self._writes: queue.Queue[Recording | None] = queue.Queue()
        folder.mkdir(parents=True, exist_ok=True)
        self._writer = threading.Thread(target=self._write_loop, name="edged-clips", daemon=True)
        self._writer.start()

    # -- from the source thread ---------------------------------------------------------------
    @property
    def wants_packets(self) -> bool:
        """H.264 packets can go into clips as they are, unless clips must show boxes or blur."""
        return not (self.settings.annotate or self.settings.blur_unknowns)

    def add_packet(self, item: Packet, template: Any, fps: float) -> None:
        """An H.264 packet (kept as it is); other codecs' sources call add_frame instead."""
        with self._lock:
            self.template, self.fps = template, fps
            self.packets.add(item)
            recording = self.recording
            if recording is None:
                return
            pts = item.packet.pts if item.packet is not None and item.packet.pts is not None else None
            # With B-frames, a frame's packet can come after a later frame's: past the end, cut
            # only before a packet that shows later than all before it, so no frame is left half.
            if item.ts >= recording.end_ts and (pts is None or pts > recording.max_pts):
                self._writes.put(recording)
                self.recording = None
                return
            recording.packets.append(item)
            if pts is not None:
                recording.max_pts = max(recording.max_pts, pts)

    def add_frame(self, ts: float, image: np.ndarray, fps: float) -> None:
        """A frame of a source that is not H.264: kept as a JPEG at the clips' size."""
        if self.overlay is not None:
            image = self.overlay(image)
        width = self.settings.max_width
        if width and image.shape[1] > width:
            height = round(image.shape[0] * width / image.shape[1])
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.settings.jpeg_quality])
        if not ok:
            return
        frame = JpegFrame(ts, data.tobytes())
        with self._lock:
            self.fps = fps
            self.jpegs.add(frame)
            recording = self.recording
            if recording is None:
                return
            if recording.encoder is None:
                recording.encoder = self._encoder(recording)
            recording.encoder.add(frame)
            if ts >= recording.end_ts:
                recording.encoder.finish()
                self.recording = None

    # -- from the pipeline --------------------------------------------------------------------
    def alert(self, alert_id: str, ts: float) -> str:
        """Starts or extends the clip for an alert at monotonic `ts`; returns the clip's file name."""
        s = self.settings
        with self._lock:
            if self.recording is None:
                start = ts - s.pre_roll_s
                wall = time.strftime("%Y%m%d-%H%M%S", time.localtime(start + self.time_offset))
                name = f"{self.camera}-{wall}-{int((start % 1) * 1000):03d}.mp4"
                self.recording = Recording(name, start, ts + s.post_roll_s, start + s.max_length_s)
                self.recording.packets = self.packets.since(start)
                shown = [p.packet.pts for p in self.recording.packets if p.packet is not None]
                self.recording.max_pts = max((t for t in shown if t is not None), default=self.recording.max_pts)
                self.recording.frames = self.jpegs.since(start)
                if self.recording.frames:  # a frame-path source: start encoding the pre-roll now
                    self.recording.encoder = self._encoder(self.recording)
            else:
                self.recording.end_ts = min(max(self.recording.end_ts, ts + s.post_roll_s), self.recording.limit_ts)
            self.recording.alerts.append(alert_id)
            return self.recording.name

    def _encoder(self, recording: Recording) -> FrameEncoder:
        encoder = FrameEncoder(self.folder / recording.name, self.fps, self.settings.max_width, self.finished,
                               self.retain)
        for frame in recording.frames:
            encoder.add(frame)
        recording.frames = []
        return encoder

    # -- the writer thread --------------------------------------------------------------------
    def _write_loop(self) -> None:
        """Remuxes finished packet-path recordings (milliseconds each)."""
        while (recording := self._writes.get()) is not None:
            started = time.monotonic()
            path = self.folder / recording.name
            tmp = path.with_name(path.name + ".part")
            try:
                count = remux(recording.packets, self.template, tmp)
                tmp.replace(path)
                self.finished.append(path)
                log.info("clip %s: %d frames, ready %.2f s after its post-roll", path.name, count,
                         time.monotonic() - started)
                self.retain()
            except Exception:  # a failed clip must not stop the next one
                log.exception("writing clip %s failed", path.name)
                tmp.unlink(missing_ok=True)

    def retain(self) -> list[Path]:
        s = self.settings
        return retain(self.folder, s.keep_days, s.keep_mb, s.min_free_mb, self.waiting_uploads())

    def close(self) -> None:
        """Finishes the clip being recorded with what it has, and waits for the writers."""
        with self._lock:
            recording, self.recording = self.recording, None
        encoder = None
        if recording is not None:
            if recording.encoder is not None:
                encoder = recording.encoder
                encoder.finish()
            elif recording.packets:
                self._writes.put(recording)
        self._writes.put(None)
        self._writer.join(60)
        if encoder is not None:
            encoder.thread.join(120)
        for thread in list(self._encoders_running()):
            thread.join(120)

    def _encoders_running(self) -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "edged-clip-encoder" and t.is_alive()]
