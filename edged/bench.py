"""`edged bench`: what this box can take, measured on the box itself with its own cameras'
frames (or a video): milliseconds per decoded frame, per detection on a busy picture and on
an empty one, and per embedding, for each camera's resolution; and, for a configuration, how
many detections per second each camera can have when they share the box's cores."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from edged.engine import FaceEngine
from edged.errors import EdgedError
from edged.io.video import VideoInput

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CameraBench:
    """One camera's (or video's) figures; milliseconds of CPU are the process's, all threads."""

    camera: str
    source: str
    width: int
    height: int
    fps: float  # the stream's own frame rate
    frames: int  # frames decoded to measure
    decode_ms: float  # CPU per decoded frame (decoding only, as the daemon reads)
    detect_busy_ms: float  # wall time per detection on the camera's own frames
    detect_busy_cpu_ms: float  # CPU per detection on them, all cores together
    detect_idle_ms: float  # wall time per detection on an empty picture of the same size
    faces_per_frame: float
    embed_ms: float | None  # wall time per face embedded (None without an embedder or faces)
    detect_fps_wanted: float = 0.0  # what the configuration asks for (0 without one)
    detect_fps_possible: float = 0.0  # what this camera gets when every camera shares the cores alike
    decode_cores: float = 0.0  # cores decoding this camera at its own frame rate takes

    def to_json(self) -> dict[str, object]:
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in asdict(self).items()}


def read_frames(source: str, count: int, progress: Progress, camera: str) -> tuple[list[np.ndarray], float, float]:
    """(`count` BGR frames, CPU ms per decoded frame, the stream's fps), read as the daemon reads."""
    try:
        video = VideoInput(source, timeout_s=10.0, live=True)  # decoded with the daemon's threads
    except Exception as exc:  # PyAV's own error types, for files and streams alike
        raise EdgedError(f"camera {camera}: cannot open {source} to measure it ({exc})") from None
    pictures = []
    cpu_before = time.process_time()
    try:
        for _packet, decoded in video.read():
            pictures.extend(decoded)
            if len(pictures) % 10 == 0:
                progress(f"camera {camera}: decoding {min(len(pictures), count)}/{count} frames")
            if len(pictures) >= count:
                break
        cpu_ms = (time.process_time() - cpu_before) * 1000
    finally:
        video.close()
    if not pictures:
        raise EdgedError(f"camera {camera}: {source} gave no frames")
    # Converted after the timing: the daemon converts only the frames it detects on.
    return [p.bgr() for p in pictures[:count]], cpu_ms / len(pictures), video.fps


def per_call_ms(work: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - started) * 1000 / max(calls, 1)


def bench_camera(engine: FaceEngine, camera: str, source: str, frames: int, detections: int,
                 progress: Progress) -> CameraBench:
    images, decode_ms, fps = read_frames(source, frames, progress, camera)
    engine.detector.warm_up()
    picked = [images[i * len(images) // detections] for i in range(detections)]
    found = []
    progress(f"camera {camera}: detecting on {len(picked)} of its frames")
    started, cpu_before = time.perf_counter(), time.process_time()
    for image in picked:
        found.append(engine.detector.detect(image))
    busy_ms = (time.perf_counter() - started) * 1000 / len(picked)
    busy_cpu_ms = (time.process_time() - cpu_before) * 1000 / len(picked)
    rng = np.random.default_rng(0)
    empty = np.clip(np.full_like(images[0], 120) + rng.normal(0, 3, images[0].shape), 0, 255).astype(np.uint8)
    progress(f"camera {camera}: detecting on an empty picture")
    idle_ms = per_call_ms(lambda: engine.detector.detect(empty), max(3, detections // 2))
    faces = sum(len(f) for f in found)
    embed_ms = None
    if engine.has_embedder and faces:
        progress(f"camera {camera}: embedding {faces} faces")
        embedder = engine.embedder_loaded()
        embedder.warm_up()
        started = time.perf_counter()
        for image, detected in zip(picked, found, strict=True):
            if len(detected):
                embedder.embed(image, detected)
        embed_ms = (time.perf_counter() - started) * 1000 / faces
    height, width = images[0].shape[:2]
    return CameraBench(camera, source, width, height, fps, len(images), decode_ms, busy_ms, busy_cpu_ms, idle_ms,
                       faces / len(picked), embed_ms, decode_cores=decode_ms * fps / 1000)


def share_inference(benches: list[CameraBench], wanted: list[float], cores: int) -> list[CameraBench]:
    """Every camera gets the same rate r while the cores last: r x (the sum of their CPU per
    busy detection) = the core-milliseconds per second that decoding leaves. No camera gets
    more than one detection at a time allows (1000 / its wall ms; the scheduler never runs two
    of one camera's at once), and one that wants less leaves the rest to the others."""
    left = max(cores - sum(b.decode_cores for b in benches), 0.05) * 1000.0
    caps = [min(wanted[i] or float("inf"), 1000.0 / b.detect_busy_ms) for i, b in enumerate(benches)]
    rates = [0.0] * len(benches)
    waiting = sorted(range(len(benches)), key=lambda i: caps[i] * benches[i].detect_busy_cpu_ms)
    for n, i in enumerate(waiting):
        fair = left / sum(benches[j].detect_busy_cpu_ms for j in waiting[n:])
        rates[i] = min(caps[i], fair)
        left -= rates[i] * benches[i].detect_busy_cpu_ms
    return [CameraBench(**{**asdict(b), "detect_fps_wanted": wanted[i], "detect_fps_possible": rates[i]})
            for i, b in enumerate(benches)]
