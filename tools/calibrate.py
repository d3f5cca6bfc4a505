#!/usr/bin/env python3
"""Measures each embedder's match thresholds on ../shared/data/calibration and writes its
operating points (1% and 5% false accepts per stranger face at 20 enrolled people) into the
model's spec. Prints the table docs/recognition.md shows; see edged/calibration.py for the protocol."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edged.calibration import (  # noqa: E402
    CONFIDENCE_Z,
    OperatingPoint,
    TrialScores,
    TrialSettings,
    fit_threshold,
    mirror_average,
    operating_point,
    run_trials,
    same_person_floor,
    split_people,
    threshold_for,
)
from edged.engine import EngineOptions, FaceEngine  # noqa: E402
from edged.errors import EdgedError  # noqa: E402
from edged.types import Faces  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "calibration" / "faces"
SPECS = ROOT / "models" / "specs"
GALLERY_SIZES = (5, 20, 100)
FIT_SIZE = 20  # the gallery size the written operating points are fitted at
RATES = {"1%": 0.01, "5%": 0.05}
MARKER = "# -- measured by tools/calibrate.py; do not edit below by hand --"


@dataclass
class Embedded:
    """One embedding per calibration photo where a face was found, with its person."""

    vectors: np.ndarray  # (M, D)
    mirrored: np.ndarray  # (M, D) embeddings of the mirrored aligned crops
    labels: np.ndarray  # (M,) person names
    photos: int
    no_face: list[str]


def find_face(engine: FaceEngine, image: np.ndarray, where: str) -> tuple[np.ndarray, Faces] | None:
    """The largest confident face (a border added when the crop is too tight), or None."""
    try:
        framed, face, _ = engine.find_face(image, where)
    except EdgedError:
        return None
    return framed, face


def embed_photos(engine: FaceEngine, folder: Path, people_limit: int, seed: int) -> Embedded:
    people = sorted(p for p in folder.iterdir() if p.is_dir())
    if people_limit:
        order = np.random.default_rng(seed).permutation(len(people))[:people_limit]
        people = [people[i] for i in sorted(order)]
    embedder = engine.embedder_loaded()
    vectors, mirrored, labels, no_face = [], [], [], []
    photos = 0
    for person in people:
        for photo in sorted(person.glob("*.jpg")):
            photos += 1
            image = cv2.imread(str(photo))
            found = find_face(engine, image, str(photo)) if image is not None else None
            if found is None:
                no_face.append(str(photo.relative_to(folder)))
                continue
            crops = embedder.crops(*found)
            both = embedder.embed_crops(np.concatenate([crops, crops[:, :, ::-1]]))
            vectors.append(both[0])
            mirrored.append(both[1])
            labels.append(person.name)
    return Embedded(np.stack(vectors), np.stack(mirrored), np.array(labels), photos, no_face)


@dataclass(frozen=True)
class Variant:
    name: str
    enroll_photos: int
    matching: str
    mirror: bool


VARIANTS = (
    Variant("1 photo", 1, "max", False),
    Variant("1 photo, mirror-averaged", 1, "max", True),
    Variant("3 photos, best of", 3, "max", False),
    Variant("3 photos, mean embedding", 3, "mean", False),
)


def measure(data: Embedded, people: np.ndarray, variant: Variant, size: int, trials: int,
            seed: int) -> TrialScores | None:
    vectors = mirror_average(data.vectors, data.mirrored) if variant.mirror else data.vectors
    settings = TrialSettings(size, variant.enroll_photos, variant.matching, trials)
    return run_trials(vectors, data.labels, people, settings, seed)


def point_json(point: OperatingPoint) -> dict[str, object]:
    return {**asdict(point), "false_accept_rate": round(point.false_accept_rate, 5),
            "identification_rate": round(point.identification_rate, 5)}


def calibrate(data: Embedded, trials: int, seed: int) -> dict[str, object]:
    """Every variant and gallery size on the fitting half; the product's operating points
    (1 photo, best-of matching) fitted at 20 people and checked on the other half."""
    fit, check = split_people(data.labels, seed)
    table = []
    for variant in VARIANTS:
        for size in GALLERY_SIZES:
            scores = measure(data, fit, variant, size, trials, seed)
            if scores is None:
                continue
            row: dict[str, object] = {"variant": variant.name, "gallery_size": size, "trials": trials}
            for label, rate in RATES.items():
                row[label] = point_json(operating_point(scores, threshold_for(scores.stranger, rate)))
            table.append(row)
    product = VARIANTS[0]
    settings = TrialSettings(FIT_SIZE, product.enroll_photos, product.matching, trials)
    try:
        fits = {label: fit_threshold(data.vectors, data.labels, fit, settings, rate, seed)
                for label, rate in RATES.items()}
    except ValueError as exc:
        raise SystemExit(f"calibrate: {exc}") from exc
    checked = measure(data, check, product, FIT_SIZE, trials, seed + 1)
    if checked is None:
        raise SystemExit("calibrate: too few held-out people for 20-person galleries")
    points = {label: fitted.threshold for label, fitted in fits.items()}
    held_out = {label: point_json(operating_point(checked, t)) for label, t in points.items()}
    by_size = {}
    for size in GALLERY_SIZES:  # the fitted thresholds at every gallery size, on the other half
        scores = measure(data, check, product, size, trials, seed + 1)
        if scores is not None:
            by_size[size] = {label: point_json(operating_point(scores, t)) for label, t in points.items()}
    floor, pairs = same_person_floor(data.vectors, data.labels)
    return {"people": len(np.unique(data.labels)),
            "same_person_floor": floor, "same_person_pairs": pairs, "faces": len(data.labels), "photos": data.photos,
            "no_face": data.no_face, "fit_people": len(fit), "check_people": len(check), "seed": seed,
            "thresholds": points, "fits": {k: asdict(v) for k, v in fits.items()}, "held_out": held_out,
            "held_out_by_size": by_size, "table": table}


def fmt(point: dict[str, object]) -> str:
    return (f"{point['threshold']:.3f}: {100 * float(point['identification_rate']):.1f}% named "  # type: ignore[arg-type]
            f"({point['named_correctly']}/{point['genuine']}), {100 * float(point['false_accept_rate']):.2f}% "  # type: ignore[arg-type]
            f"false ({point['false_accepts']}/{point['strangers']})")


def print_report(name: str, result: dict[str, object]) -> None:
    print(f"\n## {name}: {result['faces']} faces of {result['people']} people "
          f"({len(result['no_face'])} photos without a face found, of {result['photos']}); "  # type: ignore[arg-type]
          f"fit on {result['fit_people']} people, checked on the other {result['check_people']}")
    print("\nFitting half, every variant (threshold: named correctly, strangers named as someone):\n")
    print("| enrollment | enrolled people | at 1% false accepts | at 5% false accepts |")
    print("| --- | --- | --- | --- |")
    for row in result["table"]:  # type: ignore[attr-defined]
        print(f"| {row['variant']} | {row['gallery_size']} | {fmt(row['1%'])} | {fmt(row['5%'])} |")
    thresholds = result["thresholds"]
    fits = result["fits"]
    print(f"\nOperating points fitted at {FIT_SIZE} enrolled people (1 photo each), each raised by "
          f"{CONFIDENCE_Z} times its spread over samples of people: " + ", ".join(
              f"{k} -> cosine {v:.3f} ({fits[k]['raw']:.3f} + {CONFIDENCE_Z} x {fits[k]['spread']:.4f})"  # type: ignore[index]
              for k, v in thresholds.items()))  # type: ignore[attr-defined]
    print(f"\nSame-person floor (a track's face below it against all its earlier faces splits the track): "
          f"cosine {result['same_person_floor']:.3f}, exceeded by 95% of {result['same_person_pairs']} pairs "
          f"of one person's photos")
    print("\nThose thresholds on the held-out people:\n")
    print("| enrolled people | false_accepts = \"1%\" | false_accepts = \"5%\" |")
    print("| --- | --- | --- |")
    for size, row in result["held_out_by_size"].items():  # type: ignore[attr-defined]
        print(f"| {size} | {fmt(row['1%'])} | {fmt(row['5%'])} |")


def write_spec(spec_path: Path, result: dict[str, object]) -> None:
    """Replaces the measured block at the end of a spec template (models/specs/NAME.toml)."""
    text = spec_path.read_text(encoding="utf-8")
    head = text.split(MARKER)[0].rstrip("\n")
    head = re.sub(r"(?m)^match_threshold\s*=.*\n?", "", head).rstrip("\n")
    points = result["thresholds"]
    held = result["held_out"]
    note = (f"calibration/faces {time.strftime('%Y-%m-%d')}: {result['faces']} faces, "
            f"{result['people']} people; fit on {result['fit_people']}, 20 enrolled x "
            f"1 photo; held-out false accepts at 1%: {held['1%']['false_accepts']}/"  # type: ignore[index]
            f"{held['1%']['strangers']}")  # type: ignore[index]
    block = [MARKER,
             f"match_threshold = {points['1%']:.3f}",  # type: ignore[index]
             f"threshold_1pct = {points['1%']:.3f}",  # type: ignore[index]
             f"threshold_5pct = {points['5%']:.3f}",  # type: ignore[index]
             f"same_person_floor = {result['same_person_floor']:.3f}",
             f"named_1pct = {float(held['1%']['identification_rate']):.4f}",  # type: ignore[index]
             f'calibration = "{note}"']
    spec_path.write_text(head + "\n\n" + "\n".join(block) + "\n", encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--embedder", action="append",
                        help="manifest name (repeatable; default: every installed embedder with a spec here)")
    parser.add_argument("--models-dir", type=Path, help="where the embedders are registered")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="one folder of photos per person")
    parser.add_argument("--people", type=int, default=0, help="a random subset of this many people (0: all)")
    parser.add_argument("--trials", type=int, default=20, help="random galleries per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true",
                        help="write the operating points into models/specs/NAME.toml (run setup again to register)")
    parser.add_argument("--json", type=Path, help="write every figure here ('-' for stdout)")
    return parser.parse_args(argv)


def installed_embedders(models_dir: Path | None) -> list[str]:
    from edged.runtime import ModelStore

    store = ModelStore(models_dir)
    return [n for n, s in sorted(store.specs.items()) if s.is_embedder and not s.untrained
            and s.path(store.models_dir).exists() and (SPECS / f"{n}.toml").exists()]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.data.is_dir():
        print(f"calibrate: no calibration photos at {args.data} (../shared/data/calibration/faces)", file=sys.stderr)
        return 2
    names = args.embedder or installed_embedders(args.models_dir)
    if not names:
        print("calibrate: no embedder installed: run tools/setup.sh first", file=sys.stderr)
        return 2
    results = {}
    for name in names:
        started = time.monotonic()
        engine = FaceEngine(EngineOptions(args.models_dir, name))
        data = embed_photos(engine, args.data, args.people, args.seed)
        result = calibrate(data, args.trials, args.seed)
        result["model_id"] = engine.embedder_spec.model_id
        result["seconds"] = round(time.monotonic() - started, 1)
        results[name] = result
        print_report(f"{name} ({result['model_id']})", result)
        if args.write:
            write_spec(SPECS / f"{name}.toml", result)
            print(f"\nwrote the operating points into {SPECS / (name + '.toml')}")
    if args.json:
        text = json.dumps(results, indent=2)
        if str(args.json) == "-":
            print(text)
        else:
            args.json.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
