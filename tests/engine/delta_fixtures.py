"""Tiny DFGNs with deltas for the style- and few-step-delta tests (model/size_deltas.py)."""

from __future__ import annotations

import torch

from rdtf_engine.core.config import ModelConfig
from rdtf_engine.model.dfgn import DFGN, build_dfgn


def delta_pair(**extra: int) -> tuple[DFGN, DFGN]:
    """(a tiny 64 px DFGN drafting at 32 px with rank-4 size deltas and the ``extra`` deltas (e.g.
    ``style_delta_rank=4``), the same network with the size deltas alone), sharing every weight; every delta
    non-zero and alike in both (the size deltas come first), so whichever acts shows."""
    torch.manual_seed(0)
    both = build_dfgn(ModelConfig(preset="tiny", size=64, draft_size=32, size_delta_rank=4, **extra)).eval()
    sized = build_dfgn(ModelConfig(preset="tiny", size=64, draft_size=32, size_delta_rank=4)).eval()
    sized.load_state_dict({k: v for k, v in both.state_dict().items() if k in sized.state_dict()})
    with torch.no_grad():
        for m in (both, sized):
            gen = torch.Generator().manual_seed(1)
            for name, p in m.named_parameters():
                if "_deltas." in name:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return both, sized


def delta_eps(model: DFGN, side: int, grad: bool = False) -> torch.Tensor:
    """ε̂ (2, 4, 8, side, side) of fixed random inputs on a side × side latent grid, with or without autograd
    (the hooked training path or the merged sampling path)."""
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 8, side, side, generator=gen)
    text = torch.randn(2, 32, 384, generator=gen)
    with torch.set_grad_enabled(grad):
        return model(x, torch.tensor([100, 700]), text, torch.zeros_like(x)).detach()
