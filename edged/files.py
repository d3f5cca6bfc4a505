"""Reading files that a user or an attacker names (photos, imports, configuration, secrets):
regular files only, bounded by size, opened so that a FIFO cannot block the reader."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes`; a FIFO, a device (a link to
    /dev/zero), a folder or a larger file is refused by name (OSError), never read. Opened
    without blocking, so a FIFO with no writer cannot hang the caller."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(21, "is a folder, not a file", str(path))
        if not stat.S_ISREG(info.st_mode):
            raise OSError(22, "not a regular file (a pipe, a device or a socket)", str(path))
        if info.st_size > max_bytes:
            raise OSError(27, f"larger than {max_bytes // 2**20} MB ({info.st_size // 2**20} MB)", str(path))
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(max_bytes + 1)
        if len(data) > max_bytes:  # it grew while being read
            raise OSError(27, f"larger than {max_bytes // 2**20} MB", str(path))
        return data
    finally:
        os.close(fd)
