"""Pieces of one detection run side by side: single-threaded ONNX Runtime sessions, each piece
on its own core (pyramid levels, halves of a crop batch).

Measured on the 2-core build machine (tools/bench_engine.py): ONNX Runtime's own threads split
each small MTCNN layer and wait for each other, so two of them took 1.5x the CPU of one for the
same detection, and on an empty picture no less time. Whole pieces in parallel were 13-24%
faster at 1080p with 9-12% less CPU than those threads (ONNX Runtime, OpenCV and NumPy's
gathers release the GIL); small pictures do not pay for the hand-overs (see Detector)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def lanes_for(threads: int) -> int:
    """Cores a detection may use: `threads`, or every core when 0."""
    return threads if threads > 0 else (os.cpu_count() or 1)


class Lanes:
    """`map(fn, items)` in order, on `count` threads shared by every caller (so several
    cameras' detections together never run more than `count` pieces at once)."""

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        self._pool = (ThreadPoolExecutor(self.count, thread_name_prefix="edged-lane")
                      if self.count > 1 else None)

    def map(self, fn: Callable[[Item], Result], items: Sequence[Item]) -> list[Result]:
        if self._pool is None or len(items) < 2:
            return [fn(item) for item in items]
        return list(self._pool.map(fn, items))

    def groups(self, weights: Sequence[float]) -> list[slice]:
        """Consecutive runs of items, one per lane, of about equal total weight (each thread
        hand-over costs, so a lane takes its share in one piece)."""
        total = float(sum(weights))
        if self.count == 1 or len(weights) < 2 or total <= 0:
            return [slice(0, len(weights))]
        cuts, running = [0], 0.0
        for n, weight in enumerate(weights):
            share = total * len(cuts) / self.count
            if running + weight / 2 > share and n > cuts[-1] and len(cuts) < self.count:
                cuts.append(n)
            running += weight
        cuts.append(len(weights))
        return [slice(a, b) for a, b in zip(cuts, cuts[1:], strict=False)]

    def chunks(self, total: int, smallest: int) -> list[slice]:
        """`total` rows cut into one slice per lane, none under `smallest` rows (a tiny batch is
        not worth a thread's hand-over)."""
        parts = max(1, min(self.count, total // max(1, smallest)))
        bounds = [round(total * k / parts) for k in range(parts + 1)]
        return [slice(bounds[k], bounds[k + 1]) for k in range(parts)]
