"""The inference scheduler: a few worker threads run detection and tracking for every camera,
so the models are loaded once. Each turn a worker polls every camera no other worker holds for
its newest frame, then runs the one detection that has waited longest past its due time
(earliest deadline first): every camera gets its own detect_fps while the box keeps up, and
when it cannot, each falls behind in proportion, none starves. One worker is enough for one
camera (a detection itself uses every core, see `Lanes`); with several cameras, a second
worker keeps the cores busy while the first is in Python (tracking, identities, NMS)."""

from __future__ import annotations

import logging
import os
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


def workers_for(cameras: int, configured: int) -> int:
    """Inference workers: as configured, or one per camera up to one per core."""
    if configured > 0:
        return configured
    return max(1, min(cameras, os.cpu_count() or 1))


class Scheduler:
    """`start()`, then `stop()`; `heartbeat` is the monotonic time the slowest worker last turned."""

    def __init__(self, pipelines: list[Pipeline], workers: int = 1) -> None:
        self.pipelines = pipelines
        self.workers = max(1, min(workers, len(pipelines)))
        self._turns = [time.monotonic()] * self.workers
        self._arrived = threading.Event()  # any camera's source has a new frame, or a camera came free
        self._stop = threading.Event()
        self._choosing = threading.Lock()  # polling and choosing is one worker's at a time
        self._held: set[int] = set()  # cameras (indices) a worker is detecting on
        self._threads: list[threading.Thread] = []
        self._behind_logged = float("-inf")
        for pipeline in pipelines:
            pipeline.source.arrived = self._arrived

    @property
    def heartbeat(self) -> float:
        """A worker stuck in one detection holds the heartbeat back (the watchdog sees it)."""
        return min(self._turns)

    def start(self) -> None:
        for pipeline in self.pipelines:
            pipeline.start()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True,
                                          name="edged-inference" + (f"-{n}" if n else ""))
                         for n in range(self.workers)]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the workers, then each pipeline (tracks ended, events flushed)."""
        self._stop.set()
        self._arrived.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        for pipeline in self.pipelines:  # every reader asked at once: stops take the longest one, not their sum
            pipeline.request_stop()
        for pipeline in self.pipelines:
            pipeline.stop(timeout)

    @property
    def finished(self) -> bool:
        """Every camera is a file that has ended (never true while one is a live source)."""
        return all(p.finished for p in self.pipelines)

    def _choose(self, worker: int) -> tuple[int | None, bool]:
        """Polls the free cameras and takes the due one: (its index or None, all finished)."""
        with self._choosing:
            now = time.monotonic()
            self._turns[worker] = now
            self._arrived.clear()
            free = [p for n, p in enumerate(self.pipelines) if n not in self._held]
            for pipeline in free:
                pipeline.poll(now)
            chosen = next_camera(free)
            if chosen is None:
                return None, not self._held and self.finished
            index = self.pipelines.index(chosen)
            self._held.add(index)
            return index, False

    def _run(self, worker: int) -> None:
        while not self._stop.is_set():
            index, finished = self._choose(worker)
            if index is not None:
                try:
                    self.pipelines[index].detect()
                finally:
                    with self._choosing:
                        self._held.discard(index)
                    self._arrived.set()  # its newer frames can be polled now
                self._say_if_behind()
            elif finished:
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
