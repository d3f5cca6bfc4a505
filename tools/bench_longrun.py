#!/usr/bin/env python3
"""Long-run benchmark: the daemon on the looped demo video (1080p H.264, as the demo runs it)
with clips on, for some minutes; prints RSS over time (growth after the first minute is the
figure), and the clips made with their lengths against the configured pre-roll + post-roll.

    python3 tools/bench_longrun.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from services import Daemon, free_port, wait_until  # noqa: E402

from edged.io.video import probe  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video" / "crowd_1080p.mp4"
PRE, POST = 5.0, 5.0


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        port = free_port()
        daemon = Daemon(tmp, f"""
[camera]
name = "demo"
source = "{VIDEO}"
loop = true
[recognition]
gallery = "{tmp / 'gallery.db'}"
[alerts]
mode = "unknowns"
cooldown_s = 30
[clips]
pre_roll_s = {PRE}
post_roll_s = {POST}
[stream]
port = {port}
""")
        daemon.start()
        assert daemon.process is not None
        wait_until(lambda: daemon.status(port), 120, "the daemon")
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        while time.monotonic() - started < args.minutes * 60:
            samples.append((time.monotonic() - started, rss_mb(daemon.process.pid)))
            time.sleep(10)
        daemon.stop()
        clips = sorted((tmp / "clips").glob("*.mp4"))
        lengths = [probe(c).seconds for c in clips]
    after_minute = [mb for t, mb in samples if t >= 60]
    print(f"daemon on the looped 1080p demo video, clips on (pre {PRE:g} s, post {POST:g} s), "
          f"{args.minutes:g} minutes:")
    for t, mb in samples[::6]:
        print(f"  {t / 60:5.1f} min  RSS {mb:6.1f} MB")
    if after_minute:
        print(f"  RSS growth after the first minute: {max(after_minute) - after_minute[0]:+.1f} MB "
              f"(from {after_minute[0]:.1f} to at most {max(after_minute):.1f} MB; target < 20 MB)")
    if lengths:
        print(f"  {len(lengths)} clips, {min(lengths):.2f} to {max(lengths):.2f} s long "
              f"(configured {PRE + POST:g} s, longer where an alert during a clip extended it)")
    else:
        print("  no clips")
    return 0


if __name__ == "__main__":
    sys.exit(main())
