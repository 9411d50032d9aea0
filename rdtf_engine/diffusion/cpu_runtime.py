"""The denoiser on ONNX Runtime or OpenVINO: the CPU's sampling runtimes when installed (extra ``cpu-fast``).

Why: per denoiser call ONNX Runtime spends less CPU time than eager PyTorch on the shipped model (fused attention
and norm kernels, no Python dispatch), and its thread pool degrades gracefully on a busy machine, where PyTorch's
OpenMP threads spin on each other (docs/performance.md has the measurements). The maths is the same network: the
ONNX graph is traced from the model in memory, and its output is checked against eager the first time the file is
used (a marker with the file's sha256 records the check for later processes). On a processor with bf16
instructions (AVX512-BF16, AMX) OpenVINO runs the same file in bf16 (``openvino_runtime.py``): ≈ 1.8× ONNX
Runtime's fp32 speed, the network's output within ≈ 0.6 % RMS (``CPU precision`` below).

The guided step keeps its shape (:func:`denoiser.combine_guidance` is shared); only the batched network call
``unet(x (n, 4, W, h, w), t (n,), txt (n, L, D), cond (n, 4, W, h, w), tmask (n, L)) → ε (n, 4, W, h, w)``
runs in ONNX Runtime. An export is a pure function of the weights and the input shapes, so it is written once
to the user cache (``onnx/``, the newest ``KEEP_EXPORTS`` kept) and reused by every later process.

``RDTF_CPU_RUNTIME`` = auto (default) | onnx | openvino | torch picks the runtime for a whole process, and
``RDTF_CPU_PRECISION`` = auto (default) | fp32 | bf16 its precision: bf16 (where the processor has it) runs the
autoencoder under bf16 autocast and the denoiser on OpenVINO in bf16; auto picks OpenVINO when it is installed and
the precision is bf16, else ONNX Runtime when installed, else PyTorch (``cpu_choice``, torch-free). ONNX Runtime
runs fp32 whatever the precision; eager PyTorch samples under bf16 autocast at bf16 (``StepFunctions.eager``). The
reference every runtime is checked against is always the network in eager fp32 (``_NetworkCall``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rdtf_engine.diffusion.cpu_choice import requested_precision
from rdtf_engine.diffusion.denoiser import combine_guidance

log = logging.getLogger("rdtf_engine.diffusion")

OPSET = 17
KEEP_EXPORTS = 8  # ~50 MB each for the shipped model: one per (model, guidance branches, window length)
CHECK_RTOL, CHECK_ATOL = 1e-3, 1e-4  # observed: ≤ 1e-5 absolute on ε of magnitude ~4 (kernel rounding only)
INPUT_NAMES = ("x", "t", "txt", "cond", "tmask")  # the exported network call's inputs, in _NetworkCall's order
EXPORT_FORMAT = 2  # bump when the exported file changes (2: saved graph-optimised): old files are never picked up


class OnnxUnavailable(RuntimeError):
    """Exporting, loading or checking the ONNX denoiser failed; the caller samples with PyTorch instead."""


def cpu_has_bf16() -> bool:
    """Whether this processor computes bf16 natively (AVX512-BF16 or AMX): elsewhere bf16 is emulated, slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # another PyTorch build without these probes: stay exact
        return False


def resolve_cpu_precision(choice: str | None = None) -> str:
    """``choice`` (or ``$RDTF_CPU_PRECISION``, or "auto") → "fp32" or "bf16". auto and bf16 → bf16 only where the
    processor has bf16 instructions; an unknown name is logged and becomes fp32 (exact)."""
    name = requested_precision(choice)
    if name == "fp32":
        return "fp32"
    if cpu_has_bf16():
        return "bf16"
    if name == "bf16":
        log.warning("this processor has no bf16 instructions (AVX512-BF16 or AMX): using fp32")
    return "fp32"


class _NetworkCall(nn.Module):
    """The traced function: the denoiser with the text mask as a positional input and an fp32 output."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, x, t, txt, cond, tmask):
        return self.unet(x, t, txt, cond, text_mask=tmask).float()


def weights_digest(unet: nn.Module) -> str:
    """sha256 over the parameter and buffer names and bytes (≈ 0.1 s for the shipped model's 48 MB)."""
    h = hashlib.sha256()
    for name, tensor in sorted(unet.state_dict().items()):
        h.update(name.encode() + b"\0" + str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class OnnxStep:
    """The guided step (same arguments as :func:`denoiser.guided_eps` without ``unet``) on ONNX Runtime, for
    inputs shaped like ``example`` = (x, t, txt, tmask, conds, g)."""

    def __init__(self, unet: nn.Module, example, cache_dir: Path, digest: str):
        try:
            import onnxruntime as ort

            inputs = _network_inputs(*example)
            self.path = path = exported(unet, inputs, cache_dir, digest)  # (benchmarks/cpu_kernels.py reads it too)
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = torch.get_num_threads()  # the process's CPU budget, as PyTorch sees it
            opts.inter_op_num_threads = 1
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            if _verified(path):  # this very file passed the check below in an earlier process
                return
            out = self._run(inputs)
            with torch.no_grad():
                ref = _NetworkCall(unet)(*inputs).numpy()
        except Exception as exc:  # any export / load failure means: sample with PyTorch
            raise OnnxUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not np.allclose(out, ref, rtol=CHECK_RTOL, atol=CHECK_ATOL):
            raise OnnxUnavailable(f"ONNX denoiser differs from PyTorch by up to {np.abs(out - ref).max():.3g}")
        _mark_verified(path)

    def _run(self, inputs) -> np.ndarray:
        return self.session.run(["eps"], {k: v.numpy() for k, v in zip(INPUT_NAMES, inputs)})[0]

    def __call__(self, x, t, txt, tmask, conds, g) -> torch.Tensor:
        eps = torch.from_numpy(self._run(_network_inputs(x, t, txt, tmask, conds, g)))  # (n, 4, W, h, w)
        return combine_guidance(eps, g)


def exported(unet: nn.Module, inputs, cache_dir: Path, digest: str) -> Path:
    """The cached ONNX export of the network call for these inputs (written first if missing) → its path."""
    import onnxruntime as ort

    path = cache_dir / f"dfgn-{_export_key(digest, inputs, ort.__version__)}.onnx"
    if not path.is_file():
        _export(unet, inputs, path)
        _prune(cache_dir, keep=path)
    return path


def _network_inputs(x, t, txt, tmask, conds, g):
    """The guided step's inputs → the network call's (x, t expanded to the n branches, contiguous for numpy)."""
    n = conds.shape[0]
    return (x.expand(n, *x.shape[1:]).contiguous(), t.expand(n).contiguous(), txt.contiguous(),
            conds.contiguous(), tmask.contiguous())


def _export_key(digest: str, inputs, ort_version: str) -> str:
    sig = [digest, torch.__version__, ort_version, str(OPSET), str(EXPORT_FORMAT)]
    sig += [f"{tuple(a.shape)}:{a.dtype}" for a in inputs]
    return hashlib.sha256("|".join(sig).encode()).hexdigest()[:24]


def _export(unet: nn.Module, inputs, path: Path) -> None:
    """Trace the network call for these input shapes, let ONNX Runtime optimise the graph, write it atomically.

    The file is the graph after ONNX Runtime's basic and extended optimisations (constant folding, fused
    attention, GELU, LayerNorm …; those do not depend on the processor, unlike the layout changes of the ``all``
    level, which each session still makes when it loads): a later process loads it in ≈ 0.3 s instead of
    ≈ 0.9 s, with bit-identical outputs (measured on the shipped model, docs/performance.md)."""
    import tempfile

    import onnxruntime as ort

    from rdtf_engine.core.atomic import write_bytes_atomic

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches: shapes are fixed
        torch.onnx.export(_NetworkCall(unet).eval(), inputs, buf, input_names=list(INPUT_NAMES),
                          output_names=["eps"], opset_version=OPSET, dynamo=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    # named like core.atomic's temp files (.NAME.PID-….tmp), so a killed export's folder is cleared by the next
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.{os.getpid()}-", suffix=".tmp") as tmp:
        raw, opt = Path(tmp) / "raw.onnx", Path(tmp) / "opt.onnx"
        raw.write_bytes(buf.getvalue())
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = str(opt)
        ort.InferenceSession(str(raw), opts, providers=["CPUExecutionProvider"])  # writes opt.onnx
        write_bytes_atomic(path, opt.read_bytes())
    log.info("exported the denoiser to ONNX for %s (%.1f MB)", tuple(inputs[0].shape), buf.tell() / 2**20)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verified(path: Path, suffix: str = ".verified") -> bool:
    """Whether ``path`` is byte for byte the export that passed the check against eager PyTorch before: its
    marker (``suffix``: one per runtime and precision) holds that file's sha256 (≈ 0.1 s to hash, against ≈ 0.3 s
    for the eager reference call a cold process would otherwise run on every start). A changed or damaged file
    is checked again."""
    marker = path.with_suffix(suffix)
    try:
        return marker.read_text().strip() == _file_sha256(path)
    except OSError:
        return False


def _mark_verified(path: Path, suffix: str = ".verified") -> None:
    from rdtf_engine.core.atomic import write_text_atomic

    try:
        write_text_atomic(path.with_suffix(suffix), _file_sha256(path) + "\n")
    except OSError as exc:  # a read-only or full cache: the next process simply checks again
        log.info("could not mark %s as checked: %s", path.name, exc)


def _prune(folder: Path, keep: Path) -> None:
    """Keep the newest ``KEEP_EXPORTS`` exports (a model retrained or replaced leaves its old ones behind)."""
    files = sorted(folder.glob("dfgn-*.onnx"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in [p for p in files if p != keep][KEEP_EXPORTS - 1:]:
        for f in folder.glob(f"{old.stem}.*"):  # the export and each runtime's check marker
            f.unlink(missing_ok=True)
