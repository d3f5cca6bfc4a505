"""The `edged` command line: argument parsing and output only; the work is in the library."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edged import __version__
from edged.api import Face, Faces
from edged.config import CONFIG_EXIT, load_config, needs_cameras, show
from edged.engine import EngineOptions, FaceEngine
from edged.errors import ConfigError, EdgedError, GalleryError, ImageError, ModelError
from edged.gallery import Gallery
from edged.io.image_header import image_dimensions
from edged.io.images import load_image
from edged.io.s3 import fetched
from edged.manifest import choose_embedder, default_reason, installed_embedders
from edged.names import check_person_name
from edged.paths import default_gallery
from edged.report import write_report
from edged.runtime import ModelStore, available_providers, choose_providers
from edged.scan import DEFAULT_DETECT_FPS, ScanProgress, ScanResult, detect_every, scan_video
from edged.tracking.faces import TrackingSettings
from edged.vision.detector import DetectorSettings
from edged.vision.draw import KNOWN, PLAIN, UNKNOWN, draw_face

JSON_VERSION = 1


def _say(message: str) -> None:
    print(f"edged: {message}", file=sys.stderr)


def _engine(args: argparse.Namespace, need_embedder: bool = True, video: bool = False) -> FaceEngine:
    """Photos get facenet-pytorch's detector settings, videos the edge defaults, unless told."""
    # A command without an option group (`detect` matches nothing) gets its defaults.
    given = vars(args)
    profile = given.get("detector") or ("edge" if video else "facenet")
    settings = DetectorSettings.edge() if profile == "edge" else DetectorSettings()
    min_face, max_side = given.get("min_face"), given.get("max_side")
    if min_face is not None or max_side is not None:
        settings = DetectorSettings(
            min_face_size=min_face if min_face is not None else settings.min_face_size,
            max_side=max_side if max_side is not None else settings.max_side)
    engine = FaceEngine(EngineOptions(args.models_dir, given.get("embedder"), settings, given.get("threads", 0),
                                      match_threshold=given.get("threshold", 0.0),
                                      false_accepts=given.get("false_accepts", "1%")),
                        need_embedder=need_embedder)
    _say(engine.describe_embedder())
    if need_embedder:
        _say(engine.describe_threshold())
    return engine


def _check_video(source: str, option: str = "") -> None:
    """Before any model loads: a folder, a photo or a missing file is named for what it is."""
    if source.startswith("s3://"):
        return  # fetched later; a missing object says so then
    path = Path(source)
    what = f"{option} {source}" if option else source
    if path.is_dir():
        raise EdgedError(f"{what} is a folder: give one video file (scan each file in turn)")
    if not path.is_file():
        raise EdgedError(f"{what}: no such file")
    with path.open("rb") as file:
        head = file.read(64 * 1024)
    if image_dimensions(head) is not None:
        raise EdgedError(f"{what} is a still image, not a video: `edged identify {source}` names the faces "
                         "in a photo")


def _check_report(folder: Path | None) -> None:
    if folder is not None and folder.exists() and not folder.is_dir():
        raise EdgedError(f"--report {folder}: exists and is not a folder; give a folder for the report")


def _check_images(paths: list[Path]) -> None:
    """Models take seconds to load: when no photo can be read, say so first."""
    if paths and not any(path.is_file() for path in paths):
        raise EdgedError(f"{', '.join(str(p) for p in paths)}: no such file" if len(paths) == 1 else
                         f"none of the {len(paths)} photos is a file: {', '.join(str(p) for p in paths[:5])}")


def _gallery(args: argparse.Namespace) -> Gallery:
    return Gallery(args.gallery or default_gallery())


def _label(face: Face, named: bool) -> tuple[str, tuple[int, int, int]]:
    if not named:
        return f"{face.score:.2f}", PLAIN
    if face.person:
        return f"{face.person} {face.similarity or 0:.2f}", KNOWN
    return f"unknown {face.similarity or 0:.2f}", UNKNOWN


def _annotate(image_path: Path, image: object, faces: list[Face], named: bool, out: Path, many: bool) -> None:
    canvas = image.copy()  # type: ignore[attr-defined]
    for face in faces:
        label, color = _label(face, named)
        draw_face(canvas, np.asarray(face.box, np.float32), np.asarray(face.landmarks, np.float32), label, color)
    target = out / f"{image_path.stem}.annotated.jpg" if many else out
    target.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(target), canvas):
        raise EdgedError(f"{target}: cannot write the annotated image (unknown extension?)")


def _per_image(args: argparse.Namespace, faces: Faces, named: bool) -> int:
    """detect / identify, through the Python API: one result per image; a bad image is
    reported and the rest go on."""
    results: list[dict[str, object]] = []
    failed = 0
    many = len(args.images) > 1
    for path in args.images:
        try:
            image = load_image(path)
            found = faces.identify(image) if named else faces.detect(image)
        except ImageError as exc:
            failed += 1
            _say(str(exc))
            results.append({"file": str(path), "error": str(exc)})
            continue
        if args.annotate:
            _annotate(path, image, found, named, args.annotate, many)
        results.append({"file": str(path), "width": image.shape[1], "height": image.shape[0],
                        "faces": [{k: v for k, v in f.to_json().items() if named or k not in ("person", "similarity")}
                                  for f in found]})
        if not args.json:
            print(f"{path}: {len(found)} face(s)")
            for f in found:
                box = ", ".join(f"{v:.0f}" for v in f.box)
                who = f"  {f.person or 'unknown'} (similarity {f.similarity or 0:.3f})" if named else ""
                print(f"  [{box}] score {f.score:.3f}{who}")
    if args.json:
        document: dict[str, object] = {"version": JSON_VERSION, "images": results}
        if named:
            document["embedder"] = faces.model_id
            document["threshold"] = faces.threshold
        print(json.dumps(document, indent=2))
    return 1 if failed else 0


def cmd_detect(args: argparse.Namespace) -> int:
    _check_images(args.images)
    return _per_image(args, Faces(engine=_engine(args, need_embedder=False)), named=False)


def cmd_identify(args: argparse.Namespace) -> int:
    _check_images(args.images)
    engine = _engine(args)
    with _gallery(args) as gallery:
        return _per_image(args, Faces(gallery, engine), named=True)


def _spans(spans: list[tuple[float, float]]) -> str:
    return ", ".join(f"{start:.2f}-{end:.2f}s" for start, end in spans)


def _enroll_from_video(args: argparse.Namespace, engine: FaceEngine) -> int:
    """Scans the video, picks the person (the only one, or --person), enrolls their best faces.

    It says where on screen each kept face comes from (and --report draws the scan), so that
    enrolling the wrong person shows before it is done; --dry-run stops there."""
    embedder = engine.embedder_loaded()
    with _gallery(args) as gallery, fetched(str(args.from_video)) as local:
        every = args.every or detect_every(local, args.detect_fps)
        result = scan_video(local, engine, gallery, every, TrackingSettings(detector=engine.detector.settings),
                            source=str(args.from_video), progress=ScanProgress())
        if args.report:
            write_report(result, args.report)
            _say(f"report: {args.report / 'index.html'}")
        if args.person:
            chosen = [p for p in result.people if p.name == args.person]
        else:
            chosen = result.people if len(result.people) == 1 else []
        if not chosen:
            wanted = f"'{args.person}' is not" if args.person else "not exactly one person is"
            raise EdgedError(f"{args.from_video}: {wanted} in the video; found: "
                             + ("; ".join(f"{p.name} at {_spans([(i.start, i.end) for i in p.intervals])}"
                                          for p in result.people) or "nobody")
                             + ("" if args.person else "; pick one with --person"))
        person = chosen[0]
        print(f"{person.name} is on screen at {_spans([(i.start, i.end) for i in person.intervals])}")
        for number, span in enumerate(person.vector_spans, 1):
            print(f"  face {number}: from the track on screen at {_spans([span])}")
        if args.dry_run:
            print(f"dry run: would enroll these {len(person.vectors)} face(s) as '{args.name}'; nothing was changed")
            return 0
        if person.anonymous and not person.new:
            gallery.name_anonymous(person.name, args.name)  # the stranger's history follows the name
        gallery.enroll(args.name, person.vectors, embedder.model_id, str(args.from_video))
        print(f"enrolled {len(person.vectors)} face(s) of {person.name} from {args.from_video} as '{args.name}' "
              f"in {gallery.path}")
    return 0


def cmd_enroll(args: argparse.Namespace) -> int:
    if args.from_video:
        if args.images:
            raise EdgedError("give photos or --from-video, not both")
        _check_video(str(args.from_video), "--from-video")
        _check_report(args.report)
        return _enroll_from_video(args, _engine(args, video=True))
    if not args.images:
        raise EdgedError("enroll needs photos, or --from-video VIDEO")
    if args.report or args.dry_run or args.person:
        raise EdgedError("--person, --report and --dry-run go with --from-video")
    _check_images(args.images)
    check_person_name(args.name)  # before any model loads
    engine = _engine(args)
    enrolled = failed = 0
    with _gallery(args) as gallery:
        faces = Faces(gallery, engine)  # the Python API, as the HTTP API enrolls
        for path in args.images:
            try:
                done = faces.enroll(args.name, path)
            except EdgedError as exc:
                failed += 1
                _say(str(exc))
                continue
            if done.note:
                _say(done.note)
            enrolled += 1
        print(f"enrolled {enrolled} photo(s) as '{args.name}' in {gallery.path}"
              + (f"; {failed} photo(s) failed (see above)" if failed else ""))
    return 1 if failed else 0


def cmd_correct(args: argparse.Namespace) -> int:
    """`gallery reject|confirm`: the owner's corrections, applied at once (a running daemon
    sees them at its next match)."""
    from edged import corrections

    engine = _engine(args)
    with _gallery(args) as gallery:
        outcome = corrections.apply(gallery, engine, args.media or gallery.path.parent / "media", args.action,
                                    args.name, event=args.event, photo=args.photo, stranger=args.stranger)
    print(outcome.message)
    return 0 if outcome.ok else 1


def cmd_gallery_stats(args: argparse.Namespace) -> int:
    from edged.corrections import in_situ_false_accepts

    engine = _engine(args, need_embedder=False)
    spec = engine.embedder_spec
    with _gallery(args) as gallery:
        people = gallery.people()
        estimate = in_situ_false_accepts(gallery, spec.model_id, engine.match_threshold)
        negatives = {p.name: gallery.negatives(p.name) for p in people}
    enrolled = [p for p in people if not p.anonymous]
    document = {"version": JSON_VERSION, "gallery": str(gallery.path), "model_id": spec.model_id,
                "enrolled": len(enrolled), "strangers": len(people) - len(enrolled),
                "negatives": sum(negatives.values()), "false_accepts_in_situ": estimate.to_json(),
                "calibration": spec.calibration or None}
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(f"{gallery.path}: {len(enrolled)} enrolled, {document['strangers']} strangers (unknown-N), "
          f"{document['negatives']} face(s) marked 'not X'")
    print(f"  {engine.describe_threshold()}")
    if estimate.faces:
        print(f"  this box's own strangers: {estimate.false_accepts} of their {estimate.faces} faces "
              f"({100 * (estimate.rate or 0):.1f}%) would be named as an enrolled person at "
              f"{estimate.threshold:.3f} (a lower bound: strangers who were named never became unknown-N)")
    else:
        print("  no strangers seen yet: no estimate from this box's own faces")
    return 0


def cmd_gallery(args: argparse.Namespace) -> int:
    store = ModelStore(args.models_dir)
    try:
        spec = choose_embedder(store.specs, store.models_dir, args.embedder)
    except EdgedError:
        if args.action in ("export", "import"):
            raise
        spec = None
    _say(f"embedder in use: {spec.name} (id {spec.model_id})" if spec else "embedder in use: none installed")
    with _gallery(args) as gallery:
        if args.action == "list":
            people = gallery.people()
            if args.json:
                print(json.dumps({"version": JSON_VERSION, "gallery": str(gallery.path), "people": [
                    {"name": p.name, "anonymous": p.anonymous, "embeddings": p.embeddings, "sightings": p.sightings}
                    for p in people]}, indent=2))
            else:
                print(f"{gallery.path}: {len(people)} people")
                for p in people:
                    counts = ", ".join(f"{n} by {m}" for m, n in sorted(p.embeddings.items())) or "none"
                    seen = f", {p.sightings} sighting(s)" if p.sightings else ""
                    print(f"  {p.name}{' (anonymous)' if p.anonymous else ''}: {counts}{seen}")
        elif args.action == "remove":
            print(f"removed '{args.name}' ({Faces(gallery).delete(args.name)} embeddings)")
        elif args.action == "name":
            moved = gallery.name_anonymous(args.anonymous, args.name)
            print(f"named '{args.anonymous}' '{args.name}' ({moved} embeddings and all sightings moved)")
        elif args.action == "rename":
            Faces(gallery).rename(args.old, args.new)
            print(f"renamed '{args.old}' to '{args.new}'")
        else:
            assert spec is not None
            if args.action == "export":
                count = gallery.export(args.file, spec.model_id)
                print(f"exported {count} embeddings of model {spec.model_id} to {args.file}")
            else:
                count = gallery.import_file(args.file, spec.model_id, spec.output_size)
                print(f"imported {count} new embeddings from {args.file}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    store = ModelStore(args.models_dir)
    try:
        chosen = choose_embedder(store.specs, store.models_dir, args.embedder)
        default: str | None = chosen.name
        why = ("asked for with --embedder" if args.embedder
               else default_reason(chosen, installed_embedders(store.specs, store.models_dir)))
    except EdgedError:
        default, why = None, ""
    _say(f"embedder in use: {default or 'none installed'}" + (f" ({why})" if why else ""))
    available = available_providers()
    runs_on = choose_providers(("auto",), available)[0]
    rows: list[dict[str, object]] = []
    for name, spec in sorted(store.specs.items()):
        present = spec.path(store.models_dir).exists()
        rows.append({"name": name, "kind": spec.kind, "id": spec.model_id, "file": str(spec.path(store.models_dir)),
                     "installed": present, "default": name == default, "input_size": list(spec.input_size),
                     "channel_order": spec.channel_order, "mean": list(spec.mean), "std": list(spec.std),
                     "crop": spec.crop or None, "output_size": spec.output_size or None,
                     "match_threshold": spec.match_threshold if spec.is_embedder else None,
                     "threshold_1pct": spec.threshold_1pct or None, "threshold_5pct": spec.threshold_5pct or None,
                     "named_1pct": spec.named_1pct or None,
                     "calibration": spec.calibration or None})
    if args.json:
        print(json.dumps({"version": JSON_VERSION, "models_dir": str(store.models_dir), "models": rows,
                          "providers_available": available, "provider_auto": runs_on}, indent=2))
        return 0
    print(f"ONNX Runtime providers here: {', '.join(available)}; with providers = [\"auto\"] models run on "
          f"{runs_on} (the daemon's log and /status say what each model really got)")
    print(f"models (from {' and '.join(str(m) for m in store.manifests)}):")
    for r in rows:
        state = "installed" if r["installed"] else "MISSING"
        mark = "  (default embedder)" if r["default"] else ""
        print(f"  {r['name']:<30} {r['kind']:<11} {state:<9} {r['id']}{mark}")
        if r["kind"] == "embedder":
            size = "x".join(str(v) for v in r["input_size"])  # type: ignore[attr-defined]
            print(f"      input {size} {r['channel_order']}, (x - {r['mean']}) / {r['std']}, "
                  f"{r['crop']} crop, {r['output_size']}-d, match at cosine >= {r['match_threshold']}")
            if r["calibration"]:
                print(f"      1% false accepts at {r['threshold_1pct']}, 5% at {r['threshold_5pct']} "
                      f"({r['calibration']})")
            else:
                print("      not calibrated: false-accept rate unknown (tools/calibrate.py)")
    return 0


def _print_scan(result: ScanResult) -> None:
    speed = result.duration / result.processing_seconds if result.processing_seconds else 0.0
    print(f"{result.video}: {result.frames} frames ({result.duration:.1f} s) in {result.processing_seconds:.1f} s "
          f"({speed:.1f}x real time); detection every {result.detect_every} frame(s), "
          f"{result.embeddings} embeddings ({result.embeddings_per_frame:.3f} per frame)")
    if not result.people:
        print("  nobody")
    for person in result.people:
        label = person.name + (" (new stranger; --enroll keeps an unknown-N id)" if person.new else "")
        spans = ", ".join(f"{i.start:.2f}-{i.end:.2f}s (frames {i.first_frame}-{i.last_frame})"
                          for i in person.intervals)
        print(f"  {label}: {spans}; {len(person.tracks)} track(s)")
    if result.unidentified_tracks:
        print(f"  and {result.unidentified_tracks} track(s) whose faces were never good enough to identify")
    if result.scene_cuts:
        print(f"  {len(result.scene_cuts)} scene cut(s), every track ended there: "
              + ", ".join(f"{t:.2f}s" for t in result.scene_cuts))


def cmd_scan(args: argparse.Namespace) -> int:
    _check_video(str(args.video))
    _check_report(args.report)
    engine = _engine(args, video=True)
    settings = TrackingSettings(detector=engine.detector.settings)
    with _gallery(args) as gallery, fetched(str(args.video)) as local:
        every = args.every or detect_every(local, args.detect_fps)
        result = scan_video(local, engine, gallery, every, settings, enroll=args.enroll,
                            source=str(args.video), progress=ScanProgress())
        thumbnails = write_report(result, args.report) if args.report else None
        document = json.dumps(result.to_json(thumbnails), indent=2)
        if args.json == "-":
            print(document)
        else:
            if args.json:
                Path(args.json).write_text(document + "\n", encoding="utf-8")
            _print_scan(result)
        if args.report:
            _say(f"report: {args.report / 'index.html'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from edged.memory import tune_allocator

    tune_allocator()  # first, before the daemon's threads and frames allocate anything
    from edged.daemon import Daemon, setup_logging

    setup_logging()
    try:
        daemon = Daemon(args.config)
    except (GalleryError, ModelError) as exc:  # the owner's to fix: a restart would fail the same way
        raise ConfigError(str(exc)) from None
    except EdgedError:
        raise
    except Exception as exc:  # one line, never a hang or a page of traceback; the details at debug level
        logging.getLogger("edged").debug("start-up failed", exc_info=True)
        raise EdgedError(f"cannot start: {type(exc).__name__}: {exc}") from None
    code = daemon.run()
    # Everything is stopped, flushed and closed by now. Leaving through the interpreter's
    # teardown runs C++ destructors (ONNX Runtime's thread pool, OpenCV's) while native threads
    # may still wind down, and once, under load, that aborted ("terminate called without an
    # active exception", exit -6) after a clean stop; leave at once instead.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _who(event: dict[str, Any]) -> str:
    """As the page says it: a name, unknown-N, or not yet identified (no answer yet)."""
    person = event.get("person")
    if isinstance(person, str):
        return person
    return "not yet identified" if event.get("identified") is False or event.get("reason") == "unidentified" \
        else "unknown"


def cmd_status(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    url = args.url
    if url is None:
        config = load_config(args.config)
        url = f"http://{config.stream.bind}:{config.stream.port}/status"
        args.token = args.token or config.stream.token
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {args.token}"} if args.token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            document = json.loads(response.read())
    except (urllib.error.URLError, OSError) as exc:
        raise EdgedError(f"no daemon answers at {url} ({getattr(exc, 'reason', exc)}); is edged running?") from None
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    stats = document["stats"]
    print(f"edged {document['edged']} on {document['device']}, up {document['uptime_s']:.0f} s, embedder "
          f"{document['embedder'] or 'none installed'}, CPU {stats['cpu_percent']:.0f}% of the box, "
          f"RSS {stats['rss_mb']:.0f} MB")
    for camera in document.get("cameras") or [document]:
        c = camera["stats"]
        print(f"  camera {camera['camera']} ({camera['source']}): detections {c['fps']:.1f} of "
              f"{c.get('detect_fps_target', 0):.1f}/s" + (" (FALLING BEHIND)" if c.get("falling_behind") else "")
              + f", camera {c.get('camera_fps', 0):.1f} fps, "
              + (f"latency {c['latency_ms']:.0f} ms, " if c.get("latency_ms") is not None else "detection off, ")
              + ("nothing moves, " if c.get("detect_mode") == "idle" else f"motion {c['motion_percent']:.1f}%, "
                 if c.get("motion_percent") is not None else "")
              + f"{c['embeddings_per_s']:.2f} embeddings/s" + ("" if c["source_connected"] else ", NOT CONNECTED"))
        for track in c["tracks"]:
            print(f"    track {track['track_id']}: {track['person'] or 'not yet identified'}"
                  f"{'' if track['confirmed'] else ' (not yet confirmed)'}")
        for event in camera.get("recent_events", document["recent_events"])[-5:]:
            print(f"    event: {event['type']} {_who(event)} (track {event['track_id']})")
    reload = document.get("last_reload")
    if reload:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(reload["time"])))
        print(f"  last reload at {when}: {'done' if reload['ok'] else 'REFUSED'}: {reload['message']}")
    return 0


def _clips_dir(args: argparse.Namespace) -> Path:
    if args.dir:
        return Path(args.dir)
    if args.config:
        config = load_config(args.config)
        if config.recognition.gallery:
            return Path(config.recognition.gallery).parent / "clips"
    return default_gallery().parent / "clips"


def cmd_fleet(args: argparse.Namespace) -> int:
    from edged.fleet.report import print_report, read_fleet
    from edged.paths import default_gallery

    config = load_config(args.config)
    gallery = Path(config.recognition.gallery) if config.recognition.gallery else default_gallery()
    report = read_fleet(config, gallery, args.wait)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print_report(report)
    return 0


def cmd_clips(args: argparse.Namespace) -> int:
    from edged.io.video import probe

    folder = _clips_dir(args)
    if args.action == "list":
        from edged.history import HISTORY_NAME, AlertHistory

        clips = sorted(folder.glob("*.mp4")) if folder.is_dir() else []
        by_clip = AlertHistory(folder.parent / HISTORY_NAME, writer=False).by_clip()
        rows: list[dict[str, Any]] = []
        for path in clips:
            info = probe(path)
            alerts = [{"id": a.get("id"), "person": a.get("person"), "reason": a.get("reason"),
                       "camera": a.get("camera")} for a in by_clip.get(path.name, [])]
            rows.append({"name": path.name, "bytes": path.stat().st_size, "seconds": round(info.seconds, 2),
                         "frames": info.frames, "codec": info.codec, "size": [info.width, info.height],
                         "modified": path.stat().st_mtime, "alerts": alerts})
        if args.json:
            print(json.dumps({"version": JSON_VERSION, "folder": str(folder), "clips": rows}, indent=2))
        else:
            print(f"{folder}: {len(rows)} clip(s)")
            for r in rows:
                people = dict.fromkeys(str(a["person"] or "unknown") for a in r["alerts"])
                who = ", ".join(people) or "no alert on record"
                ids = " ".join(str(a["id"]) for a in r["alerts"])
                print(f"  {r['name']}  {r['seconds']:.1f} s  {r['bytes'] / 2**20:.1f} MB  {r['codec']}  {who}"
                      + (f"  (alert {ids})" if ids else ""))
        return 0
    path = folder / args.name
    if "/" in args.name or not path.is_file():
        raise EdgedError(f"no clip {args.name!r} in {folder}")
    if args.action == "get":
        import shutil

        target = Path(args.out) if args.out else Path(args.name)
        shutil.copyfile(path, target)
        print(f"copied {path} to {target}")
    else:
        path.unlink()
        print(f"removed {path}")
    return 0


def _demo_video() -> Path | None:
    """The demo video setup fetched or found (tools/setup.sh writes where it is)."""
    checkout = Path(__file__).resolve().parent.parent
    marker = checkout / ".venv" / ".edged-demo-video"
    named = Path(marker.read_text().strip()) if marker.is_file() else None
    shared = Path(os.environ.get("EDGED_SHARED", checkout.parent / "shared")) / "data" / "video" / "crowd_1080p.mp4"
    return next((p for p in (named, shared) if p is not None and p.is_file()), None)


def cmd_bench(args: argparse.Namespace) -> int:
    from edged.bench import bench_camera, share_inference
    from edged.memory import tune_allocator

    tune_allocator()  # as the daemon runs, so that its figures are the daemon's
    if args.frames < 2 or args.detections < 1:
        raise EdgedError("--frames must be at least 2 and --detections at least 1")
    if args.config:
        config = load_config(args.config)
        needs_cameras(config)
        cameras = [(c.camera.name, c.camera.detect_source or c.camera.source, c.detect_fps)
                   for c in config.camera_configs()]
        from edged.daemon import detector_settings

        settings = detector_settings(config)
        models = Path(config.models.dir) if config.models.dir else None
        options = EngineOptions(models, config.models.embedder or None, settings, config.detector.threads)
    else:
        video = args.video or _demo_video()
        if video is None:
            raise EdgedError("bench needs --config (your cameras) or --video FILE; no demo video is set up here")
        _check_video(str(video), "--video")
        cameras = [("video", str(video), 0.0)]
        options = EngineOptions(detector=DetectorSettings.edge())
    terminal = sys.stderr.isatty()

    def progress(line: str) -> None:
        print(f"\rbench: {line:<70}" if terminal else f"bench: {line}", end="" if terminal else "\n",
              file=sys.stderr, flush=True)

    engine = FaceEngine(options, need_embedder=False)
    benches = [bench_camera(engine, name, source, args.frames, args.detections, progress)
               for name, source, _ in cameras]
    benches = share_inference(benches, [wanted for _, _, wanted in cameras], os.cpu_count() or 1)
    if terminal:
        print(file=sys.stderr)
    if args.json:
        print(json.dumps({"version": JSON_VERSION, "machine": _machine(), "cores": os.cpu_count() or 1,
                          "cameras": [b.to_json() for b in benches]}, indent=2))
        return 0
    print(f"on {_machine()}:")
    for b in benches:
        embed = f"{b.embed_ms:.1f} ms per face embedded" if b.embed_ms is not None else "no embedding measured"
        print(f"  {b.camera} ({b.width}x{b.height} at {b.fps:.0f} fps): decoding {b.decode_ms:.1f} ms per frame "
              f"({b.decode_cores:.2f} of a core at its frame rate); detection {b.detect_busy_ms:.0f} ms busy "
              f"({b.detect_busy_cpu_ms:.0f} ms of CPU, {b.faces_per_frame:.1f} faces), {b.detect_idle_ms:.0f} ms on an "
              f"empty picture; {embed}")
        wanted = f" of the {b.detect_fps_wanted:g} asked for" if b.detect_fps_wanted else ""
        print(f"      can have {b.detect_fps_possible:.1f} detections/s{wanted} while every camera is busy")
    return 0


def _machine() -> str:
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Model")):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores"


def cmd_config(args: argparse.Namespace) -> int:
    path = args.file or args.config
    config = load_config(path)
    if args.action == "check":
        needs_cameras(config)
        print(f"{', '.join(config.sources) or 'built-in defaults'}: configuration is valid")
    else:
        print(show(config), end="")
    return 0


def _options() -> dict[str, argparse.ArgumentParser]:
    """Each command takes only the options that do something there: models, gallery, matching
    and detector options are separate parents."""
    models_dir = argparse.ArgumentParser(add_help=False)
    models_dir.add_argument("--models-dir", type=Path, help="folder with manifest.toml (default: $EDGED_MODELS "
                            "or the state directory's models/; MTCNN ships with edged)")
    models = argparse.ArgumentParser(add_help=False, parents=[models_dir])
    models.add_argument("--embedder", help="embedder name from the manifest (default: the most accurate "
                        "installed one; `edged models` says which)")
    threads = argparse.ArgumentParser(add_help=False)
    threads.add_argument("--threads", type=int, default=0, help="cores one detection may use at once (default: all)")
    gallery = argparse.ArgumentParser(add_help=False)
    gallery.add_argument("--gallery", type=Path, help="gallery database (default: $EDGED_GALLERY, "
                         "$STATE_DIRECTORY/gallery.db, /var/lib/edged or ~/.local/share/edged)")
    matching = argparse.ArgumentParser(add_help=False)
    matching.add_argument("--false-accepts", choices=("1%", "5%"), default="1%",
                          help="share of strangers the match threshold may name as someone, as measured by "
                               "tools/calibrate.py (default 1%%)")
    matching.add_argument("--threshold", type=float, default=0.0,
                          help="an explicit cosine match threshold instead (0: from --false-accepts)")
    detector = argparse.ArgumentParser(add_help=False)
    detector.add_argument("--detector", choices=["facenet", "edge"], help="detector settings: facenet-pytorch's "
                          "(default for photos) or edge (at most 960 px, faces >= 40 px, P-Net at 0.7; default for "
                          "videos)")
    detector.add_argument("--edge", dest="detector", action="store_const", const="edge",
                          help="short for --detector edge")
    detector.add_argument("--min-face", type=float, help="smallest face to find, in source pixels (default 20)")
    detector.add_argument("--max-side", type=int, help="downscale frames to this longer side before detecting")
    return {"models_dir": models_dir, "models": models, "threads": threads, "gallery": gallery,
            "matching": matching, "detector": detector}


def build_parser() -> argparse.ArgumentParser:
    o = _options()
    engine_options = [o["models"], o["threads"], o["detector"]]
    everything = [*engine_options, o["gallery"], o["matching"]]
    # The embedder in use is said by these, and export/import need its id; nothing loads.
    gallery_only = [o["gallery"], o["models"]]

    parser = argparse.ArgumentParser(
        prog="edged", description="Face detection, recognition and tracking for edge boxes.",
        epilog="`edged COMMAND --help` tells more; the manual is in docs/.")
    parser.add_argument("--version", action="version", version=f"edged {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("detect", parents=[o["models_dir"], o["threads"], o["detector"]], help="find faces in photos")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--annotate", type=Path, help="write annotated image(s): a file for one image, a folder for several")
    p.set_defaults(run=cmd_detect)

    p = sub.add_parser("identify", parents=everything, help="find and name faces in photos")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--json", action="store_true")
    p.add_argument("--annotate", type=Path)
    p.set_defaults(run=cmd_identify)

    p = sub.add_parser("enroll", parents=everything,
                       help="add a person's photos (or faces from a video) to the gallery")
    p.add_argument("name")
    p.add_argument("images", nargs="*", type=Path)
    p.add_argument("--from-video", metavar="VIDEO", help="enroll the best faces of a person found in this video "
                   "(a file or s3://bucket/key)")
    p.add_argument("--person", help="with --from-video: which person (unknown-N or new-N as a scan names them; "
                   "new-N is the stranger's first track, the same each time the video is scanned)")
    p.add_argument("--report", type=Path, metavar="DIR", help="with --from-video: write the scan's report "
                   "(who is where, with pictures) to DIR")
    p.add_argument("--dry-run", action="store_true", help="with --from-video: say which faces would be "
                   "enrolled, and change nothing")
    p.add_argument("--every", type=int, help="with --from-video: detect on every Nth frame")
    p.add_argument("--detect-fps", type=float, default=DEFAULT_DETECT_FPS, help="with --from-video: detections per "
                   "second of video")
    p.set_defaults(run=cmd_enroll)

    p = sub.add_parser("gallery", help="list, name, rename, remove, reject, confirm, stats, export or import people",
                       description="The gallery of people: enrolled names, strangers (unknown-N), and corrections.")
    gsub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    g = gsub.add_parser("list", parents=gallery_only, help="everyone in the gallery, with embeddings and sightings")
    g.add_argument("--json", action="store_true")
    g = gsub.add_parser("remove", parents=gallery_only, help="forget a person or stranger entirely")
    g.add_argument("name")
    g = gsub.add_parser("rename", parents=gallery_only, help="rename an enrolled person")
    g.add_argument("old")
    g.add_argument("new")
    g = gsub.add_parser("name", parents=gallery_only, help="give an anonymous unknown-N a name; its history follows")
    g.add_argument("anonymous")
    g.add_argument("name")
    g = gsub.add_parser("export", parents=gallery_only, help="write the embeddings of the embedder in use to a "
                        "JSON file")
    g.add_argument("file", type=Path)
    g = gsub.add_parser("import", parents=gallery_only, help="add embeddings from an export of the same embedder")
    g.add_argument("file", type=Path)
    p.set_defaults(run=cmd_gallery)
    for action, what in (("reject", "a face that is NOT this person: it will not be named so again"),
                         ("confirm", "a face (or a stranger's whole history) that IS this person")):
        g = gsub.add_parser(action, parents=everything, help=what)
        g.add_argument("name")
        source = g.add_mutually_exclusive_group(required=True)
        source.add_argument("--photo", type=Path, help="a photo of the face")
        source.add_argument("--event", help="an event or alert id; its kept face is used")
        if action == "confirm":
            source.add_argument("--stranger", help="an unknown-N: its faces and sightings become this person's")
        else:
            g.set_defaults(stranger=None)
        g.add_argument("--media", type=Path, help="where the daemon keeps faces (default: media/ beside the gallery)")
        g.set_defaults(run=cmd_correct)
    g = gsub.add_parser("stats", parents=[o["gallery"], o["models"], o["matching"]],
                        help="people, corrections, and the false-accept rate this box's own strangers imply")
    g.add_argument("--json", action="store_true")
    g.set_defaults(run=cmd_gallery_stats)

    p = sub.add_parser("run", help="run the daemon (as the systemd service does)")
    p.add_argument("--config", type=Path, help="main TOML file (default /etc/edged/edged.toml; conf.d/ beside it)")
    p.set_defaults(run=cmd_run)

    p = sub.add_parser("status", help="what a running daemon is doing")
    p.add_argument("--config", type=Path, help="read the status address from this configuration")
    p.add_argument("--url", help="the status endpoint (default: from the configuration)")
    p.add_argument("--token", default="", help="the status token, when the daemon wants one")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_status)

    p = sub.add_parser("fleet", help="the fleet's boxes and records on the broker, and what is out of step")
    fsub = p.add_subparsers(dest="action", required=True)
    f = fsub.add_parser("status", help="boxes seen, their records, and the records out of step with this box")
    f.add_argument("--config", type=Path, help="main TOML file (default /etc/edged/edged.toml; conf.d/ beside it)")
    f.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the broker (default 10)")
    f.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_fleet)

    p = sub.add_parser("clips", help="list, copy out or remove recorded clips",
                       description="The daemon's recorded clips, with the alerts that made them.")
    ksub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, what in (("list", "every clip: length, size, codec and who made the alert"),
                         ("get", "copy a clip out"), ("rm", "remove a clip")):
        k = ksub.add_parser(action, help=what)
        k.add_argument("--dir", help="the clips folder (default: beside the gallery, clips/)")
        k.add_argument("--config", type=Path, help="take the state folder from this configuration")
        if action == "list":
            k.add_argument("--json", action="store_true")
        else:
            k.add_argument("name")
        if action == "get":
            k.add_argument("out", nargs="?", help="where to copy it (default: its name, here)")
    p.set_defaults(run=cmd_clips)

    p = sub.add_parser("config", help="check or show the daemon's configuration",
                       description="The daemon's TOML configuration: the main file and conf.d/ beside it.")
    csub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = csub.add_parser("check", help="validate (exit code 78 when invalid)")
    c.add_argument("--config", type=Path, help="main TOML file (default /etc/edged/edged.toml; conf.d/ beside it)")
    c.add_argument("file", nargs="?", type=Path, help=argparse.SUPPRESS)  # the old positional form still works
    c = csub.add_parser("show", help="the merged configuration, secrets masked")
    c.add_argument("--config", type=Path, help="main TOML file (default /etc/edged/edged.toml; conf.d/ beside it)")
    c.set_defaults(file=None)
    p.set_defaults(run=cmd_config)

    p = sub.add_parser("bench", help="what this box can take: ms per frame, detection and embedding, and "
                       "detections/s per camera", description="Measures decoding, detection (busy and on an empty "
                       "picture) and embedding on this box, with each camera's own frames (--config) or a video.")
    p.add_argument("--config", type=Path, help="measure the cameras of this configuration")
    p.add_argument("--video", type=Path, help="measure this video (default: the demo video)")
    p.add_argument("--frames", type=int, default=50, help="frames to decode per camera (default 50)")
    p.add_argument("--detections", type=int, default=10, help="detections to time per camera (default 10)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_bench)

    p = sub.add_parser("models", parents=[o["models"]], help="installed models and their specs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("scan", parents=everything, help="who is in a video file, and when")
    p.add_argument("video", help="a video file, or s3://bucket/key")
    p.add_argument("--every", type=int, help="detect on every Nth frame; tracks carry faces in between "
                   "(default: as --detect-fps gives)")
    p.add_argument("--detect-fps", type=float, default=DEFAULT_DETECT_FPS,
                   help=f"detections per second of video (default {DEFAULT_DETECT_FPS:g})")
    p.add_argument("--json", metavar="OUT", help="write the result as JSON to OUT ('-' for stdout only)")
    p.add_argument("--report", type=Path, metavar="DIR", help="write report.json, thumbnails, a timeline "
                   "picture and index.html to DIR")
    p.add_argument("--enroll", action="store_true", help="remember the people found: new strangers get lasting "
                   "unknown-N ids, and every sighting is stored")
    p.set_defaults(run=cmd_scan)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConfigError as exc:
        _say(str(exc))
        return CONFIG_EXIT
    except EdgedError as exc:
        _say(str(exc))
        return 1
    except OSError as exc:  # a file the command had to write or read: one line, not a traceback
        _say(f"{exc.filename or ''}{': ' if exc.filename else ''}{exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
