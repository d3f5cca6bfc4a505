#!/usr/bin/env python3
"""Exports MTCNN and InceptionResnetV1 to ONNX, verifies them against torch, and registers
models in models/manifest.toml. The only program of the project that imports torch."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import urllib.request
import warnings
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from edged.manifest import ModelSpec, dump_manifest, load_manifest, load_spec_file, sha256_of  # noqa: E402
from edged.runtime import default_models_dir  # noqa: E402

FACENET_URL = ("https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
               "20180402-114759-vggface2.pt")
# The release asset's sha256, as published alongside facenet-pytorch's MTCNN weights' hashes
# (which match the files of the facenet-pytorch 2.6.0 wheel exactly). A mirror can be named
# with EDGED_FACENET_URL (and, for a different file, EDGED_FACENET_SHA256).
FACENET_SHA256 = "281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b"
MIN_COSINE = 0.9999
DEFAULT_VERIFY_DIR = ROOT.parent / "shared" / "data"


class ExportRefused(Exception):
    """An export that must not be written (missing weights, failed verification)."""


def mtcnn_weights_dir() -> Path:
    """The data/ folder of the installed facenet-pytorch wheel, found without importing it."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ExportRefused("facenet-pytorch is not installed: pip install --no-deps facenet-pytorch")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def face_images(verify_dir: Path, limit: int = 12) -> list[np.ndarray]:
    """Real photos with faces (BGR uint8), for checking exports on real inputs."""
    paths = sorted(p for p in verify_dir.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    images = [img for img in (cv2.imread(str(p), cv2.IMREAD_COLOR) for p in paths[:limit]) if img is not None]
    if not images:
        raise ExportRefused(f"no face photos found under {verify_dir}: pass --verify-images DIR "
                            "with a few .jpg or .png photos of faces")
    return images


def to_input(images_bgr: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """Resizes BGR photos to (w, h) and makes MTCNN's input: RGB, (x - 127.5) / 128, NCHW."""
    batch = [cv2.cvtColor(cv2.resize(im, size, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
             for im in images_bgr]
    return ((np.stack(batch).astype(np.float32) - 127.5) * 0.0078125).transpose(0, 3, 1, 2).copy()


def compare(name: str, expected: list[np.ndarray], got: list[np.ndarray]) -> float:
    """Prints max abs difference and the worst per-sample cosine; returns that cosine."""
    worst = 1.0
    max_abs = 0.0
    for e, g in zip(expected, got, strict=True):
        e2 = e.reshape(len(e), -1).astype(np.float64)
        g2 = g.reshape(len(g), -1).astype(np.float64)
        max_abs = max(max_abs, float(np.abs(e2 - g2).max()))
        cos = (e2 * g2).sum(1) / (np.linalg.norm(e2, axis=1) * np.linalg.norm(g2, axis=1) + 1e-12)
        worst = min(worst, float(cos.min()))
    print(f"  verify {name}: max |torch - onnx| = {max_abs:.2e}, min cosine = {worst:.6f}")
    return worst


def export_verified(module: object, name: str, inputs: np.ndarray, out_path: Path,
                    input_names: list[str], output_names: list[str],
                    dynamic_axes: dict[str, dict[int, str]]) -> None:
    """Exports to a temporary file, checks it against torch on `inputs`, then moves it in place."""
    import onnxruntime as ort
    import torch

    model = module.eval()  # type: ignore[attr-defined]
    with torch.no_grad():
        outputs = model(torch.from_numpy(inputs))
    # P/R/O-Net return tuples of tensors; InceptionResnetV1 returns one tensor.
    expected = [t.numpy() for t in (outputs if isinstance(outputs, tuple) else (outputs,))]
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp) / out_path.name
        # The TorchScript exporter handles these plain CNNs without the extra packages
        # (onnxscript) the newer dynamo exporter needs; its deprecation notice is expected.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(model, (torch.from_numpy(inputs[:1]),), str(tmp_path),
                              input_names=input_names, output_names=output_names,
                              dynamic_axes=dynamic_axes, opset_version=17, dynamo=False)
        session = ort.InferenceSession(str(tmp_path), providers=["CPUExecutionProvider"])
        got = session.run(output_names, {input_names[0]: inputs})
        cosine = compare(name, expected, got)
        if cosine < MIN_COSINE:
            raise ExportRefused(f"{name}: ONNX output differs from torch (cosine {cosine:.6f} < "
                                f"{MIN_COSINE}); nothing was written")
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp_path.replace(out_path)


def export_mtcnn(models_dir: Path, verify_dir: Path) -> list[ModelSpec]:
    """P-Net (dynamic batch, height, width), R-Net and O-Net (dynamic batch)."""
    import torch
    import torch_nets

    weights = mtcnn_weights_dir()
    photos = face_images(verify_dir)
    specs = []
    plan = [
        ("mtcnn_pnet", torch_nets.PNet(), "mtcnn-pnet", ["reg", "prob"], None,
         {"input": {0: "batch", 2: "height", 3: "width"}, "reg": {0: "batch", 2: "h", 3: "w"},
          "prob": {0: "batch", 2: "h", 3: "w"}}),
        ("mtcnn_rnet", torch_nets.RNet(), "mtcnn-rnet", ["reg", "prob"], (24, 24),
         {"input": {0: "batch"}, "reg": {0: "batch"}, "prob": {0: "batch"}}),
        ("mtcnn_onet", torch_nets.ONet(), "mtcnn-onet", ["reg", "landmarks", "prob"], (48, 48),
         {"input": {0: "batch"}, "reg": {0: "batch"}, "landmarks": {0: "batch"}, "prob": {0: "batch"}}),
    ]
    for name, module, kind, outputs, size, axes in plan:
        module.load_state_dict(torch.load(weights / f"{name.split('_')[1]}.pt", weights_only=True))
        # P-Net sees whole photos at a pyramid level; R/O-Net see face-sized crops.
        inputs = to_input(photos[:1], (320, 240)) if size is None else to_input(photos, size)
        out = models_dir / f"{name}.onnx"
        export_verified(module, name, inputs, out, ["input"], outputs, axes)
        specs.append(ModelSpec(name=name, kind=kind, file=out.name, sha256=sha256_of(out),
                               output_names=tuple(outputs), input_size=size or (0, 0),
                               mean=(127.5,) * 3, std=(128.0,) * 3,
                               source="facenet-pytorch 2.6.0 data/" + name.split("_")[1] + ".pt"))
    return specs


def facenet_inputs(verify_dir: Path) -> np.ndarray:
    """Face photos as InceptionResnetV1 input: 160x160 RGB, (x - 127.5) / 128."""
    return to_input(face_images(verify_dir), (160, 160))


def export_facenet(module: object, models_dir: Path, verify_dir: Path, name: str,
                   source: str, untrained: bool) -> ModelSpec:
    """InceptionResnetV1 with a dynamic batch; the spec comes from models/specs/."""
    out = models_dir / f"{name}.onnx"
    export_verified(module, name, facenet_inputs(verify_dir), out, ["input"], ["embeddings"],
                    {"input": {0: "batch"}, "embeddings": {0: "batch"}})
    spec = load_spec_file(ROOT / "models" / "specs" / "inception_resnet_v1_vggface2.toml",
                          name, out.name, sha256_of(out))
    return replace(spec, source=source, untrained=untrained)


def download(url: str, sha256: str, target: Path, timeout_s: float = 60.0) -> Path:
    """`url` to `target`, checked against `sha256`; a file that is already there is checked too."""
    if target.is_file() and sha256_of(target) == sha256:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    print(f"downloading {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response, part.open("wb") as f:
            while block := response.read(1 << 20):
                f.write(block)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise ExportRefused(f"cannot download {url}: {exc}") from exc
    got = sha256_of(part)
    if got != sha256:
        part.unlink()
        raise ExportRefused(f"{url}: the download's sha256 is {got}, not {sha256}: a damaged or different file; "
                            "nothing was exported")
    part.replace(target)
    return target


def load_facenet_weights(path: Path | None, download_it: bool, url: str = FACENET_URL,
                         sha256: str = FACENET_SHA256, cache: Path = ROOT / ".cache") -> tuple[object, str]:
    """The VGGFace2 InceptionResnetV1 from a local checkpoint or the official release asset."""
    import torch
    import torch_nets

    if path is None and not download_it:
        raise ExportRefused(
            "InceptionResnetV1 (VGGFace2) needs its trained weights, and none were given.\n"
            f"  On a machine with internet: tools/export_models.py facenet --download\n"
            f"  Or download {FACENET_URL}\n"
            "  (107 MB), copy it here and run: tools/export_models.py facenet --weights FILE\n"
            "No model was exported: random weights are never exported as a model.")
    if path is None:
        path = download(url, sha256, cache / Path(FACENET_URL).name)
    elif path.is_file() and sha256_of(path) != sha256:
        print(f"warning: {path} is not the published release asset (sha256 differs); exporting it anyway",
              file=sys.stderr)
    if not path.is_file():
        raise ExportRefused(f"{path}: no such weights file")
    model = torch_nets.InceptionResnetV1()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        torch_nets.load_facenet_state(model, state)
    except Exception as exc:  # a wrong file fails in many ways; name it in one message
        raise ExportRefused(f"{path}: not a facenet-pytorch InceptionResnetV1 checkpoint ({exc})") from exc
    return model, f"facenet-pytorch release v2.2.9 {path.name}"


def import_onnx(onnx_path: Path, spec_path: Path, name: str, models_dir: Path) -> ModelSpec:
    """Registers an existing ONNX embedder; checks it runs and gives the spec's output size."""
    import onnxruntime as ort

    if not onnx_path.is_file():
        raise ExportRefused(f"{onnx_path}: no such ONNX file")
    # abspath, not resolve(): a ../shared reached through a symlink keeps its plain path.
    rel = Path(os.path.relpath(os.path.abspath(onnx_path), os.path.abspath(models_dir)))
    spec = load_spec_file(spec_path, name, str(rel), sha256_of(onnx_path))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    inputs = session.get_inputs()
    if [i.name for i in inputs] != [spec.input_name]:
        raise ExportRefused(f"{onnx_path}: inputs are {[i.name for i in inputs]}, spec says '{spec.input_name}'")
    w, h = spec.input_size
    probe = np.zeros((2, 3, h, w), np.float32)
    out = session.run(None, {spec.input_name: probe})[0]
    if out.shape != (2, spec.output_size):
        raise ExportRefused(f"{onnx_path}: output shape {out.shape}, spec says (N, {spec.output_size})")
    outputs = tuple(o.name for o in session.get_outputs())
    print(f"  registered {name}: input {spec.input_name} {w}x{h} {spec.channel_order}, "
          f"output {outputs[0]} {spec.output_size}-d, id {spec.model_id}")
    return replace(spec, output_names=outputs[:1])


def write_manifest(models_dir: Path, new: list[ModelSpec]) -> None:
    manifest_path = models_dir / "manifest.toml"
    specs = load_manifest(manifest_path)
    for spec in new:
        specs[spec.name] = spec
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = manifest_path.with_suffix(".tmp")
    tmp.write_text(dump_manifest(specs), encoding="utf-8")
    tmp.replace(manifest_path)
    print(f"wrote {manifest_path} ({', '.join(s.name for s in new)})")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=default_models_dir(),
                        help="where to write the models and register them (default: $EDGED_MODELS, else the "
                        "state directory's models/, e.g. ~/.local/share/edged/models)")
    parser.add_argument("--verify-images", type=Path, default=DEFAULT_VERIFY_DIR,
                        help="folder of real face photos the exports are checked on")
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("mtcnn", help="export P/R/O-Net from the facenet-pytorch wheel's weights")
    facenet = sub.add_parser("facenet", help="export InceptionResnetV1 (VGGFace2)")
    facenet.add_argument("--weights", type=Path, help="20180402-114759-vggface2.pt on this machine")
    facenet.add_argument("--download", action="store_true", help="download the official weights (checked by sha256)")
    facenet.add_argument("--url", default=os.environ.get("EDGED_FACENET_URL") or FACENET_URL,
                         help="where to download them from (a mirror; default: $EDGED_FACENET_URL or the release)")
    facenet.add_argument("--sha256", default=os.environ.get("EDGED_FACENET_SHA256") or FACENET_SHA256,
                         help="the file's sha256 (default: $EDGED_FACENET_SHA256 or the release asset's)")
    facenet.add_argument("--cache", type=Path, default=ROOT / ".cache", help="where the download is kept")
    imp = sub.add_parser("import", help="register an existing ONNX embedder with its spec")
    imp.add_argument("onnx", type=Path)
    imp.add_argument("--spec", type=Path, required=True, help="a spec file such as models/specs/mobilefacenet.toml")
    imp.add_argument("--name", help="manifest name (default: the spec file's name)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.what == "mtcnn":
            write_manifest(args.models_dir, export_mtcnn(args.models_dir, args.verify_images))
        elif args.what == "facenet":
            model, source = load_facenet_weights(args.weights, args.download, args.url, args.sha256, args.cache)
            spec = export_facenet(model, args.models_dir, args.verify_images,
                                  "inception_resnet_v1_vggface2", source, untrained=False)
            write_manifest(args.models_dir, [spec])
        else:
            name = args.name or args.spec.stem
            write_manifest(args.models_dir, [import_onnx(args.onnx, args.spec, name, args.models_dir)])
    except ExportRefused as exc:
        print(f"export_models: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
