#!/usr/bin/env python3
"""What sharing a gallery over the fleet costs: a box holding N people (default 1,000) with 3
faces each and a picture publishes them to a real Mosquitto; then a new box joins with an
empty gallery. Printed: the time the first box takes to publish, the bytes the broker holds,
the time the new box takes to catch up (every person in its gallery), and the new box's peak
RSS; against the baseline measured in the same run, the way across without a fleet: exporting
the gallery to a file (`edged gallery export`) and importing it on the other box (`gallery
import`), which carries no pictures, names no strangers and merges nothing.

Embeddings are random unit vectors of the default embedder's size (the merge never looks at
their values); pictures are 160 px JPEGs made from ../shared's calibration faces.

    .venv/bin/python tools/bench_fleet.py [--people 1000] [--json out.json]"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from services import Mosquitto, Subscriber, wait_until  # noqa: E402

from edged.config import MqttConfig  # noqa: E402
from edged.gallery import Gallery  # noqa: E402

CALIBRATION = ROOT.parent / "shared" / "data" / "calibration" / "faces"
KEY = "bench-fleet-key-0123456789abcdef"
MODEL = "bench-model@1"
DIMENSION = 128
FLEET = "bench"


def build_gallery(path: Path, people: int, faces: int) -> None:
    import cv2

    from edged.vision.pictures import card_jpeg

    photos = [cv2.imread(str(p)) for p in sorted(CALIBRATION.glob("*/*.jpg"))[:300]]
    pictures = [card_jpeg(p) for p in photos if p is not None] or [card_jpeg(np.zeros((160, 160, 3), np.uint8))]
    rng = np.random.default_rng(1)
    with Gallery(path) as gallery:
        for i in range(people):
            vectors = rng.normal(size=(faces, DIMENSION)).astype(np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            name = f"person {i:04d}"
            gallery.enroll(name, vectors, MODEL, "bench")
            gallery.set_picture(name, pictures[i % len(pictures)], 0.5)


def settings(port: int) -> MqttConfig:
    return MqttConfig(enabled=True, host="127.0.0.1", port=port, key=KEY)


def join(port: int, gallery_path: Path, people: int, box: str) -> dict[str, float]:
    """A box with `gallery_path` joining: seconds until it holds `people` people; its peak RSS."""
    from edged.fleet.link import FleetLink

    gallery = Gallery(gallery_path)
    start = time.perf_counter()
    link = FleetLink(gallery, settings(port), FLEET, box)
    link.start()
    wait_until(lambda: len(gallery.person_ids()) >= people, 600, f"{people} people on the new box", step=0.05)
    caught_up = time.perf_counter() - start
    link.stop()
    return {"seconds": caught_up, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def import_export(export: Path, gallery_path: Path) -> dict[str, float]:
    """The baseline: an export file imported into an empty gallery."""
    start = time.perf_counter()
    with Gallery(gallery_path) as gallery:
        count = gallery.import_file(export, MODEL, DIMENSION)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "embeddings": count}


def in_child(*args: str) -> dict[str, float]:
    """One of the measurements above in a process of its own (its RSS is its own)."""
    answer = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=900)
    if answer.returncode != 0:
        raise RuntimeError(answer.stderr[-3000:])
    return json.loads(answer.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--faces", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--join", nargs=3, metavar=("PORT", "GALLERY", "PEOPLE"), help=argparse.SUPPRESS)
    parser.add_argument("--import-file", nargs=2, metavar=("EXPORT", "GALLERY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.join:
        print(json.dumps(join(int(args.join[0]), Path(args.join[1]), int(args.join[2]), "new-box")))
        return 0
    if args.import_file:
        print(json.dumps(import_export(Path(args.import_file[0]), Path(args.import_file[1]))))
        return 0

    from edged.fleet.link import FleetLink

    with tempfile.TemporaryDirectory(prefix="edged-bench-fleet-") as tmp:
        folder = Path(tmp)
        print(f"building a gallery of {args.people} people with {args.faces} faces and a picture each ...",
              file=sys.stderr)
        build_gallery(folder / "first.db", args.people, args.faces)
        broker = Mosquitto(folder / "mosquitto")
        broker.start()
        try:
            gallery = Gallery(folder / "first.db")
            start = time.perf_counter()
            first = FleetLink(gallery, settings(broker.port), FLEET, "first-box")
            first.start()
            wait_until(lambda: first.status()["unpublished"] == 0 and first.status()["records"] >= args.people,
                       600, "the first box's records on the broker", step=0.05)
            published_s = time.perf_counter() - start
            print(f"published in {published_s:.1f} s; reading what the broker holds ...", file=sys.stderr)
            reader = Subscriber(broker.port, f"edged/fleet/{FLEET}/people/#", client_id="bench-reader")
            wait_until(lambda: len(reader.messages) >= args.people, 120, "the retained records", step=0.05)
            time.sleep(1.0)
            broker_bytes = sum(len(payload) for _, payload, _ in reader.messages)
            records = len({topic for topic, _, _ in reader.messages})
            reader.close()
            print("a new box joins ...", file=sys.stderr)
            joined = in_child("--join", str(broker.port), str(folder / "new.db"), str(args.people))
            first.stop()
            gallery.close()
        finally:
            broker.stop()
        export = folder / "export.json"
        with Gallery(folder / "first.db") as gallery:
            start = time.perf_counter()
            gallery.export(export, MODEL)
            exported_s = time.perf_counter() - start
        imported = in_child("--import-file", str(export), str(folder / "imported.db"))
        figures = {
            "people": args.people, "faces_per_person": args.faces, "dimension": DIMENSION,
            "publish_s": round(published_s, 2), "broker_bytes": broker_bytes, "broker_records": records,
            "catch_up_s": round(joined["seconds"], 2), "new_box_rss_mb": round(joined["rss_mb"], 1),
            "baseline_export_s": round(exported_s, 2), "baseline_import_s": round(imported["seconds"], 2),
            "baseline_file_bytes": export.stat().st_size, "baseline_import_rss_mb": round(imported["rss_mb"], 1),
        }
    rows = [
        ("publish (first box)", f"{figures['publish_s']:.1f} s", f"export {figures['baseline_export_s']:.2f} s"),
        ("bytes", f"{broker_bytes / 1e6:.1f} MB on the broker ({records} records)",
         f"{figures['baseline_file_bytes'] / 1e6:.1f} MB export file (no pictures)"),
        ("catch up (new box)", f"{figures['catch_up_s']:.1f} s", f"import {figures['baseline_import_s']:.2f} s"),
        ("peak RSS (new box)", f"{figures['new_box_rss_mb']:.0f} MB", f"{figures['baseline_import_rss_mb']:.0f} MB"),
    ]
    print(f"\nfleet sync of {args.people} people x {args.faces} faces ({DIMENSION}-d) and a picture each\n")
    print("| | fleet | baseline: export + import |\n| --- | --- | --- |")
    for row in rows:
        print(f"| {row[0]} | {row[1]} | {row[2]} |")
    print(f"\nratios: catch-up x{figures['catch_up_s'] / max(figures['baseline_import_s'], 1e-3):.1f} of the import; "
          f"bytes x{broker_bytes / figures['baseline_file_bytes']:.1f} of the export file")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
