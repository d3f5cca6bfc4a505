#!/usr/bin/env python3
"""Benchmark of the face engine: detector frames/s against facenet-pytorch's MTCNN measured in
the same run, milliseconds per stage, embedder cost against plain ONNX Runtime, ONNX Runtime
optimisation levels, INT8 quantisation, and peak memory. Prints figures and ratios."""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from edged.runtime import (  # noqa: E402
    PREFERRED_PROVIDERS,
    ModelStore,
    RuntimeOptions,
    available_providers,
)
from edged.vision.detector import Detector, DetectorSettings  # noqa: E402
from edged.vision.embedder import Embedder  # noqa: E402

VIDEO = ROOT.parent / "shared" / "data" / "video" / "crowd_1080p.mp4"
ALIGNED = ROOT.parent / "shared" / "data" / "aligned"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_frames(count: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(VIDEO))
    frames: list[np.ndarray] = []
    while len(frames) < count:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame if size is None else cv2.resize(frame, size, interpolation=cv2.INTER_AREA))
    return frames


def time_per_call(fn, items, repeat: int = 1) -> float:
    """Median seconds per item over `repeat` passes, after one warm-up call."""
    fn(items[0])
    passes = []
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            fn(item)
        passes.append((time.perf_counter() - start) / len(items))
    return statistics.median(passes)


def bench_detector(store: ModelStore, frames: list[np.ndarray], settings: DetectorSettings,
                   baseline: object | None = None) -> dict[str, float]:
    """Median seconds per frame and stage times; with `baseline` (facenet-pytorch's MTCNN) the
    two run frame by frame in turn, so a busy moment of the machine slows both alike."""
    detector = Detector(store, settings)
    detector.detect(frames[0])
    if baseline is not None:
        baseline.detect(cv2.cvtColor(frames[0], cv2.COLOR_BGR2RGB))  # type: ignore[attr-defined]
    ours, theirs, stages = [], [], []
    faces = 0
    for _ in range(2):
        for frame in frames:
            start = time.perf_counter()
            faces += len(detector.detect(frame))
            ours.append(time.perf_counter() - start)
            t = detector.last_times
            stages.append([t.pnet_ms, t.rnet_ms, t.onet_ms, t.nms_ms])
            if baseline is not None:
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                start = time.perf_counter()
                baseline.detect(rgb)  # type: ignore[attr-defined]
                theirs.append(time.perf_counter() - start)
    median_stages = np.median(np.array(stages), axis=0)
    row = {"fps": 1 / statistics.median(ours), "pnet_ms": median_stages[0], "rnet_ms": median_stages[1],
           "onet_ms": median_stages[2], "nms_ms": median_stages[3], "faces_per_frame": faces / len(ours)}
    if theirs:
        row["facenet_pytorch_fps"] = 1 / statistics.median(theirs)
        row["speedup"] = row["fps"] / row["facenet_pytorch_fps"]
    return row


def bench_threading(store: ModelStore, frames: list[np.ndarray], settings: DetectorSettings) -> dict[str, dict]:
    """One detector four ways on the same frames, in turn frame by frame: one thread; ONNX
    Runtime's own threads, one per core (edged before lanes); lanes, one per core; and edged's
    choice (lanes from LANES_MIN_PIXELS up). Wall frames/s and CPU ms per frame (the
    process's, all threads) for each."""
    cores = os.cpu_count() or 1
    ways = {"one thread": Detector(store, settings, threads=1),
            f"ONNX Runtime threads ({cores})": Detector(store, settings, threads=cores, lanes_min_pixels=2**62),
            f"lanes ({cores})": Detector(store, settings, threads=cores, lanes_min_pixels=0),
            "edged's choice": Detector(store, settings, threads=cores)}
    wall: dict[str, list[float]] = {name: [] for name in ways}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    for detector in ways.values():
        detector.detect(frames[0])
    for frame in frames:
        for name, detector in ways.items():
            start, cpu_start = time.perf_counter(), time.process_time()
            detector.detect(frame)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - cpu_start)
    return {name: {"fps": 1 / statistics.median(wall[name]), "cpu_ms": 1000 * statistics.median(cpu[name])}
            for name in ways}


def torch_mtcnn(threads: int) -> object:
    import torch
    from facenet_reference import facenet_mtcnn

    torch.set_num_threads(threads)
    torch.set_grad_enabled(False)
    return facenet_mtcnn()


RSS_PROBE = """
import sys
from pathlib import Path
from typing import Any
from edged.cli import main
sys.stdout = open("/dev/null", "w")
main(sys.argv[1:])
for line in Path("/proc/self/status").read_text().splitlines():
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]) // 1024, file=sys.stderr)
"""


def scan_rss_mb(extra: list[str]) -> float:
    """Peak RSS of a real `edged scan` over the whole crowd video, every frame, reported by the
    child itself (VmHWM): a forked child's getrusage would include this process's memory."""
    import subprocess

    done = subprocess.run([sys.executable, "-c", RSS_PROBE, "scan", str(VIDEO), "--every", "1", "--json", "-", *extra],
                          check=True, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "EDGED_GALLERY": ":memory:"})
    return float(done.stderr.strip().splitlines()[-1])


def face_crops(detector: Detector, count: int) -> tuple[list[np.ndarray], list]:
    """Real faces from the crowd video: (frames, faces) pairs with at least one face each."""
    frames, found = [], []
    for frame in load_frames(40, None):
        faces = detector.detect(frame)
        if len(faces) >= 8:
            frames.append(frame)
            found.append(faces[np.arange(8)])
        if len(frames) >= count:
            break
    return frames, found


def bench_embedder(store: ModelStore, name: str, frames: list[np.ndarray], faces: list) -> dict[str, float]:
    """ms per face through Embedder (crop + align + normalise + run) and through session.run
    alone on the same faces' ready tensors, interleaved call by call so that the machine's
    drift hits both alike; medians of 10 passes."""
    embedder = Embedder(store, name)
    out: dict[str, float] = {}
    for batch in (1, 8):
        full_times, plain_times = [], []
        for _ in range(10):
            for frame, found in zip(frames, faces, strict=True):
                chosen = found[np.arange(batch)]
                start = time.perf_counter()
                embedder.embed(frame, chosen)
                middle = time.perf_counter()
                embedder.session.run(ready_tensor(embedder, frame, chosen))
                plain_times.append(time.perf_counter() - middle)
                full_times.append(middle - start)
        out[f"b{batch}_ms"] = statistics.median(full_times) / batch * 1000
        out[f"b{batch}_plain_ms"] = statistics.median(plain_times) / batch * 1000
    return out


def bench_providers(frames: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Each provider this onnxruntime offers against the CPU's, in the same run: the detector
    at facenet settings and edge defaults (1080p), mobilefacenet at batch 1 and 8."""
    available = [p for p in PREFERRED_PROVIDERS if p in available_providers()]
    print(f"\n== execution providers (onnxruntime offers {', '.join(available_providers())}) ==")
    rows: dict[str, dict[str, float]] = {}
    runs = []
    for name in available:
        runs.append((name, RuntimeOptions(providers=(name,))))
        if name == "CUDAExecutionProvider":  # edged's per-model cuDNN search against each fixed one
            runs += [(f"CUDA, {search} cuDNN search", RuntimeOptions(providers=(name,), cudnn_search=search))
                     for search in ("DEFAULT", "HEURISTIC", "EXHAUSTIVE")]
    for label, options in runs:
        provider = options.providers[0]
        store = ModelStore(options=options)
        # A provider the wheel lists can still fail to load (TensorRT without libnvinfer): the
        # session then runs on the CPU, and its figures must not be reported under its name.
        for model in ("mtcnn_pnet", "mobilefacenet"):
            store.session(model)
        fell_back = {m: p for m, p in store.providers.items() if p != provider}
        if fell_back:
            print(f"{label:34s} not usable here: {', '.join(f'{m} ran on {p}' for m, p in fell_back.items())}")
            continue
        facenet = bench_detector(store, frames, DetectorSettings())
        row = {"facenet_fps": facenet["fps"], "edge_fps": bench_detector(store, frames, DetectorSettings.edge())["fps"],
               **{f"facenet_{stage}_ms": facenet[f"{stage}_ms"] for stage in ("pnet", "rnet", "onet", "nms")}}
        crops_frames, faces = face_crops(Detector(store), 6)
        row.update(bench_embedder(store, "mobilefacenet", crops_frames, faces))
        rows[label] = row
    cpu = rows["CPUExecutionProvider"]
    for label, row in rows.items():
        ratio = row["facenet_fps"] / cpu["facenet_fps"]
        stages = "/".join(f"{row[f'facenet_{s}_ms']:.0f}" for s in ("pnet", "rnet", "onet", "nms"))
        print(f"{label:34s} detector 1080p facenet {row['facenet_fps']:5.2f} fps (x{ratio:.2f}; P/R/O/NMS ms {stages})"
              f"  edge {row['edge_fps']:5.2f} fps (x{row['edge_fps'] / cpu['edge_fps']:.2f})"
              f"  mobilefacenet b1 {row['b1_plain_ms']:.2f} ms (x{cpu['b1_plain_ms'] / row['b1_plain_ms']:.2f})"
              f"  b8 {row['b8_plain_ms']:.2f} ms/face (x{cpu['b8_plain_ms'] / row['b8_plain_ms']:.2f})")
    return rows


def ready_tensor(embedder: Embedder, frame: np.ndarray, faces) -> np.ndarray:
    """The network input the embedder would build, made outside the timed call."""
    crops = embedder.crops(frame, faces)
    pixels = crops if embedder.spec.channel_order == "BGR" else crops[..., ::-1]
    mean = np.asarray(embedder.spec.mean, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(embedder.spec.std, np.float32).reshape(1, 3, 1, 1)
    return ((pixels.transpose(0, 3, 1, 2).astype(np.float32) - mean) / std).copy()


def bench_levels(store: ModelStore, name: str) -> dict[str, float]:
    """ms per face in batches of 8 for each ONNX Runtime graph optimisation level."""
    result = {}
    for level in ("disable", "basic", "extended", "all"):
        session = ModelStore(store.models_dir, RuntimeOptions(optimization=level)).session(name)
        w, h = session.spec.input_size
        tensor = np.random.default_rng(0).standard_normal((8, 3, h, w)).astype(np.float32)
        result[level] = time_per_call(lambda _, s=session, x=tensor: s.run(x), [0] * 20, repeat=3) / 8 * 1000
    return result


def bench_int8(onnx_path: Path, input_name: str, real_faces: np.ndarray, per_channel: bool,
               random_weights: bool = False) -> dict[str, float]:
    """INT8 quantisation, dynamic and static (QDQ, calibrated on the real faces): ms per face
    in batches of 8 and cosine similarity to the float model's embeddings of the same faces."""
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    class Faces(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{input_name: real_faces[i:i + 1]} for i in range(len(real_faces))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    # The quantiser's advice (pre-processing, bias initialisers) is noise in a benchmark's output.
    ort.set_default_logger_severity(3)
    logging.getLogger().setLevel(logging.ERROR)
    so = ort.SessionOptions()  # as edged.runtime sets them: a thread per core, no spinning
    so.intra_op_num_threads = os.cpu_count() or 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        dynamic, static = Path(tmp) / "dynamic.onnx", Path(tmp) / "static.onnx"
        quantize_dynamic(str(onnx_path), str(dynamic), weight_type=QuantType.QInt8)
        quantize_static(str(onnx_path), str(static), Faces(), quant_format=QuantFormat.QDQ,
                        per_channel=per_channel, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        sessions = {label: ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
                    for label, path in (("float", onnx_path), ("dynamic", dynamic), ("static", static))}
        batch = np.concatenate([real_faces, real_faces])[:8]
        reference = None
        for label, session in sessions.items():
            result[f"{label}_ms"] = time_per_call(lambda _, s=session: s.run(None, {input_name: batch}),
                                                  [0] * 10, repeat=3) / len(batch) * 1000
            vectors = session.run(None, {input_name: real_faces})[0]
            vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
            if reference is None:
                reference = vectors
            elif not random_weights:
                result[f"{label}_min_cosine"] = float((reference * vectors).sum(1).min())
    return result


def int8_line(name: str, q: dict[str, Any]) -> str:
    def part(label: str) -> str:
        cosine = f", min cosine to float {q[label + '_min_cosine']:.4f}" if label + "_min_cosine" in q else ""
        return f"{label} INT8 {q[label + '_ms']:.2f} ms/face{cosine}"
    return f"{name}: float {q['float_ms']:.2f} ms/face; {part('dynamic')}; {part('static')}"


def aligned_faces(size: tuple[int, int], mean: float, std: float, bgr: bool) -> np.ndarray:
    photos = [cv2.imread(str(p)) for p in sorted(ALIGNED.glob("*.png"))]
    crops = [cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in photos if p is not None]
    batch = np.stack(crops * 2).astype(np.float32)  # 10 real faces
    if not bgr:
        batch = batch[..., ::-1]
    return ((batch - mean) / std).transpose(0, 3, 1, 2).copy()


def bench_inception(weights: Path | None) -> dict[str, object]:
    """InceptionResnetV1: torch vs ONNX Runtime ms per face, float vs INT8. Without the VGGFace2
    weights a randomly initialised network is used: speed is real, cosine only shows the
    quantisation error of a network with those layer shapes (labelled as such)."""
    import export_models
    import torch
    import torch_nets

    if weights is not None:
        model, _ = export_models.load_facenet_weights(weights, download_it=False)
        label = "VGGFace2 weights"
    else:
        torch.manual_seed(0)
        model = torch_nets.InceptionResnetV1()
        label = "random weights (speed only; no VGGFace2 file here)"
    model = model.eval()  # type: ignore[attr-defined]
    faces = aligned_faces((160, 160), 127.5, 128.0, bgr=False)
    with tempfile.TemporaryDirectory() as tmp:
        spec = export_models.export_facenet(model, Path(tmp), ALIGNED, "irv1_bench", label, untrained=weights is None)
        path = Path(tmp) / spec.file
        with torch.no_grad():
            batch = torch.from_numpy(faces[:8])
            torch_ms = time_per_call(lambda _: model(batch), [0] * 10, repeat=3) / 8 * 1000
        int8 = bench_int8(path, "input", faces, per_channel=True, random_weights=weights is None)
    return {"weights": label, "torch_ms": torch_ms, **int8}


def threading_rows(store: ModelStore, full: list[np.ndarray], small: list[np.ndarray]) -> dict[str, dict]:
    print("\n== one detection on the cores: frames/s (wall) and CPU ms per frame, edge defaults ==")
    rng = np.random.default_rng(0)
    empty = [np.clip(np.full_like(full[0], 120) + rng.normal(0, 3, full[0].shape), 0, 255).astype(np.uint8)] * 8
    rows = {}
    for label, frames in (("1080p crowd", full), ("640x360 crowd", small), ("1080p empty picture", empty)):
        rows[label] = bench_threading(store, frames, DetectorSettings.edge())
        print(f"{label:20s} " + "   ".join(f"{way}: {r['fps']:5.2f} fps, {r['cpu_ms']:5.1f} ms CPU"
                                        for way, r in rows[label].items()))
    return rows


def pnet_with_resampling(pnet_file: str) -> bytes:
    """P-Net with the pyramid's area resampling in front of it, in the graph: inputs are the
    frame's summed-area table (3, H+1, W+1) int32, the pooling windows' bounds and 128/count;
    the same operations as edged.vision.resample, so the outputs are the same bits."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(pnet_file)
    graph = model.graph
    resample = [
        helper.make_node("Gather", ["table", "y1"], ["top"], axis=1),
        helper.make_node("Gather", ["table", "y0"], ["bottom"], axis=1),
        helper.make_node("Sub", ["top", "bottom"], ["rows"]),
        helper.make_node("Gather", ["rows", "x1"], ["right"], axis=2),
        helper.make_node("Gather", ["rows", "x0"], ["left"], axis=2),
        helper.make_node("Sub", ["right", "left"], ["sums"]),
        helper.make_node("Cast", ["sums"], ["float_sums"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["float_sums", "scale"], ["scaled"]),
        helper.make_node("Sub", ["scaled", "shift"], ["planar"]),
        helper.make_node("Unsqueeze", ["planar", "batch_axis"], [graph.input[0].name]),
    ]
    inputs = [helper.make_tensor_value_info("table", TensorProto.INT32, [3, "H", "W"]),
              *(helper.make_tensor_value_info(n, TensorProto.INT64, [d]) for n, d in
                (("y0", "h"), ("y1", "h"), ("x0", "w"), ("x1", "w"))),
              helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["h", "w"])]
    constants = [helper.make_tensor("shift", TensorProto.FLOAT, [], [127.5 * 0.0078125]),
                 helper.make_tensor("batch_axis", TensorProto.INT64, [1], [0])]
    fused = helper.make_graph([*resample, *graph.node], "pnet_resampling", inputs, list(graph.output),
                              [*graph.initializer, *constants])
    out = helper.make_model(fused, opset_imports=model.opset_import)
    out.ir_version = model.ir_version
    onnx.checker.check_model(out)
    return out.SerializeToString()


def bench_resampling(store: ModelStore, frames: list[np.ndarray]) -> dict[str, float]:
    """The pyramid of a frame at the edge defaults (960 px, faces from 40 px), one thread: area
    resampling in NumPy then P-Net, against resampling inside the P-Net graph (onnx needed),
    interleaved frame by frame; CPU ms per frame, medians, and whether the outputs are equal."""
    import onnxruntime as ort

    from edged.vision.detector import pyramid_scales
    from edged.vision.resample import _bounds, integral, resize_area

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    plain = ort.InferenceSession(store.spec("mtcnn_pnet").file, options, providers=["CPUExecutionProvider"])
    fused = ort.InferenceSession(pnet_with_resampling(store.spec("mtcnn_pnet").file), options,
                                 providers=["CPUExecutionProvider"])
    settings = DetectorSettings.edge()

    def sizes(table: np.ndarray) -> list[tuple[int, int]]:
        height, width = table.shape[1] - 1, table.shape[2] - 1
        return [(int(width * s + 1), int(height * s + 1))
                for s in pyramid_scales(height, width, settings.min_face_size / 2, settings.factor)]

    def in_numpy(table: np.ndarray) -> list[list[np.ndarray]]:
        return [plain.run(None, {"input": resize_area(table, *size)}) for size in sizes(table)]

    def in_graph(table: np.ndarray) -> list[list[np.ndarray]]:
        outputs = []
        for width, height in sizes(table):
            y0, y1 = _bounds(0, table.shape[1] - 1, height)
            x0, x1 = _bounds(0, table.shape[2] - 1, width)
            scale = (0.0078125 / ((y1 - y0)[:, None] * (x1 - x0)[None, :])).astype(np.float32)
            outputs.append(fused.run(None, {"table": table, "y0": y0.astype(np.int64), "y1": y1.astype(np.int64),
                                            "x0": x0.astype(np.int64), "x1": x1.astype(np.int64), "scale": scale}))
        return outputs

    # The frame as the edge defaults detect it: scaled to 960 px wide, so min_face_size 40 is 20 here.
    tables = [integral(cv2.resize(f, (960, 540), interpolation=cv2.INTER_AREA)) for f in frames]
    same = all(np.array_equal(a, b) for t in tables[:3] for x, y in zip(in_numpy(t), in_graph(t), strict=True)
               for a, b in zip(x, y, strict=True))
    cpu: dict[str, list[float]] = {"numpy": [], "graph": []}
    for _ in range(3):
        for table in tables:
            for name, way in (("numpy", in_numpy), ("graph", in_graph)):
                start = time.process_time()
                way(table)
                cpu[name].append((time.process_time() - start) * 1000)
    return {"numpy_ms": statistics.median(cpu["numpy"]), "graph_ms": statistics.median(cpu["graph"]),
            "same_outputs": float(same)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=30, help="video frames per detector measurement")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch baselines")
    parser.add_argument("--facenet-weights", type=Path, help="VGGFace2 checkpoint for the InceptionResnetV1 figures")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--detector-only", action="store_true", help="stop after the detector's figures")
    parser.add_argument("--resampling", action="store_true", help="only compare the pyramid's resampling in "
                        "NumPy with resampling inside the P-Net graph")
    parser.add_argument("--providers", action="store_true", help="only compare the execution providers this "
                        "onnxruntime offers (with onnxruntime-openvino or -gpu installed) against the CPU's")
    args = parser.parse_args()

    report: dict[str, object] = {"machine": machine()}
    print(f"machine: {report['machine']}")
    store = ModelStore()
    full = load_frames(args.frames, None)
    if args.resampling:
        row = bench_resampling(store, full)
        report["resampling"] = row
        print(f"pyramid at the edge defaults (1080p scaled to 960 px), one thread, CPU ms per frame: "
              f"resampling in NumPy + P-Net {row['numpy_ms']:.1f}, inside the P-Net graph {row['graph_ms']:.1f} "
              f"(x{row['graph_ms'] / row['numpy_ms']:.2f}); outputs {'identical' if row['same_outputs'] else 'DIFFER'}")
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return 0
    if args.providers:
        report["providers"] = bench_providers(full)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return 0
    small = load_frames(args.frames, (640, 360))

    baseline = None if args.no_torch else torch_mtcnn(2)
    print("\n== detector (crowd video; frames/s are medians; stage ms per frame) ==")
    detector_rows = {}
    for label, frames, settings, against in (
            ("1080p, facenet settings", full, DetectorSettings(), baseline),
            ("640x360, facenet settings", small, DetectorSettings(), baseline),
            ("1080p, edge defaults", full, DetectorSettings.edge(), None),
            ("640x360, edge defaults", small, DetectorSettings.edge(), None)):
        row = bench_detector(store, frames, settings, against)
        detector_rows[label] = row
        versus = (f"  facenet-pytorch {row['facenet_pytorch_fps']:5.2f} fps -> x{row['speedup']:.2f}"
                  if "speedup" in row else "")
        print(f"{label:26s} {row['fps']:6.2f} fps  pyramid+P-Net {row['pnet_ms']:6.1f}  R-Net {row['rnet_ms']:5.1f}"
              f"  O-Net {row['onet_ms']:5.1f}  NMS {row['nms_ms']:4.1f}  faces/frame {row['faces_per_frame']:.1f}"
              + versus)
    report["detector"] = detector_rows
    report["detector_threading"] = threading_rows(store, full, small)
    if args.detector_only:
        if args.json:
            args.json.write_text(json.dumps(report, indent=2, default=float))
        return 0

    print("\n== embedders (ms per face, real faces; Embedder = crop + align + normalise + run) ==")
    detector = Detector(store)
    frames, faces = face_crops(detector, 6)
    embed_rows = {}
    for name in ("mobilefacenet", "mobilefacenet_paddle"):
        row = bench_embedder(store, name, frames, faces)
        embed_rows[name] = row
        print(f"{name:22s} batch 1: {row['b1_ms']:.2f} (plain ORT {row['b1_plain_ms']:.2f}, "
              f"x{row['b1_ms'] / row['b1_plain_ms']:.2f})   batch 8: {row['b8_ms']:.2f} "
              f"(plain ORT {row['b8_plain_ms']:.2f}, x{row['b8_ms'] / row['b8_plain_ms']:.2f})")
    report["embedders"] = embed_rows
    levels = bench_levels(store, "mobilefacenet")
    report["mobilefacenet_optimisation_levels_ms"] = levels
    print("mobilefacenet by ORT optimisation level (ms/face, batch 8): "
          + ", ".join(f"{k} {v:.2f}" for k, v in levels.items()))
    mfn = store.spec("mobilefacenet")
    # MobileFaceNet's ONNX opset is too old for per-channel QDQ; per-tensor it is.
    q = bench_int8(mfn.path(store.models_dir), "input", aligned_faces((112, 112), 123.675, 58.4, bgr=False),
                   per_channel=False)
    report["mobilefacenet_int8"] = q
    print(int8_line("mobilefacenet", q))
    rss = {"facenet settings": scan_rss_mb([]), "edge defaults": scan_rss_mb(["--edge"])}
    report["scan_peak_rss_mb"] = rss
    print("\npeak RSS of `edged scan` on the whole crowd video, every frame: "
          + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))

    if not args.no_torch:
        print("\n== InceptionResnetV1 (torch 2 threads vs ONNX Runtime) ==")
        irv1 = bench_inception(args.facenet_weights)
        report["inception_resnet_v1"] = irv1
        print(f"InceptionResnetV1 [{irv1['weights']}]: torch {irv1['torch_ms']:.2f} ms/face (batch 8)")
        print(int8_line("InceptionResnetV1 in ONNX Runtime", irv1)
              + ("" if "static_min_cosine" in irv1 else " (cosines need the trained weights)"))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
