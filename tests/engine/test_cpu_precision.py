"""CPU precision: bf16 only where the processor computes it, OpenVINO for the denoiser at bf16, the autoencoder
under bf16 autocast, and every failure falling back (OpenVINO → ONNX Runtime → PyTorch) with a logged reason."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from sampling_fixtures import H, W, _pipe, _text

from rdtf_engine.diffusion import cpu_choice, cpu_runtime
from rdtf_engine.diffusion.cpu_choice import resolve_cpu_runtime
from rdtf_engine.diffusion.cpu_runtime import OnnxStep, resolve_cpu_precision
from rdtf_engine.model.autoencoder import build_autoencoder, decode_latents, encode_frames

needs_openvino = pytest.mark.skipif(not cpu_choice.openvino_installed(), reason="openvino not installed")


def _rel_rms(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt())


def test_bf16_only_where_the_processor_has_it(monkeypatch, caplog):
    monkeypatch.delenv("RDTF_CPU_PRECISION", raising=False)
    monkeypatch.setattr(cpu_runtime, "cpu_has_bf16", lambda: True)
    assert resolve_cpu_precision() == "bf16" and resolve_cpu_precision("BF16") == "bf16"
    assert resolve_cpu_precision("fp32") == "fp32"
    monkeypatch.setenv("RDTF_CPU_PRECISION", "fp32")
    assert resolve_cpu_precision() == "fp32" and resolve_cpu_precision("auto") == "bf16"  # an argument wins
    monkeypatch.setattr(cpu_runtime, "cpu_has_bf16", lambda: False)
    with caplog.at_level(logging.WARNING, logger="rdtf_engine.diffusion"):
        assert resolve_cpu_precision("auto") == "fp32"  # quietly: auto means "where it pays"
        assert "bf16 instructions" not in caplog.text
        assert resolve_cpu_precision("bf16") == "fp32"  # asked for: said why not
        assert resolve_cpu_precision("fp16") == "fp32"
    assert "no bf16 instructions" in caplog.text and "'fp16' is not one of" in caplog.text


def test_openvino_is_picked_for_bf16_and_falls_back_when_missing(monkeypatch, caplog):
    monkeypatch.delenv("RDTF_CPU_RUNTIME", raising=False)
    monkeypatch.setattr(cpu_choice, "onnx_installed", lambda: True)
    monkeypatch.setattr(cpu_choice, "openvino_installed", lambda: True)
    assert resolve_cpu_runtime("auto", "bf16") == "openvino"
    assert resolve_cpu_runtime("auto", "fp32") == "onnx"  # OpenVINO fp32 is no faster than ONNX Runtime
    assert resolve_cpu_runtime("openvino", "fp32") == "openvino"  # asked for by name: given
    assert resolve_cpu_runtime("torch", "bf16") == "torch"
    monkeypatch.setattr(cpu_choice, "openvino_installed", lambda: False)
    with caplog.at_level(logging.WARNING, logger="rdtf_engine.diffusion"):
        assert resolve_cpu_runtime("auto", "bf16") == "onnx"
        assert "openvino is not installed" not in caplog.text
        assert resolve_cpu_runtime("openvino", "bf16") == "onnx"
    assert "openvino is not installed" in caplog.text and "using onnx" in caplog.text


def test_device_info_says_what_a_cpu_sample_runs_on(monkeypatch):
    from rdtf_engine.jobs.api import device_info

    monkeypatch.setattr(cpu_runtime, "cpu_has_bf16", lambda: True)
    monkeypatch.setenv("RDTF_CPU_RUNTIME", "torch")
    monkeypatch.setenv("RDTF_CPU_PRECISION", "bf16")
    info = device_info()
    assert info["cpu_runtime"] == "torch" and info["cpu_precision"] == "bf16"
    monkeypatch.setenv("RDTF_CPU_PRECISION", "fp32")
    assert device_info()["cpu_precision"] == "fp32"


def test_the_autoencoder_under_bf16_is_close_to_fp32_and_only_where_asked():
    torch.manual_seed(0)
    vae = build_autoencoder("tiny", 32).eval()
    z = torch.randn(3, 4, 4, 4, generator=torch.Generator().manual_seed(1))
    exact, fast = decode_latents(vae, z, 1.0), decode_latents(vae, z, 1.0, bf16=True)
    assert fast.dtype == torch.float32 and fast.shape == exact.shape == (3, 4, 32, 32)
    # bf16 really ran, and stayed close (a random tiny autoencoder's small outputs: ≈ 3 %; the shipped one 0.5 %)
    assert 0 < _rel_rms(fast, exact) < 0.1
    assert torch.equal(decode_latents(vae, z, 1.0, bf16=False), exact)
    x = exact.clamp(-1, 1)
    lat, lat16 = encode_frames(vae, x, 1.0), encode_frames(vae, x, 1.0, bf16=True)
    assert lat16.dtype == torch.float32 and 0 < _rel_rms(lat16, lat) < 0.1


def test_the_pipeline_runs_its_autoencoder_at_the_step_functions_precision(monkeypatch):
    from rdtf_engine.diffusion import pipeline as pipeline_module

    seen = []
    monkeypatch.setattr(pipeline_module, "decode_latents", lambda vae, z, scale, bf16: seen.append(bf16) or z)
    monkeypatch.setattr(cpu_runtime, "cpu_has_bf16", lambda: True)
    for precision, expected in (("bf16", True), ("fp32", False)):
        pipe = _pipe()
        pipe.step_fns = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="torch", cpu_precision=precision)
        pipe._decode(torch.zeros(1, 4, H, H))
        assert seen[-1] is expected and pipe.step_fns.precision == precision


def test_the_eager_denoiser_at_bf16_runs_under_autocast_and_combines_in_fp32():
    pipe, example = _pipe(), _example()
    fns = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="torch", cpu_precision="fp32")
    with torch.no_grad():
        exact = fns.eager(*example)
        fns.precision = "bf16"  # as a processor with bf16 instructions resolves auto
        fast = fns.eager(*example)
    assert fns.get(example) == fns.eager and fast.dtype == torch.float32
    assert 0 < _rel_rms(fast, exact) < 0.1  # the guided ε̂ (scale 3) of a random tiny model


def _example():
    return (torch.randn(1, 4, W, H, H, generator=torch.Generator().manual_seed(4)), torch.tensor(5), *_text(),
            torch.randn(2, 4, W, H, H, generator=torch.Generator().manual_seed(5)), torch.tensor([3.0, 1.0]))


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One user cache for this module's OpenVINO tests: the tiny denoiser is exported once (≈ 10 s)."""
    return tmp_path_factory.mktemp("ov-home")


@needs_openvino
@pytest.mark.slow  # one ONNX export of a tiny denoiser, compiled by OpenVINO twice
def test_openvino_steps_match_eager_and_record_their_check(monkeypatch, shared_home):
    from rdtf_engine.diffusion.openvino_runtime import OpenVinoStep

    monkeypatch.setenv("RDTF_HOME", str(shared_home))
    pipe, example = _pipe(), _example()
    with torch.no_grad():
        ref = pipe.step_fns.eager(*example)
    for precision in ("fp32", "bf16"):
        fns = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="openvino", cpu_precision="fp32")
        fns.precision = precision  # as the processor allowed it (bf16 is emulated where it has no instructions)
        step = fns.get(example)
        assert isinstance(step, OpenVinoStep)
        out = step(*example)
        if precision == "fp32":
            torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        else:
            assert 0 < _rel_rms(out, ref) < 0.1  # the guided ε̂ (scale 3) of a random tiny model: ≈ 3 %
        marker = step.path.with_suffix(f".openvino-{precision}.verified")
        assert marker.read_text().strip() == cpu_runtime._file_sha256(step.path)
    blobs = shared_home / "cache" / "onnx" / "openvino"  # the compiled blobs are cached, one folder per precision:
    assert list((blobs / "f32").glob("*.blob")) and list((blobs / "bf16").glob("*.blob"))  # (one key for both)

    calls = []
    real = cpu_runtime._NetworkCall.forward
    monkeypatch.setattr(cpu_runtime._NetworkCall, "forward", lambda self, *a: calls.append(1) or real(self, *a))
    again = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="openvino", cpu_precision="fp32")
    assert isinstance(again.get(example), OpenVinoStep) and calls == []  # checked before: no eager reference call


@needs_openvino
@pytest.mark.slow  # reuses the module's export
def test_openvino_that_fails_falls_back_to_onnx_runtime(monkeypatch, shared_home, caplog):
    openvino = cpu_choice.import_openvino()  # (as the engine imports it: without its telemetry)

    monkeypatch.setenv("RDTF_HOME", str(shared_home))

    def broken(*a, **k):
        raise RuntimeError("no plugin for this processor")

    monkeypatch.setattr(openvino.Core, "compile_model", broken)
    pipe, example = _pipe(), _example()
    fns = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="openvino", cpu_precision="fp32")
    with caplog.at_level(logging.WARNING, logger="rdtf_engine.diffusion"):
        step = fns.get(example)
    assert isinstance(step, OnnxStep)
    assert "OpenVINO sampling unavailable, trying ONNX Runtime: RuntimeError: no plugin" in caplog.text
    with torch.no_grad():
        np.testing.assert_allclose(step(*example).numpy(), fns.eager(*example).numpy(), rtol=1e-4, atol=1e-4)


@needs_openvino
@pytest.mark.slow  # reuses the module's export
def test_a_bf16_step_far_from_eager_is_refused(monkeypatch, shared_home, caplog):
    """A compiled network whose output strays (a broken kernel, NaN) must never sample: the check refuses it."""
    from rdtf_engine.diffusion import openvino_runtime

    monkeypatch.setenv("RDTF_HOME", str(shared_home))
    monkeypatch.setattr(openvino_runtime, "_verified", lambda *a: False)
    real = openvino_runtime.OpenVinoStep._run
    monkeypatch.setattr(openvino_runtime.OpenVinoStep, "_run", lambda self, inputs: real(self, inputs) * np.nan)
    pipe, example = _pipe(), _example()
    fns = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="openvino", cpu_precision="fp32")
    fns.precision = "bf16"
    with caplog.at_level(logging.WARNING, logger="rdtf_engine.diffusion"):
        assert isinstance(fns.get(example), OnnxStep)
    assert "OpenVINO bf16 denoiser differs from PyTorch by nan% RMS" in caplog.text
