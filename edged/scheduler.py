"""The inference scheduler: one thread runs detection and tracking for every camera, so the
models are loaded once and the cores are never split between cameras' threads. Each turn it
polls every camera for its newest frame, then runs the one detection that has waited longest
past its due time (earliest deadline first): every camera gets its own detect_fps while the
box keeps up, and when it cannot, each falls behind in proportion, none starves."""

from __future__ import annotations

import logging
import threading
import time

from edged.pipeline import Pipeline

log = logging.getLogger("edged.scheduler")
IDLE_WAIT_S = 0.05  # the longest a turn waits for a frame when no detection is due
BEHIND_LOG_EVERY_S = 60.0


def next_camera(pipelines: list[Pipeline]) -> Pipeline | None:
    """The camera whose due detection has waited longest, or None when none is due."""
    ready = [p for p in pipelines if p.due is not None]
    return min(ready, key=lambda p: p.due_at) if ready else None


class Scheduler:
    """`start()`, then `stop()`; `heartbeat` is the monotonic time the loop last turned."""

    def __init__(self, pipelines: list[Pipeline]) -> None:
        self.pipelines = pipelines
        self.heartbeat = time.monotonic()
        self._arrived = threading.Event()  # any camera's source has a new frame
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._behind_logged = float("-inf")
        for pipeline in pipelines:
            pipeline.source.arrived = self._arrived

    def start(self) -> None:
        for pipeline in self.pipelines:
            pipeline.start()
        self._thread = threading.Thread(target=self._run, name="edged-inference", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the loop, then each pipeline (tracks ended, events flushed)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for pipeline in self.pipelines:  # every reader asked at once: stops take the longest one, not their sum
            pipeline.request_stop()
        for pipeline in self.pipelines:
            pipeline.stop(timeout)

    @property
    def finished(self) -> bool:
        """Every camera is a file that has ended (never true while one is a live source)."""
        return all(p.finished for p in self.pipelines)

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            self.heartbeat = now
            self._arrived.clear()
            for pipeline in self.pipelines:
                pipeline.poll(now)
            chosen = next_camera(self.pipelines)
            if chosen is not None:
                chosen.detect()
                self._say_if_behind()
            elif self.finished:
                return
            else:
                self._arrived.wait(IDLE_WAIT_S)

    def _say_if_behind(self) -> None:
        now = time.monotonic()
        if now - self._behind_logged < BEHIND_LOG_EVERY_S:
            return
        behind = [s for s in (p.last_stats for p in self.pipelines) if s is not None and s.falling_behind]
        if behind:
            self._behind_logged = now
            log.warning("inference cannot keep up: %s; lower detect_fps, use a detect_source substream, or fewer "
                        "cameras", "; ".join(f"camera {s.camera} wanted {s.detect_fps_target:.1f} detections/s, "
                                             f"achieved {s.fps:.1f}" for s in behind))
