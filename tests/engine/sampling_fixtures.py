"""Tiny denoisers, text states and windows for the sampling-loop and CPU-runtime tests (random weights, CPU)."""

from __future__ import annotations

import torch

from rdtf_engine.core.config import ModelCard
from rdtf_engine.diffusion.pipeline import StickerPipeline, _Window
from rdtf_engine.model.dfgn import build_dfgn

W, H, L = 4, 4, 6  # frames per window, latent side, text tokens


def _pipe(device="cpu", reference="on", cuda_graphs=True) -> StickerPipeline:
    torch.manual_seed(0)
    unet = build_dfgn("tiny", num_frames=W, reference_attention=reference).to(device)
    card = ModelCard(name="t", preset="tiny", size=8 * H, num_frames=W)
    return StickerPipeline(unet, torch.nn.Identity(), card, None, torch.device(device), cuda_graphs=cuda_graphs,
                           cpu_runtime="torch")


def _text(device="cpu"):
    g = torch.Generator().manual_seed(1)
    states = torch.randn(2, L, 384, generator=g).to(device)
    mask = torch.tensor([[1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0]], dtype=torch.bool, device=device)
    return states, mask


def _window(given: bool, run: int, device="cpu") -> _Window:
    mask = [True, False, False, False] if given else [False] * W
    cond = torch.randn(W, 4, H, H, generator=torch.Generator().manual_seed(2)).to(device)
    cond = cond * torch.tensor(mask, dtype=cond.dtype, device=device)[:, None, None, None]
    return _Window(cond, mask, run, lambda i: None)
