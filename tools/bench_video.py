#!/usr/bin/env python3
"""Benchmark of `edged scan`: speed against real time, embeddings per frame with and without
re-identification back-off, identity switches, on the crowd video (1080p and 640x360) and on
scenario videos with exact truth. Prints figures and ratios measured in the same run.
`--baseline CHECKOUT` then scans each row's video with this edged's `edged scan` and an earlier
one's (a `git worktree` of an older commit), in turn, and prints the speed ratios."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from scenarios import DATA, Actor, Appearance, render, walk  # noqa: E402

from edged.engine import EngineOptions, FaceEngine  # noqa: E402
from edged.gallery import Gallery  # noqa: E402
from edged.io.images import load_image  # noqa: E402
from edged.scan import DEFAULT_DETECT_FPS, ScanResult, scan_video  # noqa: E402
from edged.tracking.faces import TrackingSettings  # noqa: E402
from edged.tracking.reid import ReidSettings  # noqa: E402
from edged.vision.detector import DetectorSettings  # noqa: E402

CROWD = DATA / "video" / "crowd_1080p.mp4"
ENROLLED = [("obama", "obama.jpg"), ("biden", "biden.jpg"), ("rose_leslie", "img1.jpg"),
            ("kit_harington", "john1.jpeg")]
CROSSING = [
    Actor("obama", "obama2.jpg", (walk(10, 140, 20, 480),)),
    Actor("biden", "biden2.jpg", (walk(20, 150, 480, 40, y=150),)),
    Actor("rose_leslie", "img2.jpg", (walk(60, 170, 520, 420, y=230),)),
    Actor("paul_rudd", "1.jpg", (walk(0, 60, 250, 300, y=10), walk(120, 190, 300, 250, y=10))),
]
LONG = [  # 20 seconds, everyone stays in view
    Actor("kit_harington", "john2.jpeg", (Appearance(0, 499, (30, 60), (200, 80)),)),
    Actor("obama", "obama2.jpg", (Appearance(0, 499, (480, 60), (330, 90)),)),
    Actor("paul_rudd", "1.jpg", (Appearance(0, 499, (250, 200), (260, 220)),)),
]


def downscaled(source: Path, target: Path, size: tuple[int, int]) -> Path:
    capture = cv2.VideoCapture(str(source))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"mp4v"), capture.get(cv2.CAP_PROP_FPS), size)
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        writer.write(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    writer.release()
    return target


def scan(engine: FaceEngine, gallery_file: Path, video: Path, every: int, back_off: bool) -> ScanResult:
    settings = TrackingSettings(detector=engine.detector.settings, reid=ReidSettings(enabled=back_off))
    with Gallery(gallery_file) as gallery:
        return scan_video(video, engine, gallery, every, settings)


def row(label: str, result: ScanResult) -> dict[str, object]:
    speed = result.duration / result.processing_seconds
    names = sorted(p.name for p in result.people)
    fewer = result.faces_per_frame / max(result.embeddings_per_frame, 1e-9)
    print(f"{label:44s} {speed:5.2f}x real time  {result.embeddings_per_frame:6.3f} emb/frame "
          f"(faces/frame {result.faces_per_frame:4.2f}, x{fewer:5.1f} fewer)  "
          f"switches {result.identity_switches}  tracks {result.confirmed_tracks}  people {names}")
    return {"speed_vs_real_time": speed, "embeddings_per_frame": result.embeddings_per_frame,
            "faces_per_frame": result.faces_per_frame, "identity_switches": result.identity_switches,
            "confirmed_tracks": result.confirmed_tracks, "people": names}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--baseline", type=Path, help="a checkout of an earlier edged: its bench_video.py runs too")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of scans against the baseline (medians)")
    args = parser.parse_args()
    engine = FaceEngine(EngineOptions(embedder="mobilefacenet",
                                      detector=DetectorSettings.edge()))
    report: dict[str, object] = {"embedder": engine.embedder_spec.model_id}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        gallery_file = tmp / "gallery.db"
        with Gallery(gallery_file) as gallery:
            for person, photo in ENROLLED:
                path = DATA / "faces" / person / photo
                vector, _ = engine.embed_for_enroll(load_image(path), str(path))
                gallery.enroll(person, vector[None], engine.embedder_loaded().model_id, str(path))
        every = round(25 / DEFAULT_DETECT_FPS)
        small = downscaled(CROWD, tmp / "crowd_360p.mp4", (640, 360))
        crossing = render(tmp / "crossing.mp4", CROSSING, 200, engine.detector)
        long = render(tmp / "long.mp4", LONG, 500, engine.detector)
        print(f"embedder {engine.embedder_spec.model_id}; edge detector defaults; default detection every {every} "
              f"frames ({DEFAULT_DETECT_FPS:g}/s)\n")
        rows = {}
        scans = [("crowd 1080p, default", CROWD, every), ("crowd 640x360, default", small, every),
                 ("crowd 1080p, every 3rd frame", CROWD, 3),
                 ("crossing scenario 640x360 (8 s), every 2nd", crossing, 2),
                 ("long scenario 640x360 (20 s), every frame", long, 1)]
        for label, video, n in scans:
            results = {}
            for back_off in (True, False):
                key = f"{label}, back-off {'on' if back_off else 'off'}"
                results[back_off] = scan(engine, gallery_file, video, n, back_off)
                rows[key] = row(key, results[back_off])
            cut = results[False].embeddings / max(results[True].embeddings, 1)
            same = sorted(p.name for p in results[True].people) == sorted(p.name for p in results[False].people)
            rows[f"{label}, back-off"] = {"embedding_cut": cut, "same_people": same}
            print(f"{'':44s} back-off alone: x{cut:.1f} fewer embeddings, same people: {same}")
        report["scans"] = rows
        if args.baseline:
            report["baseline"] = against_baseline(args.baseline, scans, gallery_file, args.rounds)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def processing_seconds(document: object) -> float:
    """The scan's own time, wherever its JSON keeps it."""
    if isinstance(document, dict):
        if "processing_seconds" in document:
            return float(document["processing_seconds"])
        document = list(document.values())
    if isinstance(document, list):
        for item in document:
            try:
                return processing_seconds(item)
            except KeyError:
                continue
    raise KeyError("processing_seconds")


def against_baseline(checkout: Path, scans: list[tuple[str, Path, int]], gallery_file: Path,
                     rounds: int = 2) -> dict[str, float]:
    """Each row's video scanned by this checkout's `edged scan` and the baseline's, in turn,
    `rounds` times (so a busy moment of the machine slows both alike): the ratio of their
    median scanning times as each scan reports it (`processing_seconds`: models loaded)."""
    print(f"\nspeed against the baseline ({checkout}), `edged scan` of each, in turn, {rounds} rounds:", flush=True)
    times: dict[tuple[str, str], list[float]] = {}
    for round_ in range(rounds):
        for label, video, every in scans:
            for side, root in (("this", ROOT), ("baseline", checkout)):
                gallery = gallery_file.with_name(f"{side}-{round_}-{len(times)}.db")
                gallery.write_bytes(gallery_file.read_bytes())
                said = gallery.with_suffix(".json")
                subprocess.run([sys.executable, "-m", "edged.cli", "scan", str(video), "--edge", "--every", str(every),
                                "--embedder", "mobilefacenet", "--gallery", str(gallery), "--json", str(said)],
                               cwd=root, check=True, capture_output=True)
                times.setdefault((label, side), []).append(processing_seconds(json.loads(said.read_text())))
    ratios = {}
    for label, _, _ in scans:
        ours, theirs = statistics.median(times[(label, "this")]), statistics.median(times[(label, "baseline")])
        ratios[label] = theirs / ours
        print(f"  {label:44s} {ours:6.1f} s against {theirs:6.1f} s: x{ratios[label]:.2f} the speed")
    return ratios


if __name__ == "__main__":
    sys.exit(main())
