"""Condition-latent encoder (docs/method.md §2.3: condition mask → 8 in-channels).

The clean latents of the frames given as conditions (first frame for I2V, both ends for interpolation, a run for
prediction, the locked frames of the timeline...) arrive already multiplied by condition mask × validity mask, so
non-given frames are zeros. As in I2VGen-XL's ``image_latents_proj_in`` + ``image_latents_temporal_encoder``:
a per-frame conv stack, then a small transformer over the frames at every spatial position, which lets each
frame slot see what was given elsewhere in the clip. The output (B, 4, F, h, w) is concatenated channel-wise with
the noisy latent.
"""

from __future__ import annotations

import torch
from torch import nn

from rdtf_engine.model.blocks import MultiHeadAttention


class ConditionEncoder(nn.Module):
    """(B, C, F, h, w) masked clean latents -> (B, C, F, h, w) condition features (C = cond_channels = 4)."""

    def __init__(self, channels: int = 4, hidden: int = 16, heads: int = 2):
        super().__init__()
        if hidden % heads:
            raise ValueError(f"cond_hidden ({hidden}) must be divisible by cond_heads ({heads})")
        # per frame 4 -> hidden -> hidden -> 4, 3×3 convs with SiLU between (I2VGen-XL uses 4·in_channels = 16)
        self.convs = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(hidden, hidden, 3, padding=1),
            nn.SiLU(),
            nn.Conv2d(hidden, channels, 3, padding=1),
        )
        # temporal transformer encoder on the 4-d per-pixel tokens: heads × (hidden / heads) attention, FFN width hidden
        self.norm1 = nn.LayerNorm(channels)
        self.attn = MultiHeadAttention(channels, heads, hidden // heads)
        self.norm2 = nn.LayerNorm(channels)
        self.ff = nn.Sequential(nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels))

    def forward(self, cond: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        b, c, f, h, w = cond.shape
        x = self.convs(cond.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w))  # (B·F, C, h, w), frames independent
        tokens = x.reshape(b, f, c, h, w).permute(0, 3, 4, 1, 2).reshape(b * h * w, f, c)  # (B·h·w, F, C)
        key_mask = None
        if frame_mask is not None:  # (B, F) -> (B·h·w, F)
            key_mask = frame_mask[:, None, :].expand(b, h * w, f).reshape(b * h * w, f)
        tokens = tokens + self.attn(self.norm1(tokens), key_mask)
        tokens = tokens + self.ff(self.norm2(tokens))
        out = tokens.reshape(b, h, w, f, c).permute(0, 4, 3, 1, 2)  # (B, C, F, h, w)
        if frame_mask is not None:  # padded slots carry no condition at all (their conv bias output is dropped too)
            out = out * frame_mask[:, None, :, None, None].to(out.dtype)
        return out.contiguous()
