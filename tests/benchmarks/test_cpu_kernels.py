"""benchmarks/cpu_kernels.py: each runtime runs the same network on the same inputs, its difference from eager fp32
is measured, and ratios are against ONNX Runtime measured in the same run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rdtf_engine.diffusion import cpu_choice


@pytest.fixture
def bench(load_script):
    return load_script("benchmarks/cpu_kernels.py")


def _conv():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3, padding=1), torch.nn.SiLU(), torch.nn.Conv2d(8, 4, 3)).eval()


def test_difference_is_relative_to_the_reference(bench):
    ref = np.array([3.0, -4.0])  # RMS 3.54
    assert bench._difference(ref, ref) == {"max_abs_diff": 0.0, "rel_rms_diff": 0.0}
    d = bench._difference(ref + np.array([0.0, 0.5]), ref)
    assert d["max_abs_diff"] == 0.5 and abs(d["rel_rms_diff"] - np.sqrt(0.125) / np.sqrt(12.5)) < 1e-12


def test_without_an_onnx_file_only_pytorch_is_timed(bench):
    net, x = _conv(), torch.randn(2, 4, 16, 16)
    out = bench.measure_network(lambda: net(x).float().numpy(), None, {}, iters=1, threads=1)
    assert set(out) == {"torch", "torch-bf16"}
    assert out["torch"]["rel_rms_diff"] == 0 and 0 < out["torch-bf16"]["rel_rms_diff"] < 0.05
    assert all("vs_onnx" not in r for r in out.values())  # no ONNX Runtime figure to compare with


@pytest.mark.skipif(not cpu_choice.onnx_installed(), reason="onnxruntime not installed")
def test_every_runtime_runs_the_exported_file_against_onnx_runtime(bench, tmp_path):
    net, x = _conv(), torch.randn(2, 4, 16, 16)
    path = tmp_path / "net.onnx"
    torch.onnx.export(net, (x,), str(path), input_names=["x"], output_names=["y"], opset_version=17, dynamo=False)
    out = bench.measure_network(lambda: net(x).float().numpy(), path, {"x": x.numpy()}, iters=1, threads=1)
    assert out["onnx"]["vs_onnx"] == 1.0 and out["onnx"]["max_abs_diff"] < 1e-4
    if cpu_choice.openvino_installed():
        assert out["openvino"]["max_abs_diff"] < 1e-4 and out["openvino"]["vs_onnx"] > 0
        bf16 = out["openvino-bf16"]
        assert "skipped" in bf16 or 0 < bf16["rel_rms_diff"] < 0.05
    else:
        assert out["openvino"] == {"skipped": "openvino not installed"}
