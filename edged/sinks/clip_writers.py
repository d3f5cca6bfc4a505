"""The threads that put clips on disk while they record, so that nothing of a clip waits in
memory for its end: one muxes H.264 packets as they come (every packet-path clip, in order),
one encodes each frame-path clip. Each writes to `NAME.part` and renames the finished file
durably; retention keeps the folder within its limits."""

from __future__ import annotations

import contextlib
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edged import durable
from edged.io.video import H264Writer, Packet, PacketMuxer, salvage
from edged.sinks.clip_rings import JpegFrame

log = logging.getLogger("edged.clips")

PART = ".part"  # the suffix of a clip still being written


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


def recover_unfinished(folder: Path) -> list[Path]:
    """Clips left half-written by a power cut or a crash (`*.part`, fragmented MP4): what of
    each still decodes becomes the clip (its whole fragments, up to about the last second);
    a part with nothing readable goes. Returns the clips recovered."""
    recovered = []
    for stray in folder.glob("*" + PART + ".salvage"):  # a recovery itself cut short
        stray.unlink(missing_ok=True)
    for part in sorted(folder.glob("*" + PART)):
        path = part.with_name(part.name[:-len(PART)])
        tmp = part.with_name(part.name + ".salvage")
        count = salvage(part, tmp) if not path.exists() else 0
        if count:
            durable.commit(tmp, path)
            recovered.append(path)
            log.warning("recovered %d packets of the unfinished clip %s (cut short by a crash or a power cut)",
                        count, path.name)
        else:
            tmp.unlink(missing_ok=True)
            log.warning("removed the unfinished clip %s: nothing in it could be read", part.name)
        part.unlink(missing_ok=True)
    return recovered


class PacketClipWriter:
    """One thread muxing every packet-path clip as its packets arrive: `add(name, packet)`,
    then `finish(name)`. Packets are only read here (and their times set just before muxing),
    so sharing them with the pre-roll ring is safe."""

    def __init__(self, folder: Path, done: Callable[[Path, int, float], None], max_queued: int = 5000) -> None:
        self.folder = folder
        self.done = done
        self.dropped = 0
        self._queue: queue.Queue[tuple[str, Packet | None, bool] | None] = queue.Queue(max_queued)
        self._thread = threading.Thread(target=self._run, name="edged-clips", daemon=True)
        self._thread.start()

    def add(self, name: str, item: Packet) -> None:
        try:
            self._queue.put_nowait((name, item, False))
        except queue.Full:  # the disk is far behind: drop rather than hold packets without bound
            self.dropped += 1

    def finish(self, name: str, cut: bool = False) -> None:
        """The clip is complete; `cut`: it ends early (a stop or a reload), not at a clean end."""
        self._queue.put((name, None, cut))

    def close(self, timeout: float = 60.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        open_clips: dict[str, PacketMuxer] = {}
        failed: set[str] = set()
        while (job := self._queue.get()) is not None:
            name, item, cut = job
            if name in failed:
                if item is None:
                    failed.discard(name)
                continue
            path = self.folder / name
            tmp = path.with_name(name + PART)
            try:
                if item is not None:
                    muxer = open_clips.get(name)
                    if muxer is None:
                        if item.template is None or not item.keyframe:  # a clip starts on a keyframe
                            continue
                        muxer = open_clips[name] = PacketMuxer(tmp, item.template)
                    muxer.write(item)
                    continue
                muxer = open_clips.pop(name, None)
                if muxer is None:
                    continue
                ended = time.monotonic()
                count = muxer.close(cut)
                durable.commit(tmp, path)
                self.done(path, count, ended)
            except Exception:  # a failed clip must not stop the next one
                log.exception("writing clip %s failed", name)
                broken = open_clips.pop(name, None)
                if broken is not None:
                    with contextlib.suppress(Exception):  # already failing; the half file goes below
                        broken.close()
                tmp.unlink(missing_ok=True)
                if item is not None:
                    failed.add(name)
        for name, muxer in open_clips.items():  # closing with clips unfinished: keep what they have
            tmp = self.folder / (name + PART)
            try:
                count = muxer.close(cut=True)
                durable.commit(tmp, self.folder / name)
                self.done(self.folder / name, count, time.monotonic())
            except Exception:
                log.exception("writing clip %s failed", name)


class FrameEncoder:
    """Encodes a frame-path clip while it records, on its own thread, from the JPEG frames the
    ring already made; frames are shown at their capture times."""

    def __init__(self, path: Path, fps: float, max_width: int, done: Callable[[Path, int, float], None]) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + PART)
        self.fps = fps
        self.max_width = max_width
        self._queue: queue.Queue[JpegFrame | None] = queue.Queue()
        self._done = done
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
            writer = H264Writer(self.tmp, self.fps, max_width=self.max_width)
            while (frame := self._queue.get()) is not None:
                image = cv2.imdecode(np.frombuffer(frame.jpeg, np.uint8), cv2.IMREAD_COLOR)
                if image is not None:
                    writer.write(image, frame.ts)
            count = writer.close()
            durable.commit(self.tmp, self.path)
            self._done(self.path, count, self.ended_at)
        except Exception:  # a failed clip must not stop the next one
            log.exception("writing clip %s failed", self.path.name)
            self.tmp.unlink(missing_ok=True)
