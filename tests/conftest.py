"""Shared fixtures: the real data and models in ../shared, and engines built once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EDGED_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
SHARED_MODELS = SHARED / "models"
EMBEDDERS = ["mobilefacenet", "mobilefacenet_paddle"]

sys.path.insert(0, str(ROOT / "tools"))  # scenarios.py, shared with tools/bench_video.py

if not DATA.is_dir():
    raise RuntimeError(f"tests need the real data in {DATA} (../shared beside the project, or set EDGED_SHARED)")


@pytest.fixture(scope="session")
def store():
    from edged.runtime import ModelStore

    return ModelStore(ROOT / "models")


@pytest.fixture(scope="session")
def detector(store):
    from edged.detector import Detector

    return Detector(store)


@pytest.fixture(scope="session", params=EMBEDDERS)
def embedder_name(request) -> str:
    return request.param


def run_edged(*args: str, env: dict[str, str] | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    """Runs the real `edged` command line in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-m", "edged.cli", *args], capture_output=True, text=True,
                            env=full_env, cwd=ROOT, timeout=600)
    if check and result.returncode != 0:
        raise AssertionError(f"edged {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result
