"""The CPU runtime: the denoiser on ONNX Runtime samples what PyTorch samples, is exported once per weights and
shapes, and any failure or an unknown choice leaves sampling on PyTorch."""

from __future__ import annotations

import logging

import pytest
import torch
from sampling_fixtures import H, W, _pipe, _text, _window

from rdtf_engine.diffusion import cpu_choice, cpu_runtime
from rdtf_engine.diffusion.cpu_choice import resolve_cpu_runtime
from rdtf_engine.diffusion.cpu_runtime import OnnxStep
from rdtf_engine.diffusion.pipeline import SampleParams

needs_ort = pytest.mark.skipif(not cpu_choice.onnx_installed(), reason="onnxruntime not installed")


@needs_ort
@pytest.mark.slow  # one ONNX export of a tiny denoiser: ~10 s on a quiet 2-core machine, minutes on a busy one
def test_onnx_sampling_matches_pytorch_and_reuses_its_export(monkeypatch, tmp_path):
    monkeypatch.setenv("RDTF_HOME", str(tmp_path))
    p = SampleParams("x", frames=W, size=8 * H, steps=4, seed=3, guidance_image=1.5)
    w, text = _window(True, 4), _text()  # a given frame: three guidance branches, a non-zero condition
    torch_pipe, onnx_pipe = _pipe(), _pipe()
    onnx_pipe.step_fns = type(onnx_pipe.step_fns)(onnx_pipe.unet, onnx_pipe.device, cpu_runtime="onnx")
    with torch.no_grad():
        ref = torch_pipe._denoise(w, p, text, torch.Generator().manual_seed(3), None)
        out = onnx_pipe._denoise(w, p, text, torch.Generator().manual_seed(3), None)
    assert any(isinstance(f, OnnxStep) for f in onnx_pipe.step_fns._built.values())
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    exports = list((tmp_path / "cache" / "onnx").glob("dfgn-*.onnx"))
    assert len(exports) == 1

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr(cpu_runtime, "_export", no_export)  # a fresh pipeline on the same weights: from the cache
    again = _pipe()
    again.step_fns = type(again.step_fns)(again.unet, again.device, cpu_runtime="onnx")
    with torch.no_grad():
        out2 = again._denoise(w, p, text, torch.Generator().manual_seed(3), None)
    assert torch.equal(out2, out)


@needs_ort
def test_a_checked_export_is_trusted_by_later_processes_until_its_bytes_change(monkeypatch, tmp_path):
    monkeypatch.setenv("RDTF_HOME", str(tmp_path))
    example = (torch.zeros(1, 4, W, H, H), torch.tensor(5), *_text(), torch.zeros(2, 4, W, H, H), torch.ones(2))
    pipe = _pipe()
    first = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="onnx")
    assert isinstance(first.get(example), OnnxStep)
    (export,) = (tmp_path / "cache" / "onnx").glob("dfgn-*.onnx")
    assert export.with_suffix(".verified").read_text().strip() == cpu_runtime._file_sha256(export)

    calls = []
    real = cpu_runtime._NetworkCall.forward
    monkeypatch.setattr(cpu_runtime._NetworkCall, "forward", lambda self, *a: calls.append(1) or real(self, *a))
    again = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="onnx")
    assert isinstance(again.get(example), OnnxStep) and calls == []  # no eager reference call: the marker matches

    export.with_suffix(".verified").write_text("0" * 64 + "\n")  # another file's hash: checked again
    third = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="onnx")
    assert isinstance(third.get(example), OnnxStep) and calls == [1]
    assert export.with_suffix(".verified").read_text().strip() == cpu_runtime._file_sha256(export)


@needs_ort
def test_failed_export_logs_and_samples_with_pytorch(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("RDTF_HOME", str(tmp_path))

    def broken(*a, **k):
        raise RuntimeError("unsupported operator")

    monkeypatch.setattr(torch.onnx, "export", broken)
    pipe = _pipe()
    pipe.step_fns = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="onnx")
    example = (torch.zeros(1, 4, W, H, H), torch.tensor(5), *_text(), torch.zeros(2, 4, W, H, H), torch.ones(2))
    with caplog.at_level(logging.WARNING, logger="rdtf_engine.diffusion"):
        assert pipe.step_fns.get(example) == pipe.step_fns.eager
    assert "ONNX Runtime sampling unavailable, sampling eagerly: RuntimeError: unsupported operator" in caplog.text


def test_runtime_choice(monkeypatch, caplog):
    monkeypatch.setenv("RDTF_CPU_RUNTIME", "torch")
    assert resolve_cpu_runtime() == "torch"
    assert resolve_cpu_runtime("auto") == ("onnx" if cpu_choice.onnx_installed() else "torch")
    monkeypatch.setattr(cpu_choice, "onnx_installed", lambda: False)
    with caplog.at_level(logging.WARNING, logger="rdtf_engine.diffusion"):
        assert resolve_cpu_runtime("onnx") == "torch"
        assert resolve_cpu_runtime("tensorrt") == "torch"
    assert "onnxruntime is not installed" in caplog.text and "'tensorrt' is not one of" in caplog.text


@needs_ort
@pytest.mark.slow  # one ONNX export of a tiny denoiser
def test_onnx_samples_what_pytorch_samples_with_size_deltas(monkeypatch, tmp_path):
    """The size deltas are forward hooks switched by the latent grid: the export of a native-size window must
    carry them (the export is checked against eager before use, and this compares whole samples)."""
    from rdtf_engine.core.config import DFGN_PRESETS
    from rdtf_engine.model.dfgn import DFGN

    monkeypatch.setenv("RDTF_HOME", str(tmp_path))
    p = SampleParams("x", frames=W, size=8 * H, steps=4, seed=3, guidance_image=1.5)
    w, text = _window(True, 4), _text()
    pipes = []
    for runtime in ("torch", "onnx"):
        pipe = _pipe()
        torch.manual_seed(0)
        pipe.unet = DFGN(**{**DFGN_PRESETS["tiny"], "num_frames": W, "size_delta_rank": 4,
                            "size_delta_off_latent": H // 2}).eval()
        with torch.no_grad():
            for q in pipe.unet.size_deltas.parameters():
                q.copy_(torch.randn(q.shape, generator=torch.Generator().manual_seed(q.numel())) * 0.05)
        pipe.step_fns = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime=runtime)
        pipes.append(pipe)
    with torch.no_grad():
        ref, out = (pp._denoise(w, p, text, torch.Generator().manual_seed(3), None) for pp in pipes)
        pipes[0].unet.size_deltas.deltas.apply(lambda m: torch.nn.init.zeros_(m.weight) if hasattr(m, "weight") else None)
        without = pipes[0]._denoise(w, p, text, torch.Generator().manual_seed(3), None)
    assert any(isinstance(f, OnnxStep) for f in pipes[1].step_fns._built.values())
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    assert (ref - without).abs().max() > 1e-3  # the deltas were in the sample


@needs_ort
@pytest.mark.slow  # two ONNX exports of a tiny denoiser
def test_onnx_keeps_one_export_per_few_step_switch_and_samples_what_pytorch_samples(monkeypatch, tmp_path):
    """The few-step deltas are switched per sample (the few-step sampler): an export holds one position of the
    switch, so the runtime must key its exports by it — one sample with them on, one off, both as PyTorch draws."""
    from rdtf_engine.core.config import DFGN_PRESETS
    from rdtf_engine.model.dfgn import DFGN
    from rdtf_engine.model.size_deltas import set_few_step

    monkeypatch.setenv("RDTF_HOME", str(tmp_path))
    w, text = _window(True, 4), _text()
    pipes = []
    for runtime in ("torch", "onnx"):
        pipe = _pipe()
        torch.manual_seed(0)
        pipe.unet = DFGN(**{**DFGN_PRESETS["tiny"], "num_frames": W, "few_step_delta_rank": 4}).eval()
        with torch.no_grad():
            for q in pipe.unet.few_step_deltas.parameters():
                q.copy_(torch.randn(q.shape, generator=torch.Generator().manual_seed(q.numel())) * 0.05)
        pipe.step_fns = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime=runtime)
        pipes.append(pipe)
    out = {}
    with torch.no_grad():
        for few in (True, False):
            p = SampleParams("x", frames=W, size=8 * H, steps=4, seed=3, scheduler="lcm" if few else "dpm")
            for pp in pipes:
                set_few_step(pp.unet, few)
                out[few, pp.step_fns.cpu_runtime] = pp._denoise(w, p, text, torch.Generator().manual_seed(3), None)
    assert sum(isinstance(f, OnnxStep) for f in pipes[1].step_fns._built.values()) == 2
    for few in (True, False):
        torch.testing.assert_close(out[few, "onnx"], out[few, "torch"], rtol=1e-4, atol=1e-4)
