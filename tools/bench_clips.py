#!/usr/bin/env python3
"""Benchmark of clips: pre-roll memory for 10 s of 1080p (H.264 packets, and JPEG frames for
sources that are not H.264), and how soon a 15-second clip is ready once its post-roll ends
(remuxing packets, encoding frames). Prints figures; the crowd video is 1080p H.264."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edged.io.video import Packet, PacketMuxer, StreamTemplate, VideoInput, encode  # noqa: E402
from edged.sinks.clip_rings import PacketTimeline  # noqa: E402
from edged.sinks.clip_writers import FrameEncoder  # noqa: E402
from edged.sinks.clips import ClipRecorder, ClipSettings, JpegFrame, PacketRing  # noqa: E402

CROWD = ROOT.parent / "shared" / "data" / "video" / "crowd_1080p.mp4"
FPS = 25.0


def packets_and_frames(path: Path) -> tuple[VideoInput, list, list]:
    video = VideoInput(str(path))
    packets: list = []
    frames: list[np.ndarray] = []
    for packet, images in video.read():
        if packet is not None:
            packets.append(packet)
        frames.extend(image.bgr() for image in images)
    return video, packets, frames


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        _, _, frames = packets_and_frames(CROWD)
        # Cameras send a keyframe every 1-2 s; the file has one. Re-encode it with a 2 s GOP.
        camera_like = tmp / "crowd-gop50.mp4"
        encode(frames, FPS, camera_like, crf=20, gop=50)
        print("pre-roll ring for 10 s of 1080p at 25 fps, fed 60 s of video:")
        for label, path in (("H.264, keyframe every 2 s", camera_like), ("H.264, the file as it is", CROWD)):
            video, packets, _ = packets_and_frames(path)
            ring = PacketRing(keep_s=10.0, max_bytes=30 * 2**20)
            peak = 0
            for n in range(int(60 * FPS)):
                p = packets[n % len(packets)]
                ring.add(Packet(n / FPS, p, bool(p.is_keyframe), p.size))
                peak = max(peak, ring.bytes)
            print(f"  {label:28s} peak {peak / 2**20:5.1f} MB (target < 30 MB)")
        recorder = ClipRecorder(ClipSettings(pre_roll_s=10.0, max_buffer_mb=10_000), tmp / "clips", "bench", 0.0)
        started = time.perf_counter()
        for n in range(int(10 * FPS)):
            recorder.keep_frame(n / FPS, frames[n % len(frames)], FPS)
        per_frame = (time.perf_counter() - started) / (10 * FPS) * 1000
        recorder.close()
        print(f"  JPEG frames (1280 px, q 80)   {recorder.jpegs.bytes / 2**20:5.1f} MB, {per_frame:.1f} ms per frame "
              "to scale and compress (the path for cameras that do not send H.264)")

        video, packets, _ = packets_and_frames(camera_like)
        template, timeline = StreamTemplate(video.stream), PacketTimeline()
        ticks = round(1 / (FPS * template.time_base))
        clip = []
        for n, p in enumerate(packets):
            dts, pts = timeline.place(p.dts, p.pts, 0, ticks)
            clip.append(Packet(n / FPS, p, bool(p.is_keyframe), p.size, dts, pts, template))
        # The packet path writes while it records; what is left after the post-roll is the
        # last packet and closing the file (moov moved to the front): time the whole clip.
        started = time.perf_counter()
        muxer = PacketMuxer(tmp / "remuxed.mp4", template)
        for item in clip:
            muxer.write(item)
        muxer.close()
        remux_s = time.perf_counter() - started
        # The frame path encodes while the clip records: feed 15 s in real time, then see how
        # long the tail takes once the post-roll has ended.
        jpegs = [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes() for f in frames]
        done: list[Path] = []
        encoder = FrameEncoder(tmp / "encoded.mp4", FPS, 1280, lambda path, count, ended: done.append(path))
        started = time.monotonic()
        for n in range(int(15 * FPS)):
            encoder.add(JpegFrame(started + n / FPS, jpegs[n % len(jpegs)]))
            time.sleep(max(0.0, started + (n + 1) / FPS - time.monotonic()))
        ended = time.monotonic()
        encoder.finish()
        encoder.thread.join(120)
        encode_s = time.monotonic() - ended
        print("a clip ready after its post-roll ends (target < 2 s):")
        print(f"  packet path, all of {len(clip) / FPS:.1f} s of 1080p muxed          {remux_s * 1000:7.1f} ms")
        print(f"  frame path, 15 s of 1080p encoded while recording, at 1280 px   {encode_s * 1000:7.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
