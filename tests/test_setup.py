"""tools/setup.sh on a bare box, as a newcomer meets it: a clone without ../shared's models, a
virtual environment left half-made by an earlier run, and no embedder. Offline (a dead server)
it finishes without one, in two lines saying how to provide one, and without installing torch;
with the checkpoint reachable it fetches it, checks its sha256, exports and checks it, and the
box has an embedder."""

import functools
import os
import subprocess
import sys
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from services import free_port

from .conftest import DATA, ROOT

torch = pytest.importorskip("torch", reason="the served checkpoint is made with torch (tools extra)")


def test_setup_on_a_bare_clone_repairs_the_venv_and_fetches_the_embedder(tmp_path):
    import torch_nets

    from edged.manifest import sha256_of

    clone = tmp_path / "edged"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    for changed in subprocess.run(["git", "ls-files", "-m", "-o", "--exclude-standard"], cwd=ROOT, text=True,
                                  capture_output=True, check=True).stdout.split():
        (clone / changed).parent.mkdir(parents=True, exist_ok=True)  # work not yet committed travels too
        (clone / changed).write_bytes((ROOT / changed).read_bytes())
    shared = tmp_path / "shared"  # the demo video only: no models beside the checkout
    (shared / "data" / "video").mkdir(parents=True)
    (shared / "data" / "video" / "crowd_1080p.mp4").symlink_to(DATA / "video" / "crowd_1080p.mp4")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(clone / ".venv")], check=True, timeout=120)
    env = {**os.environ, "EDGED_SHARED": str(shared), "EDGED_MODELS": str(tmp_path / "models"),
           "EDGED_FACENET_URL": f"http://127.0.0.1:{free_port()}/20180402-114759-vggface2.pt"}
    env.pop("VIRTUAL_ENV", None)

    def setup() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "tools/setup.sh"], cwd=clone, env=env, capture_output=True, text=True,
                              timeout=900)

    offline = setup()
    # Offline is no failure: the box finds and tracks faces without an embedder, and two lines
    # say how to add one. torch (754 MB) is not installed for a download that cannot happen.
    assert offline.returncode == 0, offline.stdout[-2000:] + offline.stderr[-2000:]
    assert "is incomplete (no working pip); making it again" in offline.stdout
    said = [line for line in offline.stdout.splitlines() if "embedder" in line.lower() and "[setup]" in line]
    assert said[0].startswith("[setup] no embedder: faces will be found and tracked, not named"), said
    assert "EDGED_FACENET_WEIGHTS=" in offline.stdout and len(said) <= 3, said
    assert "installing torch" not in offline.stdout and "Traceback" not in offline.stderr
    assert "\x1b[" not in offline.stdout  # not a terminal: no colour codes in a log
    venv_python = str(clone / ".venv" / "bin" / "python")
    no_torch = subprocess.run([venv_python, "-c", "import importlib.util as u; print(u.find_spec('torch'))"],
                              capture_output=True, text=True, check=True).stdout
    assert no_torch.strip() == "None"
    again = setup()  # a rerun installs nothing again
    assert again.returncode == 0 and "installing" not in again.stdout, again.stdout

    served = tmp_path / "served"
    served.mkdir()
    torch.manual_seed(0)  # random weights: this tests the fetch path, not the model
    torch.save(torch_nets.InceptionResnetV1().state_dict(), served / "20180402-114759-vggface2.pt")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler,
                                                                      directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env["EDGED_FACENET_URL"] = f"http://127.0.0.1:{server.server_address[1]}/20180402-114759-vggface2.pt"
        env["EDGED_FACENET_SHA256"] = sha256_of(served / "20180402-114759-vggface2.pt")
        online = setup()
    finally:
        server.shutdown()
    assert online.returncode == 0, online.stdout[-2000:] + online.stderr[-2000:]
    assert "inception_resnet_v1_vggface2" in online.stdout and "(default embedder)" in online.stdout
