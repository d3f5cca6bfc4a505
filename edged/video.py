"""The one place PyAV is imported: reading a video file or RTSP stream as encoded packets and
decoded BGR frames, and writing MP4 clips, either by remuxing H.264 packets as they are or by
encoding frames with libx264 (h264_v4l2m2m on a Raspberry Pi where present). OpenCV's wheels
cannot write H.264, which phones' browsers need; that is why PyAV is a dependency."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger("edged.video")


@dataclass
class Packet:
    """One encoded video packet, kept for pre-roll: `ts` is when it was read (monotonic s)."""

    ts: float
    packet: Any  # av.Packet, holding its own buffer
    keyframe: bool
    size: int


class VideoInput:
    """An opened file or stream: `read()` yields (packet or None, [decoded BGR frames]) in order."""

    def __init__(self, location: str, rtsp_transport: str = "tcp", timeout_s: float = 10.0) -> None:
        import av

        options = {}
        if location.lower().startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": rtsp_transport, "timeout": str(int(timeout_s * 1e6))}
        self.container = av.open(location, options=options, timeout=timeout_s)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"  # decode with FFmpeg's threads
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 25.0
        self.codec = self.stream.codec_context.name
        self.time_base = self.stream.time_base

    def read(self) -> Iterator[tuple[Any, list[np.ndarray]]]:
        for packet in self.container.demux(self.stream):
            frames = [frame.to_ndarray(format="bgr24") for frame in packet.decode()]
            # The empty packet at the end only flushes the decoder's last frames.
            yield (packet if packet.size else None), frames

    def seek_start(self) -> None:
        self.container.seek(0)

    def close(self) -> None:
        self.container.close()


def _encoder_name() -> str:
    """The Raspberry Pi's hardware encoder where it really is (ARM, and its device node), else
    libx264. PyAV's wheels list h264_v4l2m2m everywhere, so the listing alone proves nothing."""
    import platform

    import av

    pi_encoder = platform.machine().startswith(("aarch64", "arm")) and Path("/dev/video11").exists()
    if pi_encoder and "h264_v4l2m2m" in av.codecs_available:
        return "h264_v4l2m2m"
    return "libx264"


def remux(packets: Sequence[Packet], template: Any, path: Path) -> int:
    """Writes H.264 packets (the first a keyframe) to an MP4 without re-encoding; returns the
    number of packets written. Times are shifted so the clip starts at zero."""
    import av

    with av.open(str(path), "w", format="mp4") as output:
        stream = output.add_stream_from_template(template)
        first_dts = next((p.packet.dts for p in packets if p.packet.dts is not None), 0)
        first_pts = next((p.packet.pts for p in packets if p.packet.pts is not None), 0)
        origin = min(first_dts, first_pts)
        last_dts = None
        written = 0
        for item in packets:
            packet = item.packet
            if packet.dts is None or packet.pts is None:
                continue
            dts, pts = packet.dts - origin, packet.pts - origin
            if last_dts is not None and dts <= last_dts:  # a looped file starts its times again
                continue
            packet.dts, packet.pts = dts, pts
            packet.stream = stream
            output.mux(packet)
            packet.dts, packet.pts = dts + origin, pts + origin  # leave the ring's copy as it was
            last_dts = dts
            written += 1
    return written


class H264Writer:
    """Encodes BGR frames to an H.264 MP4 one at a time (yuv420p, fast start). Frames wider
    than `max_width` are scaled down first; `gop` > 0 puts a keyframe every `gop` frames."""

    def __init__(self, path: Path, fps: float, crf: int = 23, gop: int = 0, max_width: int = 0) -> None:
        import av

        self.av = av
        self.output = av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"})
        stream: Any = self.output.add_stream(_encoder_name(), rate=Fraction(fps).limit_denominator(1000))
        self.stream = stream
        self.stream.pix_fmt = "yuv420p"
        self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        if gop:
            self.stream.options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        self.max_width = max_width
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        if self.size is None:
            height, width = image.shape[:2]
            if self.max_width and width > self.max_width:
                height, width = round(height * self.max_width / width), self.max_width
            self.size = (width - width % 2, height - height % 2)
            self.stream.width, self.stream.height = self.size
        if image.shape[1::-1] != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        for packet in self.stream.encode(frame):
            self.output.mux(packet)
        self.frames += 1

    def close(self) -> int:
        if self.size is not None:
            for packet in self.stream.encode():
                self.output.mux(packet)
        self.output.close()
        return self.frames


def encode(frames: Sequence[np.ndarray], fps: float, path: Path, crf: int = 23, gop: int = 0) -> int:
    """Encodes BGR frames to an H.264 MP4; returns the number of frames written."""
    writer = H264Writer(path, fps, crf, gop)
    for image in frames:
        writer.write(image)
    return writer.close()


@dataclass(frozen=True)
class ClipInfo:
    codec: str
    frames: int
    seconds: float
    width: int
    height: int


def probe(path: Path) -> ClipInfo:
    """Decodes a clip fully: its codec, frame count, length and size (for tests and `clips list`)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = 0
        first = last = None
        for frame in container.decode(stream):
            frames += 1
            t = float(frame.pts * stream.time_base) if frame.pts is not None else None
            first = t if first is None else first
            last = t if t is not None else last
        rate = float(stream.average_rate or 25)
        seconds = (last - first + 1 / rate) if first is not None and last is not None else frames / rate
        return ClipInfo(stream.codec_context.name, frames, seconds, stream.codec_context.width,
                        stream.codec_context.height)
