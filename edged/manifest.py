"""Model specs and models/manifest.toml: what each ONNX file is and how to feed it (pure)."""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from edged.errors import ModelError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib

DETECTOR_KINDS = ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
CROP_STYLES = ("facenet_margin", "arcface_5point")
CHANNEL_ORDERS = ("RGB", "BGR")
# Tried in this order when no embedder is named: the product's default first.
EMBEDDER_PREFERENCE = ("inception_resnet_v1_vggface2", "mobilefacenet", "mobilefacenet_paddle")


@dataclass(frozen=True)
class ModelSpec:
    """One ONNX model and the contract for feeding it.

    Pixel normalisation is `(pixel - mean) / std` per channel, in 0..255 units, in the
    model's own channel order. `match_threshold` is the cosine similarity above which two
    embeddings of this model are taken to be the same person (the 1% point, once calibrated).
    """

    name: str
    kind: str
    file: str
    sha256: str
    input_name: str = "input"
    output_names: tuple[str, ...] = ()
    input_size: tuple[int, int] = (0, 0)  # (width, height); (0, 0) = dynamic
    channel_order: str = "RGB"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (128.0, 128.0, 128.0)
    crop: str = ""
    margin: int = 0
    output_size: int = 0
    match_threshold: float = 0.0
    # Cosine thresholds measured by tools/calibrate.py: 1% / 5% of strangers named as someone
    # (20 enrolled people); 0 where the model was never calibrated.
    threshold_1pct: float = 0.0
    threshold_5pct: float = 0.0
    # Cosine that 95% of pairs of a person's own photos exceed (tools/calibrate.py): a track's new
    # face below this against all its earlier ones is someone else. 0 = not measured.
    same_person_floor: float = 0.0
    # Share of enrolled people's faces named correctly at threshold_1pct, on the held-out people
    # of the calibration (tools/calibrate.py); what picks the default embedder. 0 = not measured.
    named_1pct: float = 0.0
    calibration: str = ""  # what the thresholds were measured on, in a line
    source: str = ""
    untrained: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def model_id(self) -> str:
        """Stored with every embedding: the name plus the first 12 hex digits of the file hash."""
        return f"{self.name}@{self.sha256[:12]}"

    def threshold_for(self, false_accepts: str) -> float:
        """The cosine threshold for "1%" or "5%" false accepts; match_threshold where not measured."""
        measured = {"1%": self.threshold_1pct, "5%": self.threshold_5pct}
        if false_accepts not in measured:
            raise ModelError(f"false_accepts '{false_accepts}' is not one of {sorted(measured)}")
        return measured[false_accepts] or self.match_threshold

    @property
    def split_floor(self) -> float:
        """same_person_floor, or half the match threshold where it was never measured (the two
        calibrated models measure 0.2 against thresholds of 0.38-0.42)."""
        return self.same_person_floor or self.match_threshold / 2

    @property
    def is_embedder(self) -> bool:
        return self.kind == "embedder"

    def path(self, models_dir: Path) -> Path:
        """The ONNX file; a relative `file` is relative to the manifest's folder."""
        return Path(os.path.normpath(models_dir / self.file))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_TUPLE_FIELDS = {"output_names", "input_size", "mean", "std"}


def spec_from_table(name: str, table: dict[str, object], where: str) -> ModelSpec:
    """Builds a spec from one TOML table, refusing unknown keys and bad values by name."""
    known = {f.name for f in fields(ModelSpec)} - {"name", "extra"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ModelError(f"{where}: model '{name}' has unknown key(s) {unknown}; "
                         f"expected some of {sorted(known)}")
    values: dict[str, object] = {}
    for key, value in table.items():
        values[key] = tuple(value) if key in _TUPLE_FIELDS and isinstance(value, list) else value
    for required in ("kind", "file", "sha256"):
        if required not in values:
            raise ModelError(f"{where}: model '{name}' lacks '{required}'")
    spec = ModelSpec(name=name, **values)  # type: ignore[arg-type]
    _check_spec(spec, where)
    return spec


def _check_spec(spec: ModelSpec, where: str) -> None:
    prefix = f"{where}: model '{spec.name}'"
    if spec.kind not in DETECTOR_KINDS + ("embedder",):
        raise ModelError(f"{prefix}: kind '{spec.kind}' is not one of {DETECTOR_KINDS + ('embedder',)}")
    if spec.channel_order not in CHANNEL_ORDERS:
        raise ModelError(f"{prefix}: channel_order '{spec.channel_order}' is not RGB or BGR")
    if len(spec.mean) != 3 or len(spec.std) != 3 or min(spec.std) <= 0:
        raise ModelError(f"{prefix}: mean and std need 3 values each, std > 0")
    if spec.is_embedder:
        if spec.crop not in CROP_STYLES:
            raise ModelError(f"{prefix}: crop '{spec.crop}' is not one of {CROP_STYLES}")
        if len(spec.input_size) != 2 or min(spec.input_size) <= 0:
            raise ModelError(f"{prefix}: input_size must be [width, height] > 0")
        if spec.output_size <= 0:
            raise ModelError(f"{prefix}: output_size must be > 0")
        for key in ("match_threshold", "threshold_1pct", "threshold_5pct", "same_person_floor"):
            if not -1.0 < getattr(spec, key) < 1.0:
                raise ModelError(f"{prefix}: {key} {getattr(spec, key)} is not a cosine in (-1, 1)")


def load_manifest(path: Path) -> dict[str, ModelSpec]:
    """Reads models/manifest.toml: one `[models.NAME]` table per model."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ModelError(f"{path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - {"models"})
    if unknown:
        raise ModelError(f"{path}: unknown top-level key(s) {unknown}; expected [models.NAME] tables")
    tables = data.get("models", {})
    return {name: spec_from_table(name, table, str(path)) for name, table in tables.items()}


def load_spec_file(path: Path, name: str, file: str, sha256: str) -> ModelSpec:
    """Reads a spec template (models/specs/*.toml) and fills in the file and its hash."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ModelError(f"{path}: cannot read spec: {exc}") from exc
    table.update({"file": file, "sha256": sha256})
    return spec_from_table(name, table, str(path))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_manifest(specs: dict[str, ModelSpec]) -> str:
    """Writes specs back as TOML, sorted by name so the file diffs cleanly."""
    lines = ["# Written by tools/export_models.py; each model's spec says how to feed it.", ""]
    defaults = ModelSpec(name="", kind="", file="", sha256="")
    for name in sorted(specs):
        spec = specs[name]
        lines.append(f"[models.{name}]")
        for f in fields(ModelSpec):
            if f.name in ("name", "extra"):
                continue
            value = getattr(spec, f.name)
            if f.name not in ("kind", "file", "sha256") and value == getattr(defaults, f.name):
                continue
            lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def default_reason(spec: ModelSpec, installed: list[ModelSpec]) -> str:
    """Why `spec` is the default among `installed`, in a line for `edged models`."""
    if spec.named_1pct:
        others = ", ".join(f"{s.name} {100 * s.named_1pct:.1f}%" for s in installed if s is not spec and s.named_1pct)
        return (f"the most accurate installed embedder as measured by tools/calibrate.py: names "
                f"{100 * spec.named_1pct:.1f}% of enrolled people's faces at 1% false accepts"
                + (f" (against {others})" if others else ""))
    return "no installed embedder has a measured accuracy: the first in edged's order of preference"


def installed_embedders(specs: dict[str, ModelSpec], models_dir: Path) -> list[ModelSpec]:
    return [s for s in specs.values() if s.is_embedder and s.path(models_dir).exists() and not s.untrained]


def choose_embedder(specs: dict[str, ModelSpec], models_dir: Path, wanted: str | None) -> ModelSpec:
    """The embedder named, or the installed one with the best measured accuracy (named_1pct,
    written by tools/calibrate.py); embedders never measured come after, in order of preference."""
    embedders = {n: s for n, s in specs.items() if s.is_embedder}
    if wanted:
        if wanted not in embedders:
            raise ModelError(f"embedder '{wanted}' is not in the manifest; installed: "
                             f"{sorted(embedders) or 'none'}")
        return embedders[wanted]
    installed = installed_embedders(specs, models_dir)
    if installed:
        order = {name: i for i, name in enumerate(EMBEDDER_PREFERENCE)}
        return min(installed, key=lambda s: (-s.named_1pct, order.get(s.name, len(order)), s.name))
    raise ModelError(f"no embedder is installed in {models_dir}: run tools/setup.sh, or "
                     "tools/export_models.py (see docs/recognition.md)")
