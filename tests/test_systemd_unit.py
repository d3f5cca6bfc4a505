"""The unit file passes `systemd-analyze verify` and keeps its security exposure low."""

import re
import shutil
import subprocess

import pytest

from .conftest import ROOT

UNIT = ROOT / "systemd" / "edged.service"


def analyze(*args: str, cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, cwd=cwd, timeout=60)


@pytest.fixture
def unit_copy(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing: install Debian's systemd package (tools/setup.sh --dev does)")
    target = tmp_path / "edged.service"
    # verify checks that ExecStart exists; point it at this checkout's virtual environment.
    target.write_text(UNIT.read_text().replace("/opt/edged/.venv/bin/edged", str(ROOT / ".venv" / "bin" / "edged")))
    return target


def test_unit_verifies_cleanly(unit_copy):
    result = analyze("verify", str(unit_copy), cwd=unit_copy.parent)
    problems = [line for line in (result.stdout + result.stderr).splitlines() if "edged.service" in line]
    assert result.returncode == 0 and not problems, problems


def test_unit_security_exposure_is_low(unit_copy):
    result = analyze("security", "--offline=true", str(unit_copy), cwd=unit_copy.parent)
    score = float(re.search(r"Overall exposure level for edged.service: ([\d.]+)", result.stdout).group(1))
    assert score <= 1.5, result.stdout[-2000:]


def test_unit_settings_the_daemon_relies_on():
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=", "RestartPreventExitStatus=78", "ProtectSystem=strict",
                 "StateDirectory=edged", "NoNewPrivileges=yes", "PrivateTmp=yes", "DeviceAllow=char-video4linux rw"):
        assert line in text, line
