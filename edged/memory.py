"""glibc's allocator tuned for a long-running video daemon. By default glibc raises its mmap
threshold after large blocks are freed, so later 6 MB frames come from heap arenas that
fragment and are never given back, and every thread may get an arena of its own: measured,
RSS grew 78 MB over ten minutes of the looped demo; with a fixed 1 MiB threshold and two
arenas it stayed flat (tools/bench_longrun.py). A no-op where the C library is not glibc."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("edged.memory")

M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def tune_allocator(mmap_threshold: int = 1 << 20, arenas: int = 2) -> bool:
    """Large blocks always mapped (and so returned on free), few arenas; True where applied."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    applied = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_ARENA_MAX, arenas))
    log.debug("allocator tuned: %s", applied)
    return applied
