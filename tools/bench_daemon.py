#!/usr/bin/env python3
"""Benchmark of `edged run` with 1, 2 and 3 cameras: the 1080p crowd video as 25 fps live
cameras (looped, paced), detected on the 1080p stream itself or on a 640x360 detect stream of
the same scene, a real Mosquitto broker, and the daemon as a subprocess. Prints per camera the
detections per second wanted and achieved, alert latency from the confirming frame's capture
to the MQTT message, CPU, peak RSS and the time to READY=1, with ratios against one camera
measured in the same run. `--baseline CHECKOUT` runs an earlier edged (a `git worktree` of an
older commit) on the same runs in turn, and prints the ratios of the two."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from services import Daemon, Mosquitto, Subscriber, free_port, wait_until  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video" / "crowd_1080p.mp4"
NAMES = ("cam1", "cam2", "cam3")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of the process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def substream(folder: Path) -> Path:
    """The crowd video at 640x360, frame for frame: what a camera's second stream gives."""
    out = folder / "crowd_360p.mp4"
    subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(VIDEO), "-vf", "scale=640:360", "-c:v",
                    "libx264", "-preset", "veryfast", "-g", "25", "-an", str(out)], check=True)
    return out


MODES = {"1080p": "detection on 1080p",
         "sub": "640x360 detect stream, edge defaults (faces >= 40 px of 360p)",
         "sub-same-faces": "640x360 detect stream, the same faces as on 1080p (>= 13.4 px)"}


def run_once(tmp: Path, broker: Mosquitto, cameras: int, detect: Path | None, same_faces: bool, seconds: float,
             detect_fps: float, root: Path = ROOT, edition: str = "this") -> dict[str, object]:
    mode = "1080p" if detect is None else "sub-same-faces" if same_faces else "sub"
    label = f"{cameras} camera(s), {MODES[mode]}" + ("" if edition == "this" else f" [{edition}]")
    folder = tmp / f"{mode}-{cameras}-{edition}"
    folder.mkdir()
    subscriber = Subscriber(broker.port, topic="edged/#", client_id=f"bench-{folder.name}")
    notify_path = folder / "notify"
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(0.1)
    port = free_port()
    tables = ""
    for name in NAMES[:cameras]:
        # Separate files: two cameras may not read one source.
        main = folder / f"{name}.mp4"
        main.symlink_to(VIDEO)
        tables += f'[cameras.{name}]\nsource = "{main}"\n'
        if detect is not None:
            sub = folder / f"{name}-sub.mp4"
            sub.symlink_to(detect)
            tables += f'detect_source = "{sub}"\n'
    # On the 640x360 stream the same faces are a third of their 1080p size: the edge profile's
    # 40 px (detector and quality, in the detected picture's pixels) scaled alike finds the same.
    scaled = "min_face_size = 13.4\n" if same_faces else ""
    quality = "[quality]\nmin_face_px = 13.4\n" if same_faces else ""
    text = (f'[device]\nname = "bench"\n[camera]\nloop = true\n[detector]\ndetect_fps = {detect_fps}\n{scaled}'
            f'{quality}[recognition]\ngallery = "{folder / "gallery.db"}"\n[stream]\nport = {port}\n'
            f'[alerts]\nmode = "unknowns"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\nport = {broker.port}\n'
            f"stats_interval_s = 5.0\n{tables}")
    daemon = Daemon(folder / "daemon", text, env={"NOTIFY_SOCKET": str(notify_path)}, root=root)
    started = time.monotonic()
    daemon.start()

    def ready() -> bool:
        try:
            return "READY=1" in notify.recv(4096).decode()
        except TimeoutError:
            return False

    wait_until(ready, 180, "READY=1", step=0)
    to_ready = time.monotonic() - started
    assert daemon.process is not None
    time.sleep(5)  # sources open, the first frames decoded: measure the steady state
    run_from = time.time()
    cpu_from = cpu_seconds(daemon.process.pid)
    time.sleep(seconds)
    cpu = (cpu_seconds(daemon.process.pid) - cpu_from) / seconds * 100
    status = daemon.status(port) or {}
    rss = peak_rss_mb(daemon.process.pid)
    daemon.stop()
    subscriber.close()
    per_camera = {c["camera"]: {"wanted": c["stats"]["detect_fps_target"], "achieved": c["stats"]["fps"],
                                "camera_fps": c["stats"]["camera_fps"], "behind": c["stats"]["falling_behind"]}
                  for c in status.get("cameras", [])}
    # Latency: the alert's confirming frame was captured at body["time"]; the subscriber got it at receipt.
    received = [(json.loads(p), t) for t, p in subscriber.timed("/alerts") if p.startswith(b"{")]
    latency = [(t - body["time"]) * 1000 for body, t in received if body["time"] >= run_from]
    return {"label": label, "cameras": cameras, "mode": mode, "edition": edition,
            "start_to_ready_s": round(to_ready, 2), "per_camera": per_camera, "cpu_percent": round(cpu, 1),
            "peak_rss_mb": round(rss, 1), "alerts": len(latency),
            "alert_latency_ms_median": round(statistics.median(latency), 1) if latency else None,
            "alert_latency_ms_max": round(max(latency), 1) if latency else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="how long each run is measured once ready")
    parser.add_argument("--detect-fps", type=float, default=5.0)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier edged, run on the same runs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    editions = [("this", ROOT)] + ([(baseline_name(args.baseline), args.baseline)] if args.baseline else [])
    runs = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        detect = substream(tmp)
        broker = Mosquitto(tmp / "mosquitto")
        broker.start()
        try:
            streams = {"1080p": (None, False), "sub": (detect, False), "sub-same-faces": (detect, True)}
            for mode in args.modes:
                stream, same_faces = streams[mode]
                for cameras in args.cameras:
                    for edition, root in editions:
                        run = run_once(tmp, broker, cameras, stream, same_faces, args.seconds, args.detect_fps,
                                       root, edition)
                        runs.append(run)
                        print_run(run)
        finally:
            broker.stop()
    print_ratios([r for r in runs if r["edition"] == "this"])
    if args.baseline:
        print_against_baseline(runs)
    if args.json:
        args.json.write_text(json.dumps(runs, indent=2))
    return 0


def baseline_name(checkout: Path) -> str:
    """The baseline's commit, as the rows name it."""
    done = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True)
    return f"baseline {done.stdout.strip() or checkout.name}"


def print_against_baseline(runs: list[dict]) -> None:
    """This edged against the baseline, run for run: detections/s in total, the share of the
    machine's cores used, and CPU per detection."""
    cores = os.cpu_count() or 1
    print("\nagainst the baseline (same run):")
    for run in [r for r in runs if r["edition"] == "this"]:
        base = next((r for r in runs if r["edition"] != "this" and (r["cameras"], r["mode"])
                     == (run["cameras"], run["mode"])), None)
        if base is None:
            continue
        done = {name: sum(c["achieved"] for c in r["per_camera"].values())
                for name, r in (("this", run), ("base", base))}
        if not done["base"] or not done["this"]:
            continue
        print(f"  {run['label']}: detections/s in total {done['this']:.2f} against {done['base']:.2f} "
              f"(x{done['this'] / done['base']:.2f}); cores used {run['cpu_percent'] / cores:.0f}% against "
              f"{base['cpu_percent'] / cores:.0f}%; CPU per detection/s x"
              f"{(run['cpu_percent'] / done['this']) / (base['cpu_percent'] / done['base']):.2f}")


def print_run(run: dict) -> None:
    cameras = "; ".join(f"{name} {c['achieved']:.2f} of {c['wanted']:.1f}/s{' (behind)' if c['behind'] else ''}"
                        for name, c in run["per_camera"].items())
    print(f"{run['label']}: detections {cameras}")
    print(f"    CPU {run['cpu_percent']}% (of 100% per core), peak RSS {run['peak_rss_mb']} MB, "
          f"READY after {run['start_to_ready_s']} s, alert latency median {run['alert_latency_ms_median']} ms "
          f"(max {run['alert_latency_ms_max']} ms, {run['alerts']} alerts)", flush=True)


def print_ratios(runs: list[dict]) -> None:
    def find(cameras: int, mode: str) -> dict | None:
        return next((r for r in runs if r["cameras"] == cameras and r["mode"] == mode), None)

    print("\nratios (same run):")
    for mode in MODES:
        one, three = find(1, mode), find(3, mode)
        if one and three:
            print(f"  RSS 3 cameras / 1 camera, {MODES[mode]}: x{three['peak_rss_mb'] / one['peak_rss_mb']:.2f} "
                  "(goal <= 1.5)")
    for mode in ("sub", "sub-same-faces"):
        for cameras in (1, 2, 3):
            full, small = find(cameras, "1080p"), find(cameras, mode)
            if full and small:
                print(f"  CPU, 1080p / {MODES[mode]}, {cameras} camera(s): "
                      f"x{full['cpu_percent'] / small['cpu_percent']:.2f} (goal >= 2)")


if __name__ == "__main__":
    sys.exit(main())
