"""Shared fixtures: the real data and models in ../shared, and engines built once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("EDGED_SHARED", ROOT.parent / "shared"))
DATA = SHARED / "data"
SHARED_MODELS = SHARED / "models"
EMBEDDERS = ["mobilefacenet", "mobilefacenet_paddle"]

sys.path.insert(0, str(ROOT / "tools"))  # scenarios.py, shared with tools/bench_video.py

# Without ../shared (a bare box, offline), the tests that need its photos, videos or models
# are skipped with this reason, and the rest run. CI always has it: nothing is skipped there.
NO_SHARED = (None if DATA.is_dir() else
             f"needs the real data in {DATA} (../shared beside the project, or set EDGED_SHARED)")
SHARED_FIXTURES = {"scenario_video", "enrolled_gallery", "engine", "embedder_name", "gallery_path", "scenario",
                   "stamped_videos", "calibration"}


def _needs_shared(item: pytest.Item) -> bool:
    """A test needs ../shared when it takes a fixture built from it, is marked `shared`, or its
    module names it."""
    if SHARED_FIXTURES & set(getattr(item, "fixturenames", ())) or item.get_closest_marker("shared"):
        return True
    source = Path(str(item.fspath)).read_text(encoding="utf-8")
    return any(word in source for word in ("DATA", "SHARED", "scenario", "enroll_first_photos"))


def pytest_report_header(config: pytest.Config) -> str | None:
    return f"../shared is missing: tests that {NO_SHARED} are skipped" if NO_SHARED else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if NO_SHARED:
        skip = pytest.mark.skip(reason=NO_SHARED)
        for item in items:
            if _needs_shared(item):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def store():
    from edged.runtime import ModelStore

    return ModelStore(ROOT / "models")


@pytest.fixture(scope="session")
def detector(store):
    from edged.vision.detector import Detector

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


ENROLLED = [("obama", "obama.jpg"), ("biden", "biden.jpg"), ("rose_leslie", "img1.jpg")]


@pytest.fixture(scope="session")
def scenario_video(detector, tmp_path_factory):
    from scenarios import Actor, render, walk

    actors = [
        Actor("obama", "obama2.jpg", (walk(10, 140, 20, 480),)),
        Actor("biden", "biden2.jpg", (walk(20, 150, 480, 40, y=150),)),
        Actor("rose_leslie", "img2.jpg", (walk(60, 170, 520, 420, y=230),)),
        Actor("paul_rudd", "1.jpg", (walk(0, 60, 250, 300, y=10), walk(120, 190, 300, 250, y=10))),
    ]
    return render(tmp_path_factory.mktemp("daemon") / "scenario.mp4", actors, 200, detector)


@pytest.fixture(scope="session")
def enrolled_gallery(tmp_path_factory):
    from services import enroll_first_photos

    from edged.engine import EngineOptions, FaceEngine

    engine = FaceEngine(EngineOptions())  # the default embedder, as the daemon picks it
    return enroll_first_photos(engine, tmp_path_factory.mktemp("gallery") / "gallery.db", ENROLLED)


@pytest.fixture
def s3_server():
    """moto's S3 server on a free port on 127.0.0.1; yields the environment that points boto3 at it."""
    from services import free_port, wait_for_port

    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, 30)
    env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    yield env
    server.terminate()
    server.wait(10)


CLIP_GOP = 25  # the H.264 scenario's keyframe interval, in frames


@pytest.fixture(scope="session")
def stamped_videos(detector, tmp_path_factory):
    """Obama (enrolled) walks in at frame 75 and stays; 10 s in all; every frame numbered.
    `frames`: MPEG-4 part 2 (the clips' frame path); `packets`: H.264 (the packet path)."""
    from scenarios import Actor, render, to_h264, walk

    folder = tmp_path_factory.mktemp("clips")
    actors = [Actor("obama", "obama2.jpg", (walk(75, 249, 40, 400),))]
    mpeg4 = render(folder / "scenario.mp4", actors, 250, detector, stamped=True)
    return {"frames": mpeg4, "packets": to_h264(mpeg4, folder / "scenario-h264.mp4", CLIP_GOP)}


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto on a free port of 127.0.0.1, for one test."""
    from services import Mosquitto

    server = Mosquitto(tmp_path / "mosquitto")
    server.start()
    yield server
    server.stop()


def chromium_page(url: str, tmp_path: Path) -> tuple[str, np.ndarray]:
    """The page at `url` as Debian's headless Chromium renders it at 1400x900: its DOM after
    four seconds of scripts, and a screenshot."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is missing: tools/setup.sh --dev installs Debian's chromium")
    shot = tmp_path / "page.png"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
             f"--user-data-dir={tmp_path / 'chromium'}", "--window-size=1400,900", "--virtual-time-budget=4000"]
    subprocess.run([chromium, *flags, f"--screenshot={shot}", url], capture_output=True, timeout=60)
    dom = subprocess.run([chromium, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=60).stdout
    picture = cv2.imread(str(shot))
    assert picture is not None, "chromium took no screenshot"
    return dom, picture


def live_image_shown(picture: np.ndarray) -> bool:
    """The live image sits at the top left (16 px margin, 960 px wide): a real frame there is
    not the page's plain dark background."""
    live = picture[60:400, 16:700].astype(np.float32)
    return bool(live.std() > 10 and abs(live.mean() - 17) > 20)


@pytest.fixture
def chromium():
    """Debian's Chromium driven by Playwright, for pages measured as a person sees them."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    assert executable, "chromium is missing: tools/setup.sh --dev installs Debian's chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()
