"""Runs the `edged` command given after it with inference made to stall while the file named
by EDGED_TEST_STALL_FILE exists: the watchdog test's fault, injected from outside the daemon."""

from __future__ import annotations

import os
import sys
import time

from edged.cli import main
from edged.tracking import faces as tracking

STALL_FILE = os.environ["EDGED_TEST_STALL_FILE"]
_process = tracking.FaceTracking.process


def stalling_process(self, *args, **kwargs):  # type: ignore[no-untyped-def]
    while os.path.exists(STALL_FILE):
        time.sleep(0.1)
    return _process(self, *args, **kwargs)


if __name__ == "__main__":
    tracking.FaceTracking.process = stalling_process  # type: ignore[method-assign]
    command = sys.argv[1:]  # python -m edged.cli run ...
    sys.exit(main(command[command.index("edged.cli") + 1:]))
