"""ONNX Runtime providers: "auto" picks the best the installed onnxruntime offers, per model,
names can be given, and a provider that cannot take a model falls back to the CPU with one
warning. This machine has no GPU: selection is checked on lists of providers, the fallback by
a provider whose session creation fails, and the daemon with a provider it does not have."""

import logging
from pathlib import Path

import numpy as np
import pytest
from services import Daemon, config, free_port, gallery_copy, wait_until

from edged.runtime import CPU, ModelStore, RuntimeOptions, choose_providers

from .conftest import ROOT

GPU_BOX = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]


@pytest.mark.parametrize(("wanted", "available", "chosen"), [
    (("auto",), GPU_BOX, GPU_BOX),
    (("auto",), ["CUDAExecutionProvider", "CPUExecutionProvider"], ["CUDAExecutionProvider", CPU]),
    (("auto",), ["OpenVINOExecutionProvider", "CPUExecutionProvider"], ["OpenVINOExecutionProvider", CPU]),
    (("auto",), ["AzureExecutionProvider", "CPUExecutionProvider"], [CPU]),
    (("CUDAExecutionProvider",), GPU_BOX, ["CUDAExecutionProvider", CPU]),
    (("OpenVINOExecutionProvider",), GPU_BOX, [CPU]),  # named but not there: the CPU
    (("CPUExecutionProvider", "auto"), GPU_BOX, GPU_BOX[:2] + [CPU]),
])
def test_selection(wanted, available, chosen):
    assert choose_providers(wanted, available) == chosen


def test_a_provider_that_fails_to_load_a_model_falls_back_to_the_cpu(monkeypatch, caplog):
    import onnxruntime as ort

    real = ort.InferenceSession

    def gpu_that_fails(path, options, providers):
        if providers != [CPU]:
            raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected")
        return real(path, options, providers=providers)

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", CPU])
    monkeypatch.setattr(ort, "InferenceSession", gpu_that_fails)
    store = ModelStore(ROOT / "models", RuntimeOptions(providers=("auto",)))
    with caplog.at_level(logging.WARNING, logger="edged.runtime"):
        session = store.session("mtcnn_rnet")
    assert store.providers == {"mtcnn_rnet": CPU} and session.providers == [CPU]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "CUDAExecutionProvider failed to load it" in warnings[0], warnings
    assert session.run(np.zeros((1, 3, 24, 24), np.float32))[1].shape == (1, 2)


def test_cuda_sessions_get_a_cudnn_search_per_model(monkeypatch):
    """Measured on an H100 (docs/accelerators.md): cuDNN's DEFAULT algorithm for MTCNN, whose input shapes
    change every frame, and ONNX Runtime's EXHAUSTIVE search for the embedder."""
    import onnxruntime as ort

    real = ort.InferenceSession
    asked: dict[str, list] = {}

    def cuda_box(path, options, providers):
        asked[path] = providers
        return real(path, options, providers=[CPU])  # no GPU here: build it on the CPU

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", CPU])
    monkeypatch.setattr(ort, "InferenceSession", cuda_box)
    for options, detector, embedder in ((RuntimeOptions(), "DEFAULT", "EXHAUSTIVE"),
                                        (RuntimeOptions(cudnn_search="HEURISTIC"), "HEURISTIC", "HEURISTIC")):
        store = ModelStore(options=options)
        store.session("mtcnn_pnet")
        store.session("mobilefacenet")
        by_model = {Path(path).stem: providers for path, providers in asked.items()}
        assert by_model["mtcnn_pnet"] == [("CUDAExecutionProvider", {"cudnn_conv_algo_search": detector}), CPU]
        assert by_model["mobilefacenet"] == [("CUDAExecutionProvider", {"cudnn_conv_algo_search": embedder}), CPU]
        asked.clear()


def test_the_daemon_says_what_each_model_runs_on(scenario_video, enrolled_gallery, tmp_path):
    port = free_port()
    text = config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port)
    text += '[runtime]\nproviders = ["CUDAExecutionProvider", "auto"]\n'
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        status = wait_until(lambda: daemon.status(port), 60, "the status endpoint")
    finally:
        daemon.stop()
    assert set(status["providers"]) == {"mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "mobilefacenet_paddle"}
    assert set(status["providers"].values()) == {CPU}
    assert "not in this onnxruntime" in daemon.text()
