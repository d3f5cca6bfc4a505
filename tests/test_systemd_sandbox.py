"""The daemon under the system-call filter of systemd/edged.service, loaded with libseccomp as
systemd would (tools/sandbox.py): it starts, alerts and stops cleanly. Without the unit's
SystemCallErrorNumber=EPERM the same filter kills it as it imports numpy (OpenBLAS calls
mbind, which @resources denies)."""

import signal
import subprocess
import sys

from services import Daemon, config, free_port, gallery_copy, wait_until

from .conftest import ROOT

SANDBOX = [sys.executable, str(ROOT / "tools" / "sandbox.py")]


def test_without_an_error_number_the_filter_kills_the_daemon_at_import():
    killed = subprocess.run([*SANDBOX, "--errno", "kill", "--", sys.executable, "-c", "import numpy"],
                            capture_output=True, timeout=60)
    assert killed.returncode in (-signal.SIGSYS, 128 + signal.SIGSYS), killed.returncode
    allowed = subprocess.run([*SANDBOX, "--", sys.executable, "-c", "import numpy, cv2, onnxruntime"],
                             capture_output=True, text=True, timeout=60)
    assert allowed.returncode == 0, allowed.stderr


def test_the_daemon_runs_and_stops_under_the_units_filter(scenario_video, enrolled_gallery, tmp_path):
    port = free_port()
    daemon = Daemon(tmp_path, config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port),
                    wrapper=[*SANDBOX, "--"])
    daemon.start()
    try:
        wait_until(lambda: daemon.status(port), 60, "the status endpoint under the filter")
        wait_until(lambda: "alert:" in daemon.text(), 30, "an alert under the filter")
        daemon.signal(signal.SIGTERM)
        assert daemon.process.wait(20) == 0, daemon.text()[-2000:]
    finally:
        daemon.stop()
    assert "Traceback" not in daemon.text()
