"""Match thresholds: the protocol's arithmetic, the calibration tool on real photos, and the
shipped operating points checked on calibration people that were not used to fit them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edged.calibration import (
    TrialSettings,
    operating_point,
    run_trials,
    split_people,
    threshold_for,
)
from edged.engine import EngineOptions, FaceEngine
from edged.manifest import spec_from_table
from edged.runtime import ModelStore

from .conftest import DATA, EMBEDDERS, ROOT

CALIBRATION = DATA / "calibration" / "faces"


def test_threshold_names_at_most_the_rate_of_strangers():
    strangers = np.linspace(0.0, 0.999, 1000)
    for rate in (0.01, 0.05):
        threshold = threshold_for(strangers, rate)
        accepted = int((strangers >= threshold).sum())
        assert accepted <= rate * 1000
        assert int((strangers >= threshold - 0.002).sum()) > accepted - 2  # not needlessly high


def test_trials_split_by_person_and_count_every_probe():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(30, 128))
    labels = np.repeat([f"p{i:02d}" for i in range(30)], 3)
    vectors = np.repeat(centres, 3, axis=0) + 0.05 * rng.normal(size=(90, 128))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    fit, check = split_people(labels, 0)
    assert not set(fit) & set(check) and len(fit) + len(check) == 30
    scores = run_trials(vectors, labels, fit, TrialSettings(5, 1, "max", trials=4), 0)
    assert scores is not None
    assert len(scores.genuine) == 4 * 5 * 2  # 2 probes each of 5 enrolled, per trial
    assert len(scores.stranger) == 4 * 10 * 3  # every photo of the 10 not enrolled
    point = operating_point(scores, 0.5)
    assert point.identification_rate == 1.0 and point.false_accepts == 0  # well-separated people
    assert run_trials(vectors, labels, fit, TrialSettings(15, 1), 0) is None  # all enrolled: no strangers


@pytest.mark.parametrize("false_accepts", ["1%", "5%"])
def test_shipped_thresholds_hold_on_people_not_used_to_fit_them(embedder_name, false_accepts):
    """The spec's operating point, fitted on one half of the calibration people, names at most
    its stated share of the other half's strangers (20 enrolled people, 1 photo each)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import calibrate

    engine = _engine(embedder_name)
    spec = engine.embedder_spec
    assert spec.threshold_1pct and spec.threshold_5pct and spec.match_threshold == spec.threshold_1pct
    data = _embedded(embedder_name)
    _, held_out = split_people(data.labels, 0)
    scores = run_trials(data.vectors, data.labels, held_out, TrialSettings(20, 1, "max", 20), 1)
    assert scores is not None
    point = operating_point(scores, spec.threshold_for(false_accepts))
    rate = float(false_accepts.rstrip("%")) / 100
    assert point.strangers > 5000
    assert point.false_accept_rate <= rate, (
        f"{embedder_name}: {point.false_accepts}/{point.strangers} strangers named at {point.threshold}")
    assert point.identification_rate > 0.75  # and it still names most enrolled people
    assert calibrate.FIT_SIZE == 20


def test_calibrate_tool_reproduces_its_table_on_a_subset(tmp_path):
    out = tmp_path / "calibration.json"
    result = subprocess.run(
        [sys.executable, "tools/calibrate.py", "--embedder", "mobilefacenet", "--people", "120", "--trials", "5",
         "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "| 1 photo | 20 |" in result.stdout and "held-out people" in result.stdout
    figures = json.loads(out.read_text())["mobilefacenet"]
    assert figures["people"] == 120 and figures["fit_people"] == 60 and not set(figures["no_face"])
    rows = {(row["variant"], row["gallery_size"]): row for row in figures["table"]}
    assert ("1 photo", 5) in rows and ("1 photo", 20) in rows
    for row in rows.values():
        for label, rate in (("1%", 0.01), ("5%", 0.05)):
            assert row[label]["false_accepts"] <= rate * row[label]["strangers"]
        # A stricter threshold names fewer people, never more.
        assert row["1%"]["threshold"] >= row["5%"]["threshold"]
        assert row["1%"]["named_correctly"] <= row["5%"]["named_correctly"]
    shipped = _engine("mobilefacenet").embedder_spec.threshold_1pct
    assert abs(figures["thresholds"]["1%"] - shipped) < 0.06  # a subset lands near the full fit


def test_false_accepts_setting_picks_the_measured_point(tmp_path):
    engine = _engine("mobilefacenet")
    spec = engine.embedder_spec
    loose = FaceEngine(EngineOptions(embedder="mobilefacenet", false_accepts="5%"))
    explicit = FaceEngine(EngineOptions(embedder="mobilefacenet", match_threshold=0.6))
    assert engine.match_threshold == spec.threshold_1pct
    assert loose.match_threshold == spec.threshold_5pct < spec.threshold_1pct
    assert explicit.match_threshold == 0.6
    assert "1% of strangers" in engine.describe_threshold()
    table = {"kind": "embedder", "file": "x.onnx", "sha256": "0" * 64, "crop": "arcface_5point",
             "input_size": [112, 112], "output_size": 128, "match_threshold": 0.4}
    uncalibrated = spec_from_table("x", table, "test")
    assert uncalibrated.threshold_for("5%") == 0.4  # never measured: the spec's own threshold


_ENGINES: dict[str, FaceEngine] = {}
_EMBEDDED: dict[str, object] = {}


def _engine(name: str) -> FaceEngine:
    if name not in _ENGINES:
        _ENGINES[name] = FaceEngine(EngineOptions(embedder=name))
    return _ENGINES[name]


def _embedded(name: str):  # type: ignore[no-untyped-def]
    import calibrate

    if name not in _EMBEDDED:
        _EMBEDDED[name] = calibrate.embed_photos(_engine(name), CALIBRATION, 0, 0)
    return _EMBEDDED[name]


def test_every_shipped_embedder_spec_is_calibrated():
    store = ModelStore()
    for name in EMBEDDERS:
        spec = store.specs[name]
        assert spec.calibration.startswith("calibration/faces"), name
        assert 0 < spec.threshold_5pct < spec.threshold_1pct < 1
