"""tools/setup.sh on a bare box, as a newcomer meets it: a clone without ../shared's models, a
virtual environment left half-made by an earlier run, and no embedder. Offline (a dead server)
it stops with one message naming the two ways to provide one; with the checkpoint reachable it
fetches it, checks its sha256, exports and checks it, and the box has an embedder."""

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
    assert offline.returncode == 1, offline.stdout[-2000:] + offline.stderr[-2000:]
    assert "is incomplete (no working pip); making it again" in offline.stdout
    assert "No face-recognition model (embedder) is installed" in offline.stderr
    assert "EDGED_FACENET_WEIGHTS=" in offline.stderr and "export_models.py import" in offline.stderr
    assert "Traceback" not in offline.stderr

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
