"""Reloads as systemd sends them, again and again: a camera removed and added back leaves no
decoder or thread behind, and a camera that stalls while opening holds up neither a reload
nor the other cameras."""

import signal
import socket
import time
from pathlib import Path

from services import Daemon, free_port, gallery_copy, wait_until

from .test_cameras import cameras_config, copies


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def reload_into(daemon: Daemon, port: int, text: str) -> float:
    """Writes `text`, sends SIGHUP, and returns the seconds until /status shows the reload."""
    before = (daemon.status(port) or {}).get("last_reload") or {}
    daemon.config.write_text(text)
    sent = time.monotonic()
    daemon.signal(signal.SIGHUP)
    wait_until(lambda: ((daemon.status(port) or {}).get("last_reload") or {}).get("time") != before.get("time"),
               90, "the reload")
    return time.monotonic() - sent


def test_reloads_leave_nothing_behind_and_wait_for_no_stalled_camera(scenario_video, enrolled_gallery, tmp_path):
    stalling = socket.socket()  # an RTSP camera that accepts the connection and never answers
    stalling.bind(("127.0.0.1", 0))
    stalling.listen(16)
    videos = copies(scenario_video, tmp_path / "videos", ["door", "yard"])
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path / "state")
    one = cameras_config({"door": (videos["door"], 3.0)}, gallery, port)
    two = cameras_config({"door": (videos["door"], 3.0), "yard": (videos["yard"], 3.0)}, gallery, port)
    stalled = two + (f'[cameras.gate]\nsource = "rtsp://127.0.0.1:{stalling.getsockname()[1]}/cam"\n'
                     "open_timeout_s = 30.0\n")
    daemon = Daemon(tmp_path, two)
    daemon.start()
    try:
        wait_until(lambda: len((daemon.status(port) or {}).get("cameras", [])) == 2, 90, "two cameras")
        time.sleep(3)
        baseline = threads_of(daemon.process.pid)
        for text in [one, two] * 5:
            reload_into(daemon, port, text)
        wait_until(lambda: len((daemon.status(port) or {}).get("cameras", [])) == 2, 30, "two cameras again")
        # The removed cameras' readers and decoders end: the threads come back to where they were.
        wait_until(lambda: threads_of(daemon.process.pid) <= baseline + 4, 30,
                   f"the threads back to about {baseline} (now {threads_of(daemon.process.pid)})")
        # A camera stuck opening (30 s timeout) neither delays the reloads nor stops the others.
        assert reload_into(daemon, port, stalled) < 15
        frames = {c["camera"]: c["stats"]["frames"] for c in daemon.status(port)["cameras"]}
        wait_until(lambda: all(c["stats"]["frames"] > frames.get(c["camera"], 0) + 10
                               for c in daemon.status(port)["cameras"] if c["camera"] != "gate"),
                   20, "frames from the other cameras while gate stalls")
        assert reload_into(daemon, port, two) < 15, "the reload waited for the stalled camera to open"
        assert daemon.status(port)["last_reload"]["ok"] and daemon.process.poll() is None
    finally:
        assert daemon.stop() == 0
        stalling.close()
