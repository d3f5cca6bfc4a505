"""glibc's allocator tuned for a long-running video daemon, and memory handed back on demand.
By default glibc raises its mmap threshold after large blocks are freed, so later 6 MB frames
come from heap arenas that fragment and are never given back, and every thread may get an
arena of its own: RSS grew over ten minutes of the looped demo; with a fixed 1 MiB threshold
and two arenas it stayed flat (tools/bench_longrun.py). Freed heap memory is kept up to 128 MiB
instead of glibc's 128 KiB: each detection frees and allocates again tens of MB of arrays under
1 MiB, and handing them back every time made every page of them a fault when touched again
(75,000 faults a second, 17% of a core in the kernel, on a busy 1080p camera; 10,000 and 4%
kept, for 20 MB more RSS; see docs/benchmarks.md). A no-op where the C library is not glibc."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any

log = logging.getLogger("edged.memory")

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8


def _glibc_function(name: str) -> Any:
    """A function of the C library when it is glibc, else None."""
    library = ctypes.util.find_library("c")
    if not library:
        return None
    try:
        return getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):  # not glibc
        return None


def release_free_memory() -> None:
    """Hands memory that threads freed back to the system (glibc keeps it otherwise), so RSS
    falls again after a burst, such as many live-view viewers leaving."""
    trim = _glibc_function("malloc_trim")
    if trim is not None:
        trim(0)


def tune_allocator(mmap_threshold: int = 1 << 20, arenas: int = 2, keep_free: int = 128 << 20) -> bool:
    """Large blocks always mapped (and so returned on free), few arenas, up to `keep_free`
    bytes of freed heap kept for reuse; True where applied."""
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return False
    applied = all(bool(mallopt(option, value)) for option, value in
                  ((M_MMAP_THRESHOLD, mmap_threshold), (M_ARENA_MAX, arenas), (M_TRIM_THRESHOLD, keep_free)))
    log.debug("allocator tuned: %s", applied)
    return applied
