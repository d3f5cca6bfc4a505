#!/usr/bin/env python3
"""What P-Net's threshold at the edge defaults costs in faces and saves in CPU: the detector at
each threshold on every frame of the crowd video (in turn, frame by frame, one thread), against
facenet-pytorch's reference faces of 40 px and more (the edge defaults' smallest face), each
face lost against the first threshold with its size and score, and the photos of ../shared/data
where the count of faces changes.

    python3 tools/pnet_threshold.py [--thresholds 0.6,0.7,0.8]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edged.runtime import ModelStore  # noqa: E402
from edged.types import Faces  # noqa: E402
from edged.vision.boxes import iou_matrix  # noqa: E402
from edged.vision.detector import Detector, DetectorSettings  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
MIN_REFERENCE_PX = 40  # the edge defaults' min_face_size


def found(box: np.ndarray, faces: Faces) -> bool:
    return bool(len(faces)) and float(iou_matrix(box[None].astype(np.float32), faces.xyxy).max()) >= 0.5


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--thresholds", default="0.6,0.7,0.8", help="P-Net thresholds, the first the reference")
    args = parser.parse_args()
    thresholds = [float(t) for t in args.thresholds.split(",")]
    edge = DetectorSettings.edge()
    store = ModelStore()
    detectors = {t: Detector(store, replace(edge, thresholds=(t, *edge.thresholds[1:])), threads=1) for t in thresholds}
    reference = json.loads((DATA / "crowd_1080p_mtcnn_reference.json").read_text())["frames"]
    cpu = dict.fromkeys(thresholds, 0.0)
    faces_found = dict.fromkeys(thresholds, 0)
    reference_found = dict.fromkeys(thresholds, 0)
    lost: dict[float, list[str]] = {t: [] for t in thresholds}
    reference_count = 0
    capture = cv2.VideoCapture(str(DATA / "video" / "crowd_1080p.mp4"))  # decoded as the reference was
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        boxes = [np.array(f["box"]) for f in reference[index]["faces"] if f["box"][2] - f["box"][0] >= MIN_REFERENCE_PX]
        reference_count += len(boxes)
        results = {}
        for t, detector in detectors.items():
            started = time.process_time()
            results[t] = detector.detect(frame)
            cpu[t] += time.process_time() - started
            faces_found[t] += len(results[t])
            reference_found[t] += sum(found(box, results[t]) for box in boxes)
        first = results[thresholds[0]]
        for t in thresholds[1:]:
            lost[t] += [f"frame {index}: {b[2] - b[0]:.0f}x{b[3] - b[1]:.0f} px, score {s:.3f}"
                        for b, s in zip(first.xyxy, first.score, strict=True) if not found(b, results[t])]
        index += 1
    print(f"crowd video, {index} frames, edge defaults (1080p scaled to {edge.max_side} px, faces from "
          f"{edge.min_face_size:.0f} px), one thread; {reference_count} reference faces of {MIN_REFERENCE_PX} px "
          "or more")
    for t in thresholds:
        print(f"  P-Net {t}: {cpu[t] / index * 1000:.0f} ms CPU a frame (x{cpu[t] / cpu[thresholds[0]]:.2f}), "
              f"{faces_found[t]} faces, reference faces found {reference_found[t]}/{reference_count}")
        for line in lost[t]:
            print(f"    lost against {thresholds[0]}: {line}")
    photos = sorted((DATA / "images").glob("*.jpg")) + sorted((DATA / "faces").glob("*/*.jpg"))
    changed = []
    for photo in photos:
        image = cv2.imread(str(photo))
        if image is None:
            raise SystemExit(f"{photo}: cannot read it")
        counts = [len(detector.detect(image)) for detector in detectors.values()]
        if len(set(counts)) > 1:
            changed.append(f"{photo.relative_to(DATA)} {counts}")
    print(f"photos ({len(photos)}) whose count of faces changes: {'; '.join(changed) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
