"""The denoiser on OpenVINO, in bf16 where the processor computes it natively (AVX512-BF16, AMX).

Why: on such a processor the denoiser's bf16 call takes ≈ 0.55× ONNX Runtime's fp32 one (2 cores, the shipped
model: 63 against 112 ms on the 128 px draft's grid, 267 against 504 ms at 256 px; ``benchmarks/cpu_kernels.py``),
while OpenVINO in fp32 is within ±15 % of ONNX Runtime — not worth a second runtime, so fp32 stays on ONNX Runtime
and this one is picked for bf16 (``cpu_choice.resolve_cpu_runtime``). bf16 is not exact: the network's output
moves by ≈ 0.6 % RMS; the evaluation that decided it is in docs/performance.md.

OpenVINO reads the very ONNX file the ONNX Runtime step exports and caches (``cpu_runtime.exported``), compiles it
for this processor (≈ 1.3 s; its compiled blob is cached under ``openvino/<precision>/`` beside the exports,
≈ 0.5 s to load in a later process — or compiled on a thread during the imports, ``graph_prefetch``), and checks
its output against eager PyTorch fp32 once per file and precision (a marker beside the export records it): within
``CHECK_RMS`` relative RMS in bf16, ONNX Runtime's tolerance in fp32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from rdtf_engine.diffusion.cpu_choice import import_openvino
from rdtf_engine.diffusion.cpu_runtime import (
    CHECK_ATOL,
    CHECK_RTOL,
    INPUT_NAMES,
    OnnxUnavailable,
    _mark_verified,
    _network_inputs,
    _NetworkCall,
    _verified,
    exported,
)
from rdtf_engine.diffusion.denoiser import combine_guidance
from rdtf_engine.diffusion.graph_prefetch import blob_dir, take

# bf16: |out − eager| RMS / |eager| RMS; measured 0.005–0.006 on the shipped model, 0.017 on the tests' random tiny
# one; a wrong kernel or layout is off by tens of per cent
CHECK_RMS = 0.05
KEEP_BLOBS = 8  # OpenVINO's compiled blobs (≈ 50 MB each for the shipped model), newest kept, as the exports


class OpenVinoUnavailable(OnnxUnavailable):
    """Compiling or checking the OpenVINO denoiser failed; the caller tries ONNX Runtime, then PyTorch."""


class OpenVinoStep:
    """The guided step (same arguments as :func:`denoiser.guided_eps` without ``unet``) on OpenVINO at ``precision``
    ("bf16" or "fp32"), for inputs shaped like ``example`` = (x, t, txt, tmask, conds, g)."""

    def __init__(self, unet: nn.Module, example, cache_dir: Path, digest: str, precision: str = "bf16"):
        suffix = f".openvino-{precision}.verified"
        try:
            ov = import_openvino()  # (without its telemetry: no network)

            inputs = _network_inputs(*example)
            self.path = path = exported(unet, inputs, cache_dir, digest)
            self.compile_config = {"INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
                                   "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32"}
            blobs = blob_dir(cache_dir, self.compile_config)
            compiled = take(path, self.compile_config)  # compiled on a thread since the launch (graph_prefetch)
            if compiled is None:
                core = ov.Core()
                core.set_property({"CACHE_DIR": str(blobs)})
                compiled = core.compile_model(str(path), "CPU", self.compile_config)
            _prune_blobs(blobs)
            self.request = compiled.create_infer_request()
            self.order = [INPUT_NAMES.index(port.get_any_name()) for port in compiled.inputs]
            if _verified(path, suffix):
                return
            out = self._run(inputs)
            with torch.no_grad():
                ref = _NetworkCall(unet)(*inputs).numpy()
        except Exception as exc:
            raise OpenVinoUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if precision == "bf16":
            rms = float(np.sqrt(np.mean((out - ref) ** 2)) / max(float(np.sqrt(np.mean(ref**2))), 1e-12))
            if not rms <= CHECK_RMS:  # (also catches NaN)
                raise OpenVinoUnavailable(f"OpenVINO bf16 denoiser differs from PyTorch by {rms:.3%} RMS")
        elif not np.allclose(out, ref, rtol=CHECK_RTOL, atol=CHECK_ATOL):
            raise OpenVinoUnavailable(f"OpenVINO denoiser differs from PyTorch by up to {np.abs(out - ref).max():.3g}")
        _mark_verified(path, suffix)

    def _run(self, inputs) -> np.ndarray:
        self.request.infer([inputs[i].numpy() for i in self.order])
        return self.request.get_output_tensor(0).data.copy()  # the request reuses its buffer on the next call

    def __call__(self, x, t, txt, tmask, conds, g) -> torch.Tensor:
        eps = torch.from_numpy(self._run(_network_inputs(x, t, txt, tmask, conds, g)))  # (n, 4, W, h, w)
        return combine_guidance(eps, g)


def _prune_blobs(folder: Path) -> None:
    """Keep the newest ``KEEP_BLOBS`` compiled blobs of ``folder`` (one precision's: each export leaves one there),
    and none of the one-folder layout above it (before ``blob_dir``: never read again)."""
    files = sorted(folder.glob("*.blob"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP_BLOBS:] + list(folder.parent.glob("*.blob")):
        old.unlink(missing_ok=True)
