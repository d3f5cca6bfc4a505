"""Clips that start before the moment that mattered. A pre-roll ring keeps the last seconds as
compressed data, bounded by design: encoded H.264 packets where the source is H.264 (muxed
into the clip as they are, from a keyframe at or before the pre-roll), JPEG frames otherwise
(compressed off the source thread, encoded by libx264 while the clip records). An alert
starts a clip `pre_roll_s` before it; an alert while recording extends it to `post_roll_s`
after the newest alert, up to `max_length_s`. Every time here is the daemon's monotonic
capture time, never the stream's own, which a looped file or a reconnecting camera restarts.
A clip ends when its post-roll has passed by the clock too, so a camera that stops sending
cannot hold it open. A clip is written while it records, to a temporary name renamed when
complete (what a power cut leaves of it is recovered at the next start); stopping or reloading
the daemon ends the clip being recorded with what it has."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged.io.video import Packet, StreamTemplate
from edged.sinks.clip_rings import JpegFrame, JpegRing, PacketRing, PacketTimeline
from edged.sinks.clip_writers import FrameEncoder, PacketClipWriter, recover_unfinished, retain

log = logging.getLogger("edged.clips")

__all__ = ["ClipRecorder", "ClipSettings", "JpegFrame", "JpegRing", "PacketRing", "retain"]
# A clip's end by the clock: its post-roll passed this long ago and nothing arrived from the
# camera for this long (a busy box delivers late, but delivers: then the frames end the clip).
CLOCK_GRACE_S = 2.0

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
    frame_queue: int = 8  # frames waiting for JPEG compression; past that a frame is dropped (and counted)


@dataclass
class Recording:
    name: str
    start_ts: float  # monotonic capture time
    end_ts: float
    limit_ts: float
    alerts: list[str] = field(default_factory=list)
    max_pts: int | None = None  # the latest presentation time among its packets (rebased)
    stream_key: object = None  # the stream format its packets have (a clip cannot change format)
    encoder: FrameEncoder | None = None  # the frame path's encoder, running while it records


class ClipRecorder:
    """Fed every packet (H.264 sources) or frame (others) by the source thread; told about
    alerts by the pipeline; clips are written by writer threads while they record."""

    def __init__(self, settings: ClipSettings, folder: Path, camera: str, time_offset: float) -> None:
        self.settings = settings
        self.folder = folder
        self.camera = camera
        self.time_offset = time_offset  # wall = monotonic + offset
        keep = settings.pre_roll_s + 1.0
        cap = int(settings.max_buffer_mb * 2**20)
        self.packets = PacketRing(keep, cap)
        self.jpegs = JpegRing(keep, cap)
        self.timeline = PacketTimeline()
        self._timeline_key: object = None
        self.fps = 25.0
        self.recording: Recording | None = None
        self.finished: list[Path] = []
        self.on_clip: Callable[[Path], None] | None = None  # told of every finished clip
        # Draws the newest boxes (and blurs) onto a frame, for annotated or privacy clips.
        self.overlay: Callable[[np.ndarray], np.ndarray] | None = None
        self.waiting_uploads: Callable[[], list[str]] = list  # clips not yet uploaded, oldest first
        self.dropped_frames = 0  # frames the JPEG compression could not keep up with
        self._template: StreamTemplate | None = None
        self._source_stream: Any = None
        self._lock = threading.Lock()
        folder.mkdir(parents=True, exist_ok=True)
        recover_unfinished(folder)
        self._encoders: list[FrameEncoder] = []
        self._packet_writer = PacketClipWriter(folder, self._done)
        self._frames: queue.Queue[tuple[float, np.ndarray, float] | None] = queue.Queue(settings.frame_queue)
        self._compressor: threading.Thread | None = None
        self._closed = threading.Event()
        self._last_arrival = time.monotonic()  # the newest packet or frame from the source
        self._clock = threading.Thread(target=self._clock_loop, name="edged-clip-clock", daemon=True)
        self._clock.start()

    # -- from the source thread ---------------------------------------------------------------
    @property
    def wants_packets(self) -> bool:
        """H.264 packets can go into clips as they are, unless clips must show boxes or blur."""
        return not (self.settings.annotate or self.settings.blur_unknowns)

    def add_packet(self, item: Packet, stream: Any, fps: float, segment: object = None) -> None:
        """An H.264 packet of `stream` (kept as it is); `segment` changes whenever the source
        reopens or seeks. Other codecs' sources call add_frame instead."""
        if stream is not self._source_stream:  # a new input: copy its parameters while it is open
            template = StreamTemplate(stream)
            if self._template is None or template.key != self._template.key:
                self._template = template
            self._source_stream = stream
        current = self._template
        assert current is not None
        self._last_arrival = time.monotonic()
        ticks = max(1, round(1 / (fps * current.time_base))) if fps > 0 else 1
        packet = item.packet
        raw_dts = packet.dts if packet is not None else None
        raw_pts = packet.pts if packet is not None else None
        with self._lock:
            if self._timeline_key != current.key:  # another format: its times start afresh
                self.timeline, self._timeline_key = PacketTimeline(), current.key
            item.dts, item.pts = self.timeline.place(raw_dts, raw_pts, (segment, id(stream)), ticks)
            item.template = current
            self.fps = fps
            self.packets.add(item)
            recording = self.recording
            if recording is None or recording.encoder is not None:
                return
            if recording.stream_key is not None and recording.stream_key != current.key:
                log.warning("clip %s ends early: the camera's stream changed format", recording.name)
                self._packet_writer.finish(recording.name, cut=True)
                self.recording = None
                return
            recording.stream_key = current.key
            if self._packet_recording_ends(recording, item):
                self._packet_writer.finish(recording.name)
                self.recording = None
                return
            self._packet_writer.add(recording.name, item)
            if item.pts is not None:
                recording.max_pts = item.pts if recording.max_pts is None else max(recording.max_pts, item.pts)

    def _packet_recording_ends(self, recording: Recording, item: Packet) -> bool:
        if item.ts >= recording.limit_ts + 1.0:  # whatever the stream's times do, a clip ends
            return True
        if item.ts < recording.end_ts:
            return False
        # With B-frames, a frame's packet can come after a later frame's: past the end, cut
        # only before a packet that shows later than all before it, so no frame is left half.
        return item.pts is None or recording.max_pts is None or item.pts > recording.max_pts

    def add_frame(self, ts: float, image: np.ndarray, fps: float) -> None:
        """A frame of a source whose packets cannot go into clips as they are, captured at
        monotonic `ts`: queued for compression on the recorder's own thread, so the source
        keeps its pace; when compression falls behind, the frame is dropped and counted."""
        self._last_arrival = time.monotonic()
        if self._compressor is None:
            self._compressor = threading.Thread(target=self._compress_loop, name="edged-clip-frames", daemon=True)
            self._compressor.start()
        try:
            self._frames.put_nowait((ts, image, fps))
        except queue.Full:
            self.dropped_frames += 1

    def _compress_loop(self) -> None:
        while (job := self._frames.get()) is not None:
            try:
                self.keep_frame(*job)
            except Exception:  # one bad frame must not end clips
                log.exception("keeping a frame for clips failed")

    def keep_frame(self, ts: float, image: np.ndarray, fps: float) -> None:
        """Compresses one frame into the pre-roll ring (and the clip being recorded)."""
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
                recording.encoder = self._encoder(recording, [])
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
                recording = self.recording = Recording(name, start, ts + s.post_roll_s, start + s.max_length_s)
                frames = self.jpegs.since(start)
                if frames:  # a frame-path source: start encoding the pre-roll now
                    recording.encoder = self._encoder(recording, frames)
                else:
                    recording.stream_key = self._timeline_key
                    for item in self.packets.since(start):
                        self._packet_writer.add(name, item)
                        if item.pts is not None:
                            recording.max_pts = item.pts if recording.max_pts is None else max(recording.max_pts,
                                                                                                item.pts)
            else:
                self.recording.end_ts = min(max(self.recording.end_ts, ts + s.post_roll_s), self.recording.limit_ts)
            self.recording.alerts.append(alert_id)
            return self.recording.name

    def _clock_loop(self) -> None:
        while not self._closed.wait(0.5):
            self.end_overdue(time.monotonic())

    def end_overdue(self, now: float) -> bool:
        """Ends the clip being recorded when its post-roll passed by the clock `now`
        (monotonic) with no frame to end it, as when the camera is down: it keeps what it has."""
        with self._lock:
            recording = self.recording
            if recording is None or now < recording.end_ts + CLOCK_GRACE_S or now - self._last_arrival < CLOCK_GRACE_S:
                return False
            self.recording = None
        if recording.encoder is not None:
            recording.encoder.finish()
        else:
            self._packet_writer.finish(recording.name, cut=True)
        log.warning("clip %s ended by the clock: no frames came from camera %s after its post-roll", recording.name,
                    self.camera)
        return True

    def seconds_left(self, name: str) -> float | None:
        """Seconds until the clip `name` is finished, while it records (None otherwise)."""
        with self._lock:
            recording = self.recording
            if recording is None or recording.name != name:
                return None
            return max(0.0, recording.end_ts - time.monotonic())

    def _encoder(self, recording: Recording, frames: list[JpegFrame]) -> FrameEncoder:
        encoder = FrameEncoder(self.folder / recording.name, self.fps, self.settings.max_width, self._done)
        self._encoders = [e for e in self._encoders if e.thread.is_alive()] + [encoder]
        for frame in frames:
            encoder.add(frame)
        return encoder

    # -- from the writer threads --------------------------------------------------------------
    def _done(self, path: Path, count: int, ended: float) -> None:
        log.info("clip %s: %d frames, ready %.2f s after its post-roll", path.name, count, time.monotonic() - ended)
        self.finished.append(path)
        if self.on_clip is not None:
            self.on_clip(path)
        self.retain()

    def retain(self) -> list[Path]:
        s = self.settings
        return retain(self.folder, s.keep_days, s.keep_mb, s.min_free_mb, self.waiting_uploads())

    def close(self) -> None:
        """Keeps every frame already captured, finishes the clip being recorded with what it
        has, and waits for the writers. Called after the source has stopped."""
        self._closed.set()
        if self._compressor is not None:
            self._frames.put(None)
            self._compressor.join(60)
        with self._lock:
            recording, self.recording = self.recording, None
        if recording is not None:
            if recording.encoder is not None:
                recording.encoder.finish()
            else:
                self._packet_writer.finish(recording.name, cut=True)
                log.info("clip %s cut short: the daemon is stopping or reloading", recording.name)
        self._packet_writer.close()
        for encoder in self._encoders:
            encoder.thread.join(120)
