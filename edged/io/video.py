"""The one place PyAV is imported: reading a video file or RTSP stream as encoded packets and
decoded BGR frames, and writing MP4 clips, either by remuxing H.264 packets as they are or by
encoding frames with libx264 (h264_v4l2m2m on a Raspberry Pi where present). OpenCV's wheels
cannot write H.264, which phones' browsers need; that is why PyAV is a dependency."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger("edged.io.video")


@dataclass
class Packet:
    """One encoded video packet, kept for pre-roll: `ts` is when it was read (monotonic s);
    `dts`/`pts` are its times rebased onto one timeline that never goes backwards, in units
    of its template's time base (None where the stream gave none)."""

    ts: float
    packet: Any  # av.Packet, holding its own buffer
    keyframe: bool
    size: int
    dts: int | None = None
    pts: int | None = None
    template: StreamTemplate | None = None


class StreamTemplate:
    """A copy of an input stream's codec parameters that outlives the input. Closing a PyAV
    container frees its streams, and remuxing with a freed stream as template crashes the
    process, so clips take their parameters from this copy, held in an unwritten container."""

    def __init__(self, stream: Any) -> None:
        import av

        self._holder = av.open(io.BytesIO(), "w", format="mp4")
        self.stream = self._holder.add_stream_from_template(stream)
        ctx = stream.codec_context
        self.time_base: Fraction = stream.time_base
        # Two segments with the same key can share one clip (a looped file, a camera reconnecting).
        self.key = (ctx.name, ctx.width, ctx.height, bytes(ctx.extradata or b""), self.time_base)


PLANAR_420 = ("yuv420p", "yuvj420p")  # what H.264 cameras and files decode to


class AvPicture:
    """A PyAV frame as edged.types.Decoded: BGR made only when asked for; small samples taken
    straight from the YUV planes (a tenth of a millisecond for 1080p, against 5 ms for BGR)."""

    __slots__ = ("frame",)

    def __init__(self, frame: Any) -> None:
        self.frame = frame

    @property
    def size(self) -> tuple[int, int]:
        return int(self.frame.width), int(self.frame.height)

    def bgr(self) -> np.ndarray:
        return self.frame.to_ndarray(format="bgr24")

    def _planes(self) -> list[np.ndarray]:
        return [np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size) for plane in self.frame.planes[:3]]

    def small_grey(self, rows: int) -> np.ndarray:
        from edged.types import stride_for

        width, height = self.size
        step = stride_for(height, rows)
        if self.frame.format.name not in PLANAR_420:
            return cv2.cvtColor(self.small_bgr(rows), cv2.COLOR_BGR2GRAY)
        return np.ascontiguousarray(self._planes()[0][:height:step, :width:step])

    def small_bgr(self, rows: int) -> np.ndarray:
        from edged.types import stride_for

        width, height = self.size
        step = stride_for(height, rows)
        if self.frame.format.name not in PLANAR_420:
            return np.ascontiguousarray(self.bgr()[::step, ::step])
        luma, blue, red = self._planes()
        grey = luma[:height:step, :width:step]
        # The chroma planes are half the size: the same sample points, halved.
        if step % 2 == 0:
            half, rows_out, cols_out = step // 2, grey.shape[0], grey.shape[1]
            u, v = blue[::half, ::half][:rows_out, :cols_out], red[::half, ::half][:rows_out, :cols_out]
        else:
            ys, xs = np.arange(0, height, step) // 2, np.arange(0, width, step) // 2
            u, v = blue[ys][:, xs], red[ys][:, xs]
        return cv2.cvtColor(cv2.merge([np.ascontiguousarray(grey), np.ascontiguousarray(u),
                                       np.ascontiguousarray(v)]), cv2.COLOR_YUV2BGR)


# Pictures up to this many pixels (640x480) are decoded on one thread when read live: FFmpeg's
# frame threads hand each picture over between threads, which cost more than they saved on
# an idle 640x360 substream (4.8% of a core against 5.8% for the whole daemon, build machine,
# tools/bench_idle.py). Read as fast as possible (a scan), the threads pay for themselves.
SMALL_PICTURE = 640 * 480


class VideoInput:
    """An opened file or stream: `read()` yields (packet or None, [decoded pictures]) in order."""

    def __init__(self, location: str, rtsp_transport: str = "tcp", timeout_s: float = 10.0,
                 live: bool = False) -> None:
        """`live`: read at the pictures' own pace (a camera, or a file played as one), where
        small pictures are decoded on one thread (see SMALL_PICTURE)."""
        import av

        options = {}
        if location.lower().startswith(("rtsp://", "rtsps://")):
            options = {"rtsp_transport": rtsp_transport, "timeout": str(int(timeout_s * 1e6))}
        self.container = av.open(location, options=options, timeout=timeout_s)
        self.stream = self.container.streams.video[0]
        ctx = self.stream.codec_context
        if live and 0 < ctx.width * ctx.height <= SMALL_PICTURE:
            ctx.thread_count = 1
        else:
            self.stream.thread_type = "AUTO"  # decode with FFmpeg's threads
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 25.0
        self.codec = self.stream.codec_context.name
        self.time_base = self.stream.time_base

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the stream's pictures."""
        return int(self.stream.codec_context.width), int(self.stream.codec_context.height)

    def read(self, decode: bool = True) -> Iterator[tuple[Any, list[AvPicture]]]:
        """`decode` False: packets only (a stream recorded, not watched), no decoding cost."""
        for packet in self.container.demux(self.stream):
            frames = [AvPicture(frame) for frame in packet.decode()] if decode else []
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


# Clips are fragmented MP4: an empty moov first, then a fragment at least every second. Phones
# play it while it downloads, and a file cut short by a power cut keeps every whole fragment
# (salvage() below), where a plain MP4 without its closing moov would not play at all.
FRAGMENTED = {"movflags": "+frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000"}


class PacketMuxer:
    """Writes H.264 packets (the first a keyframe) to an MP4 as they come, without re-encoding,
    fragmented (FRAGMENTED). Times are the packets' rebased
    ones, shifted so the clip starts at zero; a packet whose time does not move on is skipped.
    Packets from the newest anchor (a packet shown later than all before it) on are held back:
    a clip cut short ends before them, so it never ends on frames whose B-frames are missing."""

    def __init__(self, path: Path, template: StreamTemplate) -> None:
        import av

        self.output = av.open(str(path), "w", format="mp4", options=FRAGMENTED)
        self.stream = self.output.add_stream_from_template(template.stream)
        self.template = template
        self.origin: int | None = None
        self.last_dts: int | None = None
        self.max_pts: int | None = None
        self.reordered = False  # the stream has B-frames
        self.held: list[Packet] = []
        self.written = 0
        self.skipped = 0

    def write(self, item: Packet) -> None:
        if item.dts is None or item.pts is None or item.packet is None:
            self.skipped += 1
            return
        if self.max_pts is None or item.pts > self.max_pts:
            for held in self.held:
                self._mux(held)
            self.held = []
            self.max_pts = item.pts
        else:
            self.reordered = True
        self.held.append(item)

    def _mux(self, item: Packet) -> None:
        assert item.dts is not None and item.pts is not None
        if self.origin is None:
            self.origin = min(item.dts, item.pts)
        dts, pts = item.dts - self.origin, item.pts - self.origin
        if self.last_dts is not None and dts <= self.last_dts:
            self.skipped += 1
            return
        packet = item.packet
        packet.dts, packet.pts = dts, pts
        packet.time_base = self.template.time_base
        packet.stream = self.stream
        self.output.mux(packet)
        self.last_dts = dts
        self.written += 1

    def close(self, cut: bool = False) -> int:
        """Finishes the file; `cut`: the clip ends where the stream did not (a stop), so the
        frames still waiting for their B-frames are left out."""
        if not (cut and self.reordered):
            for held in self.held:
                self._mux(held)
        self.held = []
        self.output.close()
        return self.written


class H264Writer:
    """Encodes BGR frames to an H.264 MP4 one at a time (yuv420p, fragmented as FRAGMENTED). Frames wider
    than `max_width` are scaled down first; `gop` > 0 puts a keyframe every `gop` frames.
    Frames written with their capture time `ts` (seconds) are shown at that time, so a clip
    lasts as long as what it recorded even when frames were dropped on the way."""

    def __init__(self, path: Path, fps: float, crf: int = 23, gop: int = 0, max_width: int = 0) -> None:
        import av

        self.av = av
        self.output = av.open(str(path), "w", format="mp4", options=FRAGMENTED)
        stream: Any = self.output.add_stream(_encoder_name(), rate=Fraction(fps).limit_denominator(1000))
        self.stream = stream
        self.stream.pix_fmt = "yuv420p"
        self.stream.time_base = self.stream.codec_context.time_base = Fraction(1, 1000)  # ms
        self.stream.options = {"crf": str(crf), "preset": "veryfast"}
        if gop:
            self.stream.options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
        self.max_width = max_width
        self.size: tuple[int, int] | None = None
        self.frames = 0
        self.frame_ms = 1000.0 / fps
        self.first_ts: float | None = None
        self.last_pts = -1

    def write(self, image: np.ndarray, ts: float | None = None) -> None:
        if self.size is None:
            height, width = image.shape[:2]
            if self.max_width and width > self.max_width:
                height, width = round(height * self.max_width / width), self.max_width
            self.size = (width - width % 2, height - height % 2)
            self.stream.width, self.stream.height = self.size
        if image.shape[1::-1] != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        frame = self.av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        if ts is None:
            pts = round(self.frames * self.frame_ms)
        else:
            self.first_ts = ts if self.first_ts is None else self.first_ts
            pts = round((ts - self.first_ts) * 1000)
        self.last_pts = pts = max(pts, self.last_pts + 1)
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
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


def salvage(part: Path, path: Path) -> int:
    """Copies the packets of a clip that was cut short (a `.part` left by a power cut or a
    crash) that can still be read into `path`, without re-encoding; returns how many. 0: none
    could be read, and `path` is not written."""
    import av

    count = 0
    size = part.stat().st_size
    try:
        with av.open(str(part), format="mp4") as source:
            stream = source.streams.video[0]
            with av.open(str(path), "w", format="mp4", options=FRAGMENTED) as output:
                target = output.add_stream_from_template(stream)
                try:
                    for packet in source.demux(stream):
                        if packet.dts is None or packet.size == 0:
                            continue
                        # A packet that reaches the end of the file is the one the cut went
                        # through (the demuxer gives it shortened): it stays out.
                        if packet.pos is None or packet.pos < 0 or packet.pos + packet.size >= size:
                            break
                        packet.stream = target
                        output.mux(packet)
                        count += 1
                except av.error.FFmpegError:  # where the file was cut: keep what came before
                    pass
    except (av.error.FFmpegError, IndexError, OSError):
        count = 0
    if count == 0:
        path.unlink(missing_ok=True)
    return count


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
