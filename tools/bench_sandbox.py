#!/usr/bin/env python3
"""Benchmark of what systemd/edged.service's sandbox costs the detector: frames per second on
1080p crowd frames (edge defaults) as a plain process, under the unit's system-call filter,
and under the filter with /proc reduced as ProcSubset=pid leaves it (no /proc/cpuinfo, which
ONNX Runtime reads to pick its kernels), interleaved in the same run. Needs root (a private
mount namespace for the /proc part). Prints figures and ratios against the plain process."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, sys, time
sys.path.insert(0, {root!r})
import cv2
from edged.vision.detector import Detector, DetectorSettings
from pathlib import Path
from edged.runtime import ModelStore
capture = cv2.VideoCapture({video!r})
frames = [capture.read()[1] for _ in range({frames})]
detector = Detector(ModelStore(Path({models!r})), DetectorSettings.edge())
detector.detect(frames[0])
started = time.perf_counter()
for frame in frames:
    detector.detect(frame)
print(json.dumps({{"fps": len(frames) / (time.perf_counter() - started)}}))
"""


def run(mode: str, frames: int) -> float:
    video = str(ROOT.parent / "shared" / "data" / "video" / "crowd_1080p.mp4")
    code = CHILD.format(root=str(ROOT), video=video, frames=frames, models=str(ROOT / "models"))
    wrapper = {"plain": [], "filter": [sys.executable, str(ROOT / "tools" / "sandbox.py"), "--"],
               "filter+procsubset": [sys.executable, str(ROOT / "tools" / "sandbox.py"), "--proc-subset-pid", "--"]}
    result = subprocess.run([*wrapper[mode], sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        raise SystemExit(f"{mode}: exit {result.returncode}: {result.stderr[-800:]}")
    warned = "cpuinfo" in result.stderr
    if warned:
        print(f"  ({mode}: ONNX Runtime warned: {result.stderr.strip().splitlines()[-1][:140]})")
    return float(json.loads(result.stdout.strip().splitlines()[-1])["fps"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    modes = ["plain", "filter", "filter+procsubset"]
    figures: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.rounds):  # interleaved, so drift in the machine's speed hits all alike
        for mode in modes:
            figures[mode].append(run(mode, args.frames))
    base = statistics.median(figures["plain"])
    print(f"detector, 1080p crowd frames, edge defaults; median of {args.rounds} runs of {args.frames} frames:")
    for mode in modes:
        fps = statistics.median(figures[mode])
        print(f"  {mode:18s} {fps:6.2f} fps  x{fps / base:.3f} of plain")
    return 0


if __name__ == "__main__":
    sys.exit(main())
