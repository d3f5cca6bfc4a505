"""Camera sources: a V4L2 device or index, a video file (looped, paced at its own fps or as
fast as possible), or an RTSP stream. Each is read in its own thread into a one-frame
mailbox, so capture never waits on inference: an unread frame is replaced and counted as
skipped. A camera that disappears or a stream that drops is reopened with back-off, logged
once per outage; frame timestamps come from the monotonic clock."""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edged.io.video import Packet, VideoInput
from edged.redact import mask_url
from edged.types import Frame

log = logging.getLogger("edged.io.source")
# OpenCV's FFmpeg prints every decoder complaint ("co located POCs unavailable", again and
# again) to stderr; a frame that cannot be decoded shows up as a failed read, which is logged.
# Only fatal ones, unless the owner asks for more (AV_LOG_FATAL = 8).
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "8")
STOP_WAIT_S = 1.0  # how long stop() waits for a reader blocked in a read, an open or a stream's teardown


class ClipFeed(Protocol):
    """What a source hands to the clip recorder."""

    def add_packet(self, item: Packet, stream: Any, fps: float, segment: object = None) -> None: ...

    def add_frame(self, ts: float, image: np.ndarray, fps: float) -> None: ...

    @property
    def wants_packets(self) -> bool: ...


@dataclass(frozen=True)
class SourceSettings:
    source: str
    camera: str = "camera"
    loop: bool = False
    realtime: bool = True
    rtsp_transport: str = "tcp"
    open_timeout_s: float = 10.0
    reconnect_max_s: float = 30.0


@dataclass
class SourceStats:
    frames: int = 0  # frames read
    skipped: int = 0  # frames replaced before inference took them
    reconnects: int = 0
    connected: bool = False
    ended: bool = False  # a video file that does not loop has finished


def kind_of(source: str) -> str:
    if source.isdigit() or source.startswith("/dev/video"):
        return "camera"
    if source.lower().startswith(("rtsp://", "rtsps://")):
        return "rtsp"
    return "file"


class FrameSource:
    """`start()`, then `next_frame(timeout)` from the inference thread; `stop()` to finish."""

    def __init__(self, settings: SourceSettings, clips: ClipFeed | None = None, record_only: bool = False) -> None:
        """`clips`, when given, also receives every packet (H.264 files and streams, read with
        PyAV) or frame (cameras), for the pre-roll of clips. `record_only`: the source feeds
        the clips alone (its packets, never decoded) while another one is watched."""
        self.settings = settings
        self.clips = clips
        self.record_only = record_only
        self.size: tuple[int, int] | None = None  # (width, height), once known
        self.kind = kind_of(settings.source)
        self.stats = SourceStats()
        self._frame: Frame | None = None
        self.arrived: threading.Event | None = None  # set on every new frame: the scheduler's wake-up
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._index = 0
        self._segment = 0  # counts the times the source was (re)opened or looped: packet times restart then

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"edged-source-{self.settings.camera}", daemon=True)
        self._thread.start()

    def request_stop(self) -> None:
        """Asks the reading thread to end, without waiting for it (stop() waits)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self, wait_s: float = STOP_WAIT_S) -> None:
        """Ends the reading thread. One blocked opening or reading a stalled stream (up to
        open_timeout_s) is not waited for: it closes its input itself as soon as the call
        returns, so a stalled camera holds up neither a reload nor the other cameras."""
        self.request_stop()
        if self._thread:
            self._thread.join(wait_s)
            if self._thread.is_alive():
                log.info("camera %s: its reader is blocked on %s; it ends by itself when that returns",
                         self.settings.camera, mask_url(self.settings.source))

    def next_frame(self, timeout: float) -> Frame | None:
        """The newest frame not yet taken, or None after `timeout` seconds."""
        with self._cond:
            if self._frame is None:
                self._cond.wait(timeout)
            frame, self._frame = self._frame, None
            self._cond.notify_all()
            return frame

    # -- the reading thread ---------------------------------------------------------------
    def _open(self) -> cv2.VideoCapture | VideoInput | None:
        s = self.settings
        # Files and streams are read with PyAV: its pictures are converted to BGR only when
        # something uses them (OpenCV's capture converts every frame: on an idle 640x360
        # detect stream that was most of the daemon's own cost). OpenCV reads local cameras.
        if self.kind != "camera":
            if self.kind == "file" and not Path(s.source).is_file():
                return None
            try:
                return VideoInput(s.source, s.rtsp_transport, s.open_timeout_s,
                                  live=self.kind == "rtsp" or s.realtime)
            except Exception as exc:  # PyAV raises its own error types for every failure to open
                log.debug("cannot open %s with PyAV: %s", mask_url(s.source), mask_url(str(exc)))
                return None
        timeout_ms = int(s.open_timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        if self.kind == "camera":
            device: int | str = int(s.source) if s.source.isdigit() else s.source
            capture = cv2.VideoCapture(device, cv2.CAP_V4L2)
        elif self.kind == "rtsp":
            # FFmpeg reads its RTSP options from this variable when the capture opens.
            os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = f"rtsp_transport;{s.rtsp_transport}"
            capture = cv2.VideoCapture(s.source, cv2.CAP_FFMPEG, params)
        else:
            if not Path(s.source).is_file():
                return None
            capture = cv2.VideoCapture(s.source, cv2.CAP_FFMPEG, params)
        if not capture.isOpened():
            capture.release()
            return None
        return capture

    def _run(self) -> None:
        s = self.settings
        backoff = 1.0
        outage_logged = False
        while not self._stop.is_set():
            capture = self._open()
            if capture is None:
                if not outage_logged:
                    log.warning("camera %s: cannot open %s; retrying with back-off up to %.0f s",
                                s.camera, mask_url(s.source), s.reconnect_max_s)
                    outage_logged = True
                self.stats.connected = False
                self._stop.wait(backoff)
                backoff = min(backoff * 2, s.reconnect_max_s)
                continue
            if outage_logged:
                log.info("camera %s: %s is back", s.camera, mask_url(s.source))
                self.stats.reconnects += 1
            outage_logged = False
            backoff = 1.0
            self.stats.connected = True
            if isinstance(capture, VideoInput):
                self.size = capture.size
                finished = self._read_av(capture)
                capture.close()
            else:
                finished = self._read(capture)
                capture.release()
            self.stats.connected = False
            if finished:
                self.stats.ended = True
                with self._cond:
                    self._cond.notify_all()
                return
            if not self._stop.is_set():
                log.warning("camera %s: %s stopped sending frames; reconnecting", s.camera, mask_url(s.source))
                outage_logged = True

    def _read(self, capture: cv2.VideoCapture) -> bool:
        """Reads until the stream fails (False) or a file that does not loop ends (True)."""
        s = self.settings
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        paced = self.kind == "file" and s.realtime
        blocking = self.kind == "file" and not s.realtime  # every frame of a file, none dropped
        start = time.monotonic()
        read = 0
        while not self._stop.is_set():
            ok, image = capture.read()
            if not ok:
                if self.kind == "file" and s.loop:
                    capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    start, read = time.monotonic(), 0
                    continue
                return self.kind == "file"
            if paced:
                delay = start + read / fps - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
            read += 1
            self.size = (image.shape[1], image.shape[0])
            now = time.monotonic()
            if self.clips is not None:
                self.clips.add_frame(now, image, fps)
            self._put(Frame(s.camera, self._index, now, image), blocking)
        return False

    def _read_av(self, video: VideoInput) -> bool:
        """As `_read`, with PyAV, handing every packet to the clip recorder too."""
        s = self.settings
        paced = self.kind == "file" and s.realtime
        blocking = self.kind == "file" and not s.realtime
        while not self._stop.is_set():
            start, shown = time.monotonic(), 0
            self._segment += 1
            try:
                # Recording only: H.264 packets are kept as they are; anything else is decoded
                # for the clip's frames, never handed to inference.
                packets_only = self.record_only and video.codec == "h264"
                for packet, images in video.read(decode=not packets_only):
                    if self._stop.is_set():
                        return False
                    if packets_only and paced and packet is not None:
                        # Packets only: pace a file by its packets, one picture each.
                        delay = start + shown / video.fps - time.monotonic()
                        if delay > 0:
                            self._stop.wait(delay)
                        shown += 1
                    now = time.monotonic()
                    keep_packets = video.codec == "h264" and self.clips is not None and self.clips.wants_packets
                    if packet is not None and keep_packets and self.clips is not None:
                        self.clips.add_packet(Packet(now, packet, bool(packet.is_keyframe), packet.size),
                                              video.stream, video.fps, self._segment)
                    for picture in images:
                        if paced:
                            delay = start + shown / video.fps - time.monotonic()
                            if delay > 0:
                                self._stop.wait(delay)
                        shown += 1
                        captured = time.monotonic()  # one capture time for clips and inference alike
                        # BGR is made when something uses it (detection, the live view, a
                        # clip of frames), not for every frame read.
                        frame = Frame(s.camera, self._index, captured, decoded=picture)
                        if self.clips is not None and not keep_packets:
                            self.clips.add_frame(captured, frame.image, video.fps)
                        if not self.record_only:
                            self._put(frame, blocking)
            except Exception as exc:  # a dropped stream surfaces as PyAV's own errors
                log.debug("reading %s failed: %s", mask_url(s.source), mask_url(str(exc)))
                return False
            if self.kind != "file":
                return False  # a stream that ends has dropped
            if not s.loop:
                return True
            video.seek_start()
        return False

    def _put(self, frame: Frame, blocking: bool) -> None:
        with self._cond:
            while blocking and self._frame is not None and not self._stop.is_set():
                self._cond.wait(0.5)
            if self._frame is not None:
                self.stats.skipped += 1
            self._frame = frame
            self._index += 1
            self.stats.frames += 1
            self._cond.notify_all()
        if self.arrived is not None:
            self.arrived.set()
