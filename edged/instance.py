"""One daemon per state directory: a second `edged run` on the same folder would share the
MQTT outbox, the clips and the media with the first. An advisory lock on a file in the folder
says which process owns it; the kernel drops the lock when that process ends, however it ends."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from edged.errors import ConfigError

LOCK_NAME = "edged.lock"


class StateLock:
    """Held for the daemon's life; `acquire` raises ConfigError (exit 78) when another holds it."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(f"{self.path.parent}: another edged ({owner}) already runs with this state directory; "
                              "give each instance its own recognition.gallery folder (and stream.port, "
                              "device.name or camera.name), or run both cameras in one daemon") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        self._file = handle

    def release(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
