"""Which runtime evaluates the guided denoiser step: a CUDA graph on a GPU, ONNX Runtime or eager PyTorch on the CPU.

One :class:`StepFunctions` lives on a pipeline, so what is built for the first sticker (a captured graph, a loaded
ONNX session) serves every later one of the same input shapes: prompt, seed and guidance scales only change the
inputs' contents. Anything that fails to build is logged once and that signature samples eagerly from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from rdtf_engine.diffusion.cpu_choice import resolve_cpu_runtime
from rdtf_engine.diffusion.cpu_runtime import OnnxStep, OnnxUnavailable, resolve_cpu_precision, weights_digest
from rdtf_engine.diffusion.denoiser import CudaGraphed, GraphUnavailable, guided_eps
from rdtf_engine.diffusion.graph_prefetch import cache_dir
from rdtf_engine.model.size_deltas import few_step_on, style_on

log = logging.getLogger("rdtf_engine.diffusion")

# what each kind of step function is called in the log, and what is tried when it cannot be built (then eager)
NAMES = {"graph": "CUDA graph", "onnx": "ONNX Runtime", "openvino": "OpenVINO"}
FALLBACKS = {"graph": (), "onnx": (), "openvino": ("onnx",)}


class StepFunctions:
    """``get(example)`` → the step function for inputs shaped like ``example`` = (x, t, txt, tmask, conds, g).

    ``enabled`` (CUDA graphs on a GPU) can be switched off to sample eagerly (the GPU benchmark compares both);
    ``cpu_runtime``: "auto" / "onnx" / "openvino" / "torch" or None for ``$RDTF_CPU_RUNTIME``, ``cpu_precision``:
    "auto" / "fp32" / "bf16" or None for ``$RDTF_CPU_PRECISION`` (see ``cpu_runtime``)."""

    def __init__(self, unet, device: torch.device, enabled: bool = True, cpu_runtime: str | None = None,
                 cpu_precision: str | None = None):
        self.unet, self.device, self.enabled = unet, device, enabled
        cpu = device.type == "cpu"
        self.precision = resolve_cpu_precision(cpu_precision) if cpu else "fp32"
        self.cpu_runtime = resolve_cpu_runtime(cpu_runtime, self.precision) if cpu else "torch"
        self._built: dict[tuple, Callable[..., torch.Tensor] | None] = {}  # None: building failed, stay eager
        self.used: list[tuple] = []  # the keys asked for, in order, since a caller last cleared it
        self._digest: str | None = None

    def eager(self, *args: torch.Tensor) -> torch.Tensor:
        # at bf16 on the CPU without OpenVINO (the desktop bundle, or OpenVINO's fallback) under bf16 autocast: the
        # convolutions and matmuls in bf16 (0.76–0.79× eager fp32's time on 2 cores), ε̂ combined in fp32
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.cpu_bf16):
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
            self._built[key] = self._first_built(kind, example, gates)
        if key not in self.used:
            self.used.append(key)
        return self._built[key] or self.eager

    @property
    def cpu_bf16(self) -> bool:
        """Whether this pipeline samples at bf16 on the CPU: the autoencoder and an eager denoiser under bf16
        autocast, an OpenVINO one compiled for bf16 (≈ 2× faster there, outputs within ≈ 0.6 % RMS;
        docs/performance.md)."""
        return self.device.type == "cpu" and self.precision == "bf16"

    def _kind(self) -> str:
        if self.device.type == "cuda" and self.enabled:
            return "graph"
        if self.device.type == "cpu" and self.cpu_runtime in ("onnx", "openvino"):
            return self.cpu_runtime
        return "eager"

    def _first_built(self, kind: str, example: Sequence[torch.Tensor],
                     gates: str) -> Callable[..., torch.Tensor] | None:
        """``kind``'s step function, else that of the first of its ``FALLBACKS`` that builds; None: eager."""
        tried = (kind,) + FALLBACKS[kind]
        for i, k in enumerate(tried):
            try:
                return self._build(k, example, gates)
            except (GraphUnavailable, OnnxUnavailable) as exc:
                then = f"trying {NAMES[tried[i + 1]]}" if i + 1 < len(tried) else "sampling eagerly"
                log.warning("%s sampling unavailable, %s: %s", NAMES[k], then, exc)
        return None

    def _build(self, kind: str, example: Sequence[torch.Tensor], gates: str) -> Callable[..., torch.Tensor]:
        if kind == "graph":
            return CudaGraphed(self.eager, example)
        if self._digest is None:
            self._digest = weights_digest(self.unet)  # the weights are fixed for a pipeline's lifetime
        if kind == "openvino":
            from rdtf_engine.diffusion.openvino_runtime import OpenVinoStep

            return OpenVinoStep(self.unet, example, cache_dir(), self._digest + gates, self.precision)
        return OnnxStep(self.unet, example, cache_dir(), self._digest + gates)

    def compiled_graphs(self) -> list[tuple[str, dict]]:
        """(exported file, compile settings) of the OpenVINO graphs asked for since ``used`` was last cleared (a
        request clears it first), for ``graph_prefetch.remember``."""
        steps = [self._built.get(key) for key in self.used]
        return [(str(f.path), dict(f.compile_config)) for f in steps if hasattr(f, "compile_config")]

    def clear(self) -> None:
        """Drop what was built (captured graphs and their memory pools, ONNX Runtime / OpenVINO sessions)."""
        self._built.clear()
