"""Files that survive a power cut: written to a temporary name, flushed to the disk, renamed,
and the rename itself flushed (the directory), so a reader finds the old file or the whole
new one under the real name, never an empty one."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(folder: Path) -> None:
    """Makes a rename or a new file in `folder` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on directories; the rename still happened
        pass
    finally:
        os.close(fd)


def commit(tmp: Path, path: Path) -> None:
    """Flushes the finished temporary file `tmp` and renames it to `path`, durably."""
    with tmp.open("rb+") as f:
        os.fsync(f.fileno())
    tmp.replace(path)
    fsync_directory(path.parent)


def write_bytes(path: Path, data: bytes) -> None:
    """Writes `data` to `path` all or nothing, durably."""
    tmp = path.with_name(path.name + ".part")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    fsync_directory(path.parent)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))
