#!/usr/bin/env python3
"""What a camera costs when nothing happens, and what a busy one costs per detection, against
the physical floor measured in the same run: ffmpeg decoding the same stream in real time.

Scenes (H.264, 25 fps, looped as a live camera): a static wall with fresh sensor noise in every
frame and nobody there, at 1080p and as a 640x360 substream; and the crowd video at 1080p.
Each daemon run is `edged run` as a subprocess with the default configuration, its CPU taken
from /proc over `--seconds` after `--settle` seconds; 100% is one core. Rows with
`motion.enabled = false` detect at detect_fps whatever happens; rows with `idle_detect_fps = 0`
on the empty scenes are the daemon's own floor (reading and sampling every frame, no
detection); `--baseline CHECKOUT` adds rows run by an earlier edged (a `git worktree` of the
commit before this issue's work), all in the same run. The floor is measured again just before
each row, so that a row's ratio is against the machine as it was then (this shared VM's
neighbours change its speed by 10-30% within minutes)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from bench_daemon import baseline_name, cpu_seconds  # noqa: E402
from services import Daemon, free_port, wait_until  # noqa: E402

from edged.io.video import encode  # noqa: E402

CROWD = ROOT.parent / "shared" / "data" / "video" / "crowd_1080p.mp4"


def static_scene(path: Path, size: tuple[int, int], seconds: float = 8.0, noise: float = 3.0,
                 walker: np.ndarray | None = None) -> Path:
    """A blurred wall (a camera slightly out of focus on an empty doorway) with sensor noise;
    `walker`: a face that crosses the frame from left to right, once per loop."""
    from scenarios import background

    wall = background(*size).astype(np.float32)
    rng = np.random.default_rng(5)
    count = int(seconds * 25)
    frames = []
    for n in range(count):
        frame = np.clip(wall + rng.normal(0, noise, wall.shape), 0, 255).astype(np.uint8)
        if walker is not None:
            height, width = walker.shape[:2]
            x = int((size[0] - width) * n / count)
            y = size[1] // 3
            frame[y:y + height, x:x + width] = walker
        frames.append(frame)
    encode(frames, 25.0, path, crf=23, gop=50)
    return path


def walker_face(height: int) -> np.ndarray:
    from scenarios import face_patch

    from edged.runtime import ModelStore
    from edged.vision.detector import Detector

    return face_patch(Detector(ModelStore()), "obama", "obama2.jpg", height)


def ffmpeg_floor(video: Path, seconds: float) -> float:
    """ffmpeg decoding the stream in real time, as the daemon must: CPU % of one core."""
    started = time.monotonic()
    process = subprocess.Popen(["ffmpeg", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", str(video),
                                "-t", str(seconds), "-f", "null", "-"])
    _, _, usage = os.wait4(process.pid, 0)
    return (usage.ru_utime + usage.ru_stime) / (time.monotonic() - started) * 100


def daemon_cpu(folder: Path, source: Path, detect_source: Path | None, motion: str, settle: float,
               seconds: float, root: Path = ROOT) -> dict[str, object]:
    """`motion`: "crops", "whole" (no crops), "floor" (no idle heartbeat), "off", or
    "baseline" (the checkout at `root`, which may predate the [motion] section)."""
    port = free_port()
    detect = f'detect_source = "{detect_source}"\n' if detect_source else ""
    text = (f'[camera]\nname = "cam"\nsource = "{source}"\n{detect}loop = true\n'
            f'[recognition]\ngallery = "{folder / "gallery.db"}"\n[stream]\nport = {port}\n')
    text += {"crops": "", "whole": "[motion]\ndetect_crops = false\n", "floor": "[motion]\nidle_detect_fps = 0\n",
             "off": "[motion]\nenabled = false\n", "baseline": ""}[motion]
    daemon = Daemon(folder, text, root=root)
    daemon.start()
    try:
        wait_until(lambda: daemon.status(port), 180, "the daemon's status")
        time.sleep(settle)
        assert daemon.process is not None
        before, then = cpu_seconds(daemon.process.pid), time.monotonic()
        time.sleep(seconds)
        cpu = (cpu_seconds(daemon.process.pid) - before) / (time.monotonic() - then) * 100
        stats = (daemon.status(port) or {})["stats"]
    finally:
        daemon.stop()
    detections = stats["fps"]
    return {"cpu_percent": round(cpu, 1), "detections_per_s": round(detections, 2), "mode": stats.get("detect_mode"),
            "cpu_per_detection": round(cpu / detections, 1) if detections else None}


GATES = {"crops": "on, crops", "whole": "on, whole frames", "floor": "on, idle_detect_fps = 0 (the daemon's floor)",
         "off": "off"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settle", type=float, default=15.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier edged, run on every scene too")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repeat", type=int, default=1, help="rounds of every row, interleaved; medians printed")
    parser.add_argument("--scenes", default="1080p,360p,crowd,walker",
                        help="which scenes, of 1080p (static), 360p (static, as a substream), crowd, walker")
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    baseline = baseline_name(args.baseline) if args.baseline else ""
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print("making the scenes...", flush=True)
        full = static_scene(tmp / "static_1080p.mp4", (1920, 1080))
        sub = static_scene(tmp / "static_360p.mp4", (640, 360))
        walking = static_scene(tmp / "walker_1080p.mp4", (1920, 1080), walker=walker_face(160))
        floor_videos = {"1080p": full, "360p": sub, "crowd": CROWD, "walker": walking}
        wanted = args.scenes.split(",")
        runs = [("static 1080p, nobody there", full, None, "1080p", ("crops", "floor", "off")),
                ("static 1080p recorded, 640x360 detect_source", full, sub, "360p", ("crops", "floor", "off")),
                ("crowd 1080p", CROWD, None, "crowd", ("crops", "off")),
                ("1080p, one person walking across", walking, None, "walker", ("crops", "whole", "off"))]
        for n, (label, source, detect, floor, gates) in enumerate(runs):
            if floor not in wanted:
                continue
            # Rounds: each gate once per round, so that every gate meets the machine's slow and
            # fast spells alike; the summary takes each gate's median.
            for turn in range(args.repeat):
                for gate in (*gates, *(("baseline",) if args.baseline else ())):
                    root = args.baseline if gate == "baseline" else ROOT
                    floor_percent = ffmpeg_floor(floor_videos[floor], args.seconds)
                    row = daemon_cpu(tmp / f"run{n}-{gate}-{turn}", source, detect, gate, args.settle,
                                     args.seconds, root)
                    row.update(scene=label, gate=gate, floor_percent=round(floor_percent, 1),
                               x_floor=round(float(row["cpu_percent"]) / floor_percent, 2))  # type: ignore[arg-type]
                    rows.append(row)
                    said = baseline if gate == "baseline" else f"motion {GATES[gate]}"
                    print(f"{label}, {said}: daemon CPU {row['cpu_percent']}% "
                          f"(x{row['x_floor']} of ffmpeg's {row['floor_percent']}%), {row['detections_per_s']} "
                          f"detections/s ({row['mode']}), {row['cpu_per_detection']}% CPU per detection/s", flush=True)
    if args.repeat > 1:
        print("medians over", args.repeat, "rounds:")
        for (scene, gate), median in medians(rows).items():
            print(f"  {scene}, {gate}: " + ", ".join(f"{key} {value}" for key, value in median.items()))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


def medians(rows: list[dict[str, object]]) -> dict[tuple[str, str], dict[str, float]]:
    """Each (scene, gate)'s median of every figure over its rounds."""
    figures = ("cpu_percent", "floor_percent", "x_floor", "detections_per_s", "cpu_per_detection")
    grouped: dict[tuple[str, str], list[dict[str, object]]] = {}
    for row in rows:
        grouped.setdefault((str(row["scene"]), str(row["gate"])), []).append(row)
    return {key: {name: round(statistics.median(float(r[name]) for r in group if r[name] is not None), 2)  # type: ignore[arg-type]
                  for name in figures if any(r[name] is not None for r in group)}
            for key, group in grouped.items()}


if __name__ == "__main__":
    sys.exit(main())
