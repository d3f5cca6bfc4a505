"""A plain `pip install .` into a fresh virtual environment, as a user would, gives an edged
that detects faces from any folder: MTCNN ships inside the package; embedders are looked for
in the models directory, and their absence only limits it to detection."""

import subprocess
import sys

from .conftest import DATA, ROOT


def test_pip_install_then_detect_from_anywhere(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(ROOT)],
                         capture_output=True, text=True, timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "EDGED_MODELS": str(tmp_path / "no-models-yet")}
    result = subprocess.run([str(venv / "bin" / "edged"), "detect", str(DATA / "images" / "obama_and_biden.jpg")],
                            capture_output=True, text=True, cwd=elsewhere, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    count = int(result.stdout.split("obama_and_biden.jpg: ", 1)[1].split(" face(s)", 1)[0])
    assert count >= 2, result.stdout
    assert "detection only" in result.stderr
    installed = subprocess.run([str(venv / "bin" / "python"), "-c", "import edged.runtime as r; "
                                "print(r.bundled_models_dir())"], capture_output=True, text=True, cwd=elsewhere,
                               env=env, timeout=60).stdout.strip()
    assert installed.startswith(str(venv)), f"the models come from {installed}, not the installed package"
