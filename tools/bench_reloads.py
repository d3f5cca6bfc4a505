#!/usr/bin/env python3
"""Reload benchmark: the daemon with two cameras (files, or RTSP streams from ffmpeg with
--rtsp) reloaded again and again, one camera removed and added back each time; prints RSS and
the process's threads every 10 reloads, and the seconds each reload took.

    python3 tools/bench_reloads.py [--reloads 80] [--rtsp]
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from services import Daemon, RtspServer, free_port, wait_until  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video" / "crowd_1080p.mp4"


def proc_status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key + ":"))


def cameras(sources: dict[str, str], folder: Path, port: int) -> str:
    # rtsp-server-perl serves RTP over UDP only.
    transport = 'rtsp_transport = "udp"\n' if any(s.startswith("rtsp://") for s in sources.values()) else ""
    tables = "".join(f'[cameras.{name}]\nsource = "{source}"\ndetect_fps = 3.0\n'
                     for name, source in sources.items())
    return (f'[camera]\nloop = true\nopen_timeout_s = 5.0\n{transport}[recognition]\n'
            f'gallery = "{folder / "gallery.db"}"\n[stream]\nport = {port}\n[clips]\nenabled = false\n{tables}')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reloads", type=int, default=80)
    parser.add_argument("--rtsp", action="store_true", help="cameras are RTSP streams (ffmpeg into rtsp-server-perl)")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to wait after the last reload")
    args = parser.parse_args()
    # One server with two streams of the scene (rtsp-server-perl takes one UDP port whatever it
    # is told, so two servers collide): the yard reads the 640x360 one.
    servers = [RtspServer(VIDEO, substream=(640, 360))] if args.rtsp else []
    for server in servers:
        server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            port = free_port()
            if servers:
                sources = {"door": servers[0].url, "yard": servers[0].sub_url}
            else:  # two cameras may not read one file: a copy for the yard
                (tmp / "yard.mp4").write_bytes(VIDEO.read_bytes())
                sources = {"door": str(VIDEO), "yard": str(tmp / "yard.mp4")}
            both, one = cameras(sources, tmp, port), cameras({"door": sources["door"]}, tmp, port)
            daemon = Daemon(tmp, both)
            daemon.start()
            assert daemon.process is not None
            pid = daemon.process.pid
            wait_until(lambda: [c for c in (daemon.status(port) or {}).get("cameras", []) if c["stats"]["frames"] > 25]
                       [1:], 120, "frames from both cameras")
            time.sleep(5)
            rows = [(0, proc_status(pid, "VmRSS") / 1024, proc_status(pid, "Threads"))]
            took = []
            for n in range(1, args.reloads + 1):
                before = (daemon.status(port) or {}).get("last_reload") or {}
                daemon.config.write_text(one if n % 2 else both)
                sent = time.monotonic()
                daemon.signal(signal.SIGHUP)
                wait_until(lambda b=before: ((daemon.status(port) or {}).get("last_reload") or {}).get("time")
                           != b.get("time"), 120, "the reload")
                took.append(time.monotonic() - sent)
                if n % 10 == 0:
                    time.sleep(3)
                    rows.append((n, proc_status(pid, "VmRSS") / 1024, proc_status(pid, "Threads")))
            time.sleep(args.settle)  # readers left to finish a stream's teardown have ended by now
            rows.append((args.reloads, proc_status(pid, "VmRSS") / 1024, proc_status(pid, "Threads")))
            frames = {c["camera"]: c["stats"]["frames"] for c in (daemon.status(port) or {}).get("cameras", [])}
            daemon.stop()
    finally:
        for server in servers:
            server.stop()
    kind = "RTSP streams" if args.rtsp else "files"
    print(f"{args.reloads} reloads of a daemon with two cameras ({kind}, 1080p), one removed and added back each time:")
    for n, mb, threads in rows:
        print(f"  after {n:3d} reloads: RSS {mb:6.1f} MB, {threads} threads")
    print(f"  (the last line: {args.settle:g} s after the last reload)")
    print(f"  RSS change: {rows[-1][1] - rows[0][1]:+.1f} MB; after the first 10 reloads: "
          f"{rows[-1][1] - rows[1][1]:+.1f} MB")
    print(f"  frames each camera had read by the end: {frames}")
    print(f"  reload took {statistics.median(took):.2f} s median, {max(took):.2f} s at most")
    return 0


if __name__ == "__main__":
    sys.exit(main())
