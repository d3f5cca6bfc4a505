#!/usr/bin/env python3
"""Benchmark of the face engine: detector frames/s against facenet-pytorch's MTCNN measured in
the same run, milliseconds per stage, embedder cost against plain ONNX Runtime, ONNX Runtime
optimisation levels, INT8 quantisation, and peak memory. Prints figures and ratios."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from edged.detector import Detector, DetectorSettings  # noqa: E402
from edged.embedder import Embedder  # noqa: E402
from edged.runtime import ModelStore, RuntimeOptions  # noqa: E402

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


def bench_detector(store: ModelStore, frames: list[np.ndarray], settings: DetectorSettings) -> dict[str, float]:
    detector = Detector(store, settings)
    detector.detect(frames[0])
    stages = np.zeros(4)
    faces = 0
    start = time.perf_counter()
    for frame in frames:
        faces += len(detector.detect(frame))
        t = detector.last_times
        stages += [t.pnet_ms, t.rnet_ms, t.onet_ms, t.nms_ms]
    seconds = (time.perf_counter() - start) / len(frames)
    stages /= len(frames)
    return {"fps": 1 / seconds, "pnet_ms": stages[0], "rnet_ms": stages[1], "onet_ms": stages[2],
            "nms_ms": stages[3], "faces_per_frame": faces / len(frames)}


def bench_torch_mtcnn(frames: list[np.ndarray], threads: int) -> float:
    import torch
    from facenet_reference import facenet_mtcnn

    torch.set_num_threads(threads)
    mtcnn = facenet_mtcnn()
    rgb = [cv2.cvtColor(f, cv2.COLOR_BGR2RGB) for f in frames]
    with torch.no_grad():
        return 1 / time_per_call(mtcnn.detect, rgb)  # type: ignore[attr-defined]


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


def bench_int8(onnx_path: Path, input_name: str, real_faces: np.ndarray,
               random_weights: bool = False) -> dict[str, float]:
    """Dynamic INT8 quantisation: ms per face (batch 8) and cosine to the float model on real faces."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        q_path = Path(tmp) / "int8.onnx"
        quantize_dynamic(str(onnx_path), str(q_path), weight_type=QuantType.QInt8)
        so = ort.SessionOptions()  # as edged.runtime sets them: a thread per core, no spinning
        so.intra_op_num_threads = os.cpu_count() or 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        fp = ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"])
        q8 = ort.InferenceSession(str(q_path), so, providers=["CPUExecutionProvider"])
        batch = real_faces[:8]
        ms = {}
        for label, session in (("float", fp), ("int8", q8)):
            ms[label] = time_per_call(lambda _, s=session: s.run(None, {input_name: batch}), [0] * 20,
                                      repeat=3) / len(batch) * 1000
        if random_weights:
            return {"float_ms": ms["float"], "int8_ms": ms["int8"]}
        a = fp.run(None, {input_name: real_faces})[0]
        b = q8.run(None, {input_name: real_faces})[0]
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        b /= np.linalg.norm(b, axis=1, keepdims=True)
        return {"float_ms": ms["float"], "int8_ms": ms["int8"], "min_cosine": float((a * b).sum(1).min()),
                "mean_cosine": float((a * b).sum(1).mean())}


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
        model, _ = export_models.load_facenet_weights(weights, download=False)
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
        int8 = bench_int8(path, "input", faces, random_weights=weights is None)
    return {"weights": label, "torch_ms": torch_ms, **int8}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=30, help="video frames per detector measurement")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch baselines")
    parser.add_argument("--facenet-weights", type=Path, help="VGGFace2 checkpoint for the InceptionResnetV1 figures")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    report: dict[str, object] = {"machine": machine()}
    print(f"machine: {report['machine']}")
    store = ModelStore(ROOT / "models")
    full = load_frames(args.frames, None)
    small = load_frames(args.frames, (640, 360))

    print("\n== detector (crowd video, frames/s; stage ms per frame) ==")
    detector_rows = {}
    for label, frames, settings in (
            ("1080p, facenet settings", full, DetectorSettings()),
            ("640x360, facenet settings", small, DetectorSettings()),
            ("1080p, edge defaults", full, DetectorSettings.edge()),
            ("640x360, edge defaults", small, DetectorSettings.edge())):
        row = bench_detector(store, frames, settings)
        detector_rows[label] = row
        print(f"{label:28s} {row['fps']:6.2f} fps  pyramid+P-Net {row['pnet_ms']:6.1f}  R-Net {row['rnet_ms']:5.1f}"
              f"  O-Net {row['onet_ms']:5.1f}  NMS {row['nms_ms']:4.1f}  faces/frame {row['faces_per_frame']:.1f}")
    report["detector"] = detector_rows

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
    q = bench_int8(mfn.path(store.models_dir), "input", aligned_faces((112, 112), 123.675, 58.4, bgr=False))
    report["mobilefacenet_int8"] = q
    print(f"mobilefacenet INT8 (dynamic): {q['int8_ms']:.2f} ms/face vs float {q['float_ms']:.2f}, "
          f"cosine to float min {q['min_cosine']:.4f} mean {q['mean_cosine']:.4f}")
    report["peak_rss_mb_onnx_engine"] = peak_rss_mb()
    print(f"\npeak RSS of the ONNX engine (detector + 2 embedders, before torch is loaded): "
          f"{report['peak_rss_mb_onnx_engine']:.0f} MB")

    if not args.no_torch:
        print("\n== baselines in torch 2 threads (facenet-pytorch 2.6.0) ==")
        base_full = bench_torch_mtcnn(full, 2)
        base_small = bench_torch_mtcnn(small, 2)
        report["torch_mtcnn_fps"] = {"1080p": base_full, "640x360": base_small}
        same = detector_rows["1080p, facenet settings"]["fps"]
        same_small = detector_rows["640x360, facenet settings"]["fps"]
        print(f"facenet-pytorch MTCNN: 1080p {base_full:.2f} fps, 640x360 {base_small:.2f} fps")
        print(f"edged vs facenet-pytorch, same settings: 1080p x{same / base_full:.2f}, "
              f"640x360 x{same_small / base_small:.2f}")
        edge = detector_rows["1080p, edge defaults"]["fps"]
        print(f"edged edge defaults vs facenet-pytorch at 1080p: x{edge / base_full:.2f}")
        irv1 = bench_inception(args.facenet_weights)
        report["inception_resnet_v1"] = irv1
        cosine = (f"INT8 cosine to float min {irv1['min_cosine']:.4f} mean {irv1['mean_cosine']:.4f}"
                  if "min_cosine" in irv1 else "INT8 cosine not meaningful without the trained weights")
        print(f"InceptionResnetV1 [{irv1['weights']}], ms/face batch 8: torch {irv1['torch_ms']:.2f}, "
              f"ORT {irv1['float_ms']:.2f}, ORT INT8 {irv1['int8_ms']:.2f}; {cosine}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
