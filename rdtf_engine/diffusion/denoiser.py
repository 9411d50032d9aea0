"""One guided denoiser evaluation per sampling step, and the CUDA-graph wrapper that replays it on a GPU.

The shipped model is small: on a GPU a denoiser step is a few hundred tiny kernels, so eager sampling is bound by
kernel launches, not arithmetic. :func:`guided_eps` is written so that it can be captured once as a CUDA graph
and replayed every step: every input is a tensor of a fixed shape (the timestep too, never a Python number), the
guidance branches run as one batched call, and nothing branches on a tensor's value. On the CPU the same function
runs eagerly, so both devices do the same maths.

:class:`CudaGraphed` holds static input buffers; a call copies the step's inputs into them, replays the graph and
returns a copy of the static output. Capture warms up on a side stream (cuDNN / cuBLAS pick their kernels there),
then checks one replay against the eager result; any error or mismatch raises :class:`GraphUnavailable` and the
pipeline falls back to eager, logging why.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

WARMUP_CALLS = 2  # eager calls on the side stream before capture: lazy inits and autotuning happen there
CHECK_RTOL, CHECK_ATOL = 1e-3, 1e-4  # graph replay vs eager: the same kernels, so only algorithm choice differs


class GraphUnavailable(RuntimeError):
    """Capturing or checking the CUDA graph failed; the caller samples eagerly instead."""


def guided_eps(unet, x: torch.Tensor, t: torch.Tensor, txt: torch.Tensor, tmask: torch.Tensor,
               conds: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Classifier-free-guided ε̂ for one step, all guidance branches in one batched denoiser call.

    x (1, 4, W, h, w) the scaled model input; t () long timestep; txt (n, L, D) text states and tmask (n, L)
    their key mask, one row per branch; conds (n, 4, W, h, w) the branch's condition latents; g (2,) float
    [text scale, image scale]. n = 2: rows (∅, txt); n = 3: rows (∅∅, img∅, img·txt); n = 1: the prompt's row alone
    (every scale 1). → ε̂ (1, 4, W, h, w) fp32.
    """
    n = conds.shape[0]
    return combine_guidance(unet(x.expand(n, *x.shape[1:]), t.expand(n), txt, conds, text_mask=tmask).float(), g)


def combine_guidance(eps: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """ε of the n guidance branches (n, 4, W, h, w) → guided ε̂ (1, 4, W, h, w) (rows as in :func:`guided_eps`;
    n = 1: the conditional row alone, what every scale at 1 reduces the formulas to)."""
    if eps.shape[0] == 1:
        return eps
    if eps.shape[0] == 3:
        e00, e0i, eti = eps.chunk(3)
        return e00 + g[1] * (e0i - e00) + g[0] * (eti - e0i)
    eu, et = eps.chunk(2)
    return eu + g[0] * (et - eu)


class CudaGraphed:
    """``fn(*tensors) -> tensor`` captured as a CUDA graph for inputs of the example's shapes, dtypes and device."""

    def __init__(self, fn: Callable[..., torch.Tensor], example: Sequence[torch.Tensor]):
        try:
            self.static = [a.detach().clone() for a in example]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(WARMUP_CALLS):
                    ref = fn(*self.static)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.out = fn(*self.static)
            self.graph.replay()
            same = torch.allclose(self.out, ref, rtol=CHECK_RTOL, atol=CHECK_ATOL)
        except Exception as exc:  # any capture failure means: sample eagerly
            raise GraphUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if not same:
            diff = float((self.out - ref).abs().max())
            raise GraphUnavailable(f"graph replay differs from eager by up to {diff:.3g}")

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        for buf, a in zip(self.static, args):
            buf.copy_(a)  # device → device, queued on the stream: no host sync
        self.graph.replay()
        return self.out.clone()  # the next replay overwrites self.out; callers keep their ε̂
