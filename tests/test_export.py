"""tools/export_models.py: exports verified against torch, model imports, refusals."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edged.errors import ModelError
from edged.manifest import load_manifest, sha256_of

from .conftest import DATA, ROOT, SHARED_MODELS

torch = pytest.importorskip("torch", reason="the export tool needs torch (tools extra)")
sys.path.insert(0, str(ROOT / "tools"))
import export_models  # noqa: E402
from services import free_port  # noqa: E402


def tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "export_models.py"), *args],
                          capture_output=True, text=True, timeout=600)


def test_mtcnn_export_matches_the_committed_models(tmp_path):
    result = tool("--models-dir", str(tmp_path), "--verify-images", str(DATA / "aligned"), "mtcnn")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("min cosine = 1.0000") == 3
    fresh = load_manifest(tmp_path / "manifest.toml")
    committed = load_manifest(ROOT / "models" / "manifest.toml")
    import onnxruntime as ort

    probe = np.random.default_rng(0).standard_normal((4, 3, 48, 48)).astype(np.float32)
    for name in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"):
        assert fresh[name].kind == committed[name].kind
        size = 48 if name == "mtcnn_onet" else 24
        outputs = [ort.InferenceSession(str(spec.path(folder))).run(None, {"input": probe[:, :, :size, :size]})
                   for spec, folder in ((fresh[name], tmp_path), (committed[name], ROOT / "models"))]
        for a, b in zip(*outputs, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)


def test_facenet_without_weights_explains_and_exports_nothing(tmp_path):
    result = tool("--models-dir", str(tmp_path), "facenet")
    assert result.returncode == 2
    assert "20180402-114759-vggface2.pt" in result.stderr and "--weights FILE" in result.stderr
    assert not list(tmp_path.iterdir())


def test_facenet_with_a_wrong_file_is_refused(tmp_path):
    bogus = tmp_path / "weights.pt"
    torch.save({"conv.weight": torch.zeros(1)}, bogus)
    result = tool("--models-dir", str(tmp_path / "m"), "facenet", "--weights", str(bogus))
    assert result.returncode == 2 and "not a facenet-pytorch InceptionResnetV1 checkpoint" in result.stderr


def test_inception_resnet_export_path_with_random_weights(tmp_path):
    """Tests the export path only: randomly initialised weights, marked untrained in the spec."""
    import torch_nets

    torch.manual_seed(0)
    model = torch_nets.InceptionResnetV1()
    spec = export_models.export_facenet(model, tmp_path, DATA / "aligned", "irv1_random_test",
                                        "random weights (export-path test)", untrained=True)
    assert spec.untrained and spec.output_size == 512 and spec.crop == "facenet_margin"
    assert sha256_of(tmp_path / "irv1_random_test.onnx") == spec.sha256
    # The exported graph gives torch's answer on real faces, batch size free.
    import onnxruntime as ort

    inputs = export_models.facenet_inputs(DATA / "aligned")
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(inputs)).numpy()
    got = ort.InferenceSession(str(tmp_path / "irv1_random_test.onnx")).run(None, {"input": inputs})[0]
    assert (np.sum(expected * got, axis=1) > 0.9999).all()


def test_verification_refuses_a_mismatching_export(tmp_path, monkeypatch):
    """If ONNX and torch disagree, nothing is written."""
    import torch_nets

    real_run = export_models.compare
    monkeypatch.setattr(export_models, "compare", lambda name, e, g: 0.5 + 0 * real_run(name, e, g))
    with pytest.raises(export_models.ExportRefused, match="differs from torch"):
        export_models.export_verified(torch_nets.RNet(), "rnet", export_models.to_input(
            export_models.face_images(DATA / "aligned"), (24, 24)), tmp_path / "rnet.onnx",
            ["input"], ["reg", "prob"], {"input": {0: "batch"}})
    assert not (tmp_path / "rnet.onnx").exists()


def test_import_registers_an_existing_onnx_embedder(tmp_path):
    result = tool("--models-dir", str(tmp_path), "import", str(SHARED_MODELS / "mobilefacenet_paddle.onnx"),
                  "--spec", str(ROOT / "models" / "specs" / "mobilefacenet_paddle.toml"))
    assert result.returncode == 0, result.stderr
    spec = load_manifest(tmp_path / "manifest.toml")["mobilefacenet_paddle"]
    assert spec.input_name == "x" and spec.channel_order == "BGR" and spec.output_size == 128
    assert spec.path(tmp_path) == Path(os.path.abspath(SHARED_MODELS / "mobilefacenet_paddle.onnx"))


def test_import_with_a_spec_that_does_not_fit_is_refused(tmp_path):
    wrong = tmp_path / "wrong.toml"
    text = (ROOT / "models" / "specs" / "mobilefacenet.toml").read_text().replace("output_size = 128",
                                                                               "output_size = 512")
    wrong.write_text(text)
    result = tool("--models-dir", str(tmp_path), "import", str(SHARED_MODELS / "mobilefacenet.onnx"),
                  "--spec", str(wrong))
    assert result.returncode == 2 and "spec says (N, 512)" in result.stderr


def test_manifest_refuses_unknown_keys(tmp_path):
    shutil.copy(ROOT / "models" / "manifest.toml", tmp_path / "manifest.toml")
    with (tmp_path / "manifest.toml").open("a") as f:
        f.write('\n[models.extra]\nkind = "embedder"\nfile = "x.onnx"\nsha256 = "0"\ncolour = "RGB"\n')
    with pytest.raises(ModelError, match="model 'extra' has unknown key\\(s\\) \\['colour'\\]"):
        load_manifest(tmp_path / "manifest.toml")


def test_a_changed_model_file_is_caught(tmp_path):
    from edged.runtime import ModelStore

    for name in ("manifest.toml", "mtcnn_rnet.onnx"):
        shutil.copy(ROOT / "models" / name, tmp_path / name)
    with (tmp_path / "mtcnn_rnet.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelError, match="mtcnn_rnet.*has sha256"):
        ModelStore(tmp_path).session("mtcnn_rnet")


@pytest.fixture
def weights_server(tmp_path):
    """A local HTTP server with a checkpoint (random weights: the fetch path, not the model)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    import torch_nets

    served = tmp_path / "served"
    served.mkdir()
    torch.manual_seed(0)
    torch.save(torch_nets.InceptionResnetV1().state_dict(), served / "weights.pt")
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/weights.pt", sha256_of(served / "weights.pt")
    server.shutdown()


def test_the_download_is_checked_by_sha256(weights_server, tmp_path):
    url, right = weights_server
    cache, models = tmp_path / "cache", tmp_path / "models"
    common = ("--models-dir", str(models), "facenet", "--download", "--url", url, "--cache", str(cache))
    wrong = tool(*common)  # the published release's hash: this file is not it
    assert wrong.returncode == 2 and "sha256 is" in wrong.stderr and "nothing was exported" in wrong.stderr
    assert not models.exists() and not list(cache.glob("*"))
    dead = tool("--models-dir", str(models), "facenet", "--download", "--url", f"http://127.0.0.1:{free_port()}/x.pt",
                "--cache", str(cache))
    assert dead.returncode == 2 and "cannot download" in dead.stderr
    good = tool(*common, "--sha256", right)
    assert good.returncode == 0, good.stderr
    spec = load_manifest(models / "manifest.toml")["inception_resnet_v1_vggface2"]
    assert spec.output_size == 512 and (models / "inception_resnet_v1_vggface2.onnx").is_file()
