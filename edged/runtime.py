"""The one place onnxruntime is imported: sessions with thread settings, hash checks, warm-up."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edged.errors import ModelError
from edged.manifest import ModelSpec, load_manifest, sha256_of
from edged.paths import state_dir

if TYPE_CHECKING:
    import onnxruntime

log = logging.getLogger("edged.runtime")
_HERE = Path(__file__).resolve().parent


def bundled_models_dir() -> Path:
    """The models shipped with edged (MTCNN): package data in an installed edged (edged/models),
    the project's models/ folder in a source checkout."""
    for folder in (_HERE / "models", _HERE.parent / "models"):
        if (folder / "manifest.toml").is_file():
            return folder
    return _HERE / "models"


def default_models_dir() -> Path:
    """Where embedders are registered (tools/export_models.py and setup write there):
    $EDGED_MODELS, else the state directory's models/ (/var/lib/edged/models for the service,
    ~/.local/share/edged/models for a user)."""
    return Path(os.environ.get("EDGED_MODELS") or state_dir() / "models")


# Best first: what "auto" picks from, per model, among the providers the installed
# onnxruntime offers (onnxruntime-gpu on a Jetson, onnxruntime-openvino on Intel boxes).
PREFERRED_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "OpenVINOExecutionProvider",
                       "CPUExecutionProvider")
CPU = "CPUExecutionProvider"


def choose_providers(wanted: tuple[str, ...], available: list[str]) -> list[str]:
    """The providers to ask for, best first, always ending with the CPU: for "auto" the best
    available of PREFERRED_PROVIDERS; otherwise those named that are available, in their order."""
    chosen: list[str] = []
    for name in wanted:
        if name == "auto":
            chosen += [p for p in PREFERRED_PROVIDERS if p in available and p != CPU]
        elif name in available and name != CPU:
            chosen.append(name)
    return list(dict.fromkeys(chosen)) + [CPU]


def available_providers() -> list[str]:
    """The execution providers the installed onnxruntime offers."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


@dataclass(frozen=True)
class RuntimeOptions:
    """How ONNX Runtime may use the box: providers, threads per session, graph optimisation."""

    intra_threads: int = 0  # 0 = one per core
    optimization: str = "all"  # disable | basic | extended | all
    verify_hash: bool = True
    providers: tuple[str, ...] = ("auto",)  # "auto", or provider names in order of preference
    # cuDNN's convolution algorithm search under CUDA: DEFAULT | HEURISTIC | EXHAUSTIVE, or
    # "" for per model: ONNX Runtime's EXHAUSTIVE times every algorithm once per input shape,
    # which pays off for an embedder (batches of 1-8 faces) but not for the MTCNN networks, whose
    # shapes change with every pyramid level and candidate count; there cuDNN's fixed DEFAULT
    # algorithm measured fastest, while it is 50x slower on MobileFaceNet's depthwise layers
    # (H100, bench_engine.py --providers measures each choice).
    cudnn_search: str = ""


def cudnn_search_for(spec: ModelSpec, options: RuntimeOptions) -> str:
    """The cuDNN algorithm search a model's CUDA session uses (see RuntimeOptions.cudnn_search)."""
    if options.cudnn_search:
        return options.cudnn_search
    return "DEFAULT" if spec.kind.startswith("mtcnn") else "EXHAUSTIVE"


_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
           "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


class Session:
    """An ONNX Runtime session for one model: `run(inputs) -> outputs` in the spec's order."""

    def __init__(self, spec: ModelSpec, models_dir: Path, options: RuntimeOptions, threads: int = 0) -> None:
        import onnxruntime as ort

        self.spec = spec
        path = spec.path(models_dir)
        if not path.is_file():
            raise ModelError(f"model '{spec.name}': file {path} is missing")
        if options.verify_hash:
            actual = sha256_of(path)
            if actual != spec.sha256:
                raise ModelError(f"model '{spec.name}': {path} has sha256 {actual[:12]}..., "
                                 f"manifest says {spec.sha256[:12]}...; re-export or re-register it")
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or options.intra_threads or (os.cpu_count() or 1)
        so.inter_op_num_threads = 1
        # Several sessions take turns on few cores: threads left spinning after one session's
        # run would steal the cores from the next one's.
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # The detector feeds P-Net a new input shape per pyramid level; a memory plan kept per
        # shape cost ~170 MB at 1080p for no measurable speed.
        so.enable_mem_pattern = False
        so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[options.optimization])
        available = ort.get_available_providers()
        unknown = [p for p in options.providers if p != "auto" and p not in available]
        if unknown:
            log.warning("model %s: provider(s) %s are not in this onnxruntime (it has %s)", spec.name,
                        ", ".join(unknown), ", ".join(available))
        wanted = choose_providers(options.providers, available)
        with_options = [(p, {"cudnn_conv_algo_search": cudnn_search_for(spec, options)}) if p == "CUDAExecutionProvider"
                        else p for p in wanted]
        try:
            self._session: onnxruntime.InferenceSession = ort.InferenceSession(str(path), so,
                                                                               providers=with_options)
        except Exception as exc:  # a provider that cannot take this model, or a corrupt file
            if wanted == [CPU]:
                raise ModelError(f"model '{spec.name}': {path} cannot be loaded: {exc}") from exc
            log.warning("model %s: %s failed to load it (%s); using the CPU", spec.name, wanted[0],
                        str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__)
            try:
                self._session = ort.InferenceSession(str(path), so, providers=[CPU])
            except Exception as cpu_exc:
                raise ModelError(f"model '{spec.name}': {path} cannot be loaded: {cpu_exc}") from cpu_exc
        self.providers = list(self._session.get_providers())  # what it really runs on
        if self.providers[0] != CPU or wanted != [CPU]:
            log.info("model %s runs on %s", spec.name, self.providers[0])
        self.input_name = self._session.get_inputs()[0].name
        self.output_names = list(spec.output_names) or [o.name for o in self._session.get_outputs()]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return list(self._session.run(self.output_names, {self.input_name: batch}))


class ModelStore:
    """The installed models: the bundled manifest, then the models directory's (whose entries
    win), each spec's file resolved against the folder of the manifest that names it."""

    def __init__(self, models_dir: Path | None = None, options: RuntimeOptions | None = None) -> None:
        self.models_dir = models_dir or default_models_dir()
        self.options = options or RuntimeOptions()
        self.specs: dict[str, ModelSpec] = {}
        self.providers: dict[str, str] = {}  # model -> the provider its session runs on
        folders = dict.fromkeys([bundled_models_dir(), self.models_dir])
        self.manifests = [folder / "manifest.toml" for folder in folders]
        for manifest in self.manifests:
            for name, spec in load_manifest(manifest).items():
                self.specs[name] = replace(spec, file=os.path.normpath(manifest.parent / spec.file))

    def spec(self, name: str) -> ModelSpec:
        if name not in self.specs:
            raise ModelError(f"model '{name}' is not in {' or '.join(str(m) for m in self.manifests)}; "
                             "run tools/setup.sh or tools/export_models.py")
        return self.specs[name]

    def session(self, name: str, threads: int = 0) -> Session:
        """A session for this model; `threads` > 0 overrides the options' threads per run (the
        detector runs single-threaded sessions side by side, see `Lanes`)."""
        session = Session(self.spec(name), self.models_dir, self.options, threads)
        self.providers[name] = session.providers[0]
        return session
