"""Which runtime evaluates the guided denoiser step: a CUDA graph on a GPU, ONNX Runtime or eager PyTorch on the CPU.

One :class:`StepFunctions` lives on a pipeline, so what is built for the first sticker (a captured graph, a loaded
ONNX session) serves every later one of the same input shapes: prompt, seed and guidance scales only change the
inputs' contents. Anything that fails to build is logged once and that signature samples eagerly from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from rdtf_engine.diffusion.cpu_runtime import OnnxStep, OnnxUnavailable, resolve_cpu_runtime, weights_digest
from rdtf_engine.diffusion.denoiser import CudaGraphed, GraphUnavailable, guided_eps
from rdtf_engine.model.size_deltas import few_step_on, style_on

log = logging.getLogger("rdtf_engine.diffusion")


class StepFunctions:
    """``get(example)`` → the step function for inputs shaped like ``example`` = (x, t, txt, tmask, conds, g).

    ``enabled`` (CUDA graphs on a GPU) can be switched off to sample eagerly (the GPU benchmark compares both);
    ``cpu_runtime``: "auto" / "onnx" / "torch" or None for ``$RDTF_CPU_RUNTIME`` (see ``cpu_runtime``)."""

    def __init__(self, unet, device: torch.device, enabled: bool = True, cpu_runtime: str | None = None):
        self.unet, self.device, self.enabled = unet, device, enabled
        self.cpu_runtime = resolve_cpu_runtime(cpu_runtime) if device.type == "cpu" else "torch"
        self._built: dict[tuple, Callable[..., torch.Tensor] | None] = {}  # None: building failed, stay eager
        self._digest: str | None = None

    def eager(self, *args: torch.Tensor) -> torch.Tensor:
        return guided_eps(self.unet, *args)

    def get(self, example: Sequence[torch.Tensor]) -> Callable[..., torch.Tensor]:
        kind = self._kind()
        if kind == "eager":
            return self.eager
        # a captured graph or an exported network holds one branch of each switched gate (model/size_deltas.py)
        styled = style_on(self.unet, tuple(example[0].shape[-2:]))  # x (1, 4, W, h, w): off the draft grid, off
        gates = ("-styled" if styled else "") + ("-few-step" if few_step_on(self.unet) else "")  # … and the few-step
        key = (kind, gates) + tuple((tuple(a.shape), a.dtype, str(a.device)) for a in example)
        if key not in self._built:
            try:
                self._built[key] = self._build(kind, example, gates)
            except (GraphUnavailable, OnnxUnavailable) as exc:
                what = "CUDA graph" if kind == "graph" else "ONNX Runtime"
                log.warning("%s sampling unavailable, sampling eagerly: %s", what, exc)
                self._built[key] = None
        return self._built[key] or self.eager

    def _kind(self) -> str:
        if self.device.type == "cuda" and self.enabled:
            return "graph"
        if self.device.type == "cpu" and self.cpu_runtime == "onnx":
            return "onnx"
        return "eager"

    def _build(self, kind: str, example: Sequence[torch.Tensor], gates: str) -> Callable[..., torch.Tensor]:
        if kind == "graph":
            return CudaGraphed(self.eager, example)
        from rdtf_engine.core.paths import user_cache_dir

        if self._digest is None:
            self._digest = weights_digest(self.unet)  # the weights are fixed for a pipeline's lifetime
        return OnnxStep(self.unet, example, user_cache_dir() / "onnx", self._digest + gates)

    def clear(self) -> None:
        """Drop what was built (captured graphs and their memory pools, ONNX sessions)."""
        self._built.clear()
