"""The README's first command, as a newcomer runs it: the daemon on the looped demo video says
who is enrolled, alerts on strangers with a cooldown, and a clip appears within a minute."""

import os
import signal
import subprocess
import time

import pytest
from services import free_port, wait_until

from .conftest import ROOT

pytestmark = pytest.mark.shared  # strangers alert only with the embedders ../shared brings


def test_the_demo_alerts_on_strangers_and_makes_a_clip_within_a_minute(tmp_path):
    port = free_port()
    env = {**os.environ, "EDGED_DEMO_PORT": str(port), "EDGED_DEMO_STATE": str(tmp_path)}
    log = tmp_path / "demo.log"
    process = subprocess.Popen(["bash", str(ROOT / "tools" / "demo.sh")], env=env, stdout=log.open("wb"),
                               stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: "live view: http://127.0.0.1:" in log.read_text(), 300, "the demo to start")
        started = time.monotonic()
        clip = wait_until(lambda: list((tmp_path / "clips").glob("*.mp4")), 90, "a clip from the demo")
        took = time.monotonic() - started
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    text = log.read_text()
    assert "enrolled: " in text and "enrolled: nobody" not in text
    assert took < 60, f"the first clip took {took:.0f} s"
    alerts = [line.split("alert: ", 1)[1].split(" on ", 1)[0] for line in text.splitlines() if "alert:" in line]
    assert alerts and all(who.startswith("unknown") for who in alerts), alerts  # strangers only
    # Once a minute each: every anonymous id once, and faces no one could identify once in all.
    assert len(alerts) == len(set(alerts)), alerts
    assert clip[0].stat().st_size > 10_000
    assert process.returncode == 0
