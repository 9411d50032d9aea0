"""Temporal layers of the DFGN: the STI layer (docs/method.md §2.2) and the plain 3-D-conv ablation (Table 3).

Both map (B·F, C, H, W) -> (B·F, C, H, W) and are called as ``layer(x, frames)`` with a ``FrameInfo``.

Padding safety (docs/method.md §4.2, masking padded frames is our choice): the released code lets zero-padded
frames take part in attention and temporal convs. Here they cannot influence a real frame:
  * attention keys of padded frames are masked out;
  * every temporal conv reads zeros at padded frames (``FrameInfo.frame_gate`` right before the conv);
  * GroupNorm is applied per frame (on the (B·F, C, H, W) layout), never over (C, F, H, W): the GroupNorm inside
    diffusers' ``TemporalConvLayer`` pools statistics over all frames, so padded content would shift the
    normalisation of real frames. That is why ``Conv3DTemporalLayer`` re-implements it rather than reusing it.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rdtf_engine.model.blocks import FrameInfo, MultiHeadAttention, from_clips, to_clips


class MaskedTemporalConvStack(nn.Module):
    """n × [GroupNorm (per frame), SiLU, zero padded frames, Conv3d(C, C, (3,1,1), pad (1,0,0))] + residual.

    The last conv is zero-initialised, so the stack starts as identity (ModelScope TemporalConvLayer recipe).
    """

    def __init__(self, channels: int, num_layers: int, norm_num_groups: int, dropout: float = 0.0):
        super().__init__()
        self.norms = nn.ModuleList(nn.GroupNorm(norm_num_groups, channels, eps=1e-6) for _ in range(num_layers))
        self.convs = nn.ModuleList(
            nn.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0)) for _ in range(num_layers)
        )
        self.dropout = nn.Dropout(dropout)
        nn.init.zeros_(self.convs[-1].weight)
        nn.init.zeros_(self.convs[-1].bias)

    def forward(self, x: torch.Tensor, frames: FrameInfo) -> torch.Tensor:
        h = x  # (B·F, C, H, W)
        for i, (norm, conv) in enumerate(zip(self.norms, self.convs)):
            h = F.silu(norm(h))
            if i > 0:
                h = self.dropout(h)
            h = frames.frame_gate(h)  # padded frames -> 0 so the (3,1,1) kernel never carries them into neighbours
            h = from_clips(conv(to_clips(h, frames.num_frames)))  # Conv3d over (B, C, F, H, W)
        return x + h


class Conv3DTemporalLayer(nn.Module):
    """Ablation "DFGN(3D-Conv)": ModelScope's TemporalConvLayer, 4 × [GN, SiLU, Conv3d(3,1,1)], last zero-init,
    residual; padding-safe (see module doc)."""

    def __init__(self, channels: int, norm_num_groups: int, num_layers: int = 4):
        super().__init__()
        self.convs = MaskedTemporalConvStack(channels, num_layers, norm_num_groups)

    def forward(self, x: torch.Tensor, frames: FrameInfo) -> torch.Tensor:
        return self.convs(x, frames)


class STILayer(nn.Module):
    """Spatio-Temporal Interaction layer (authors' ``SpatioTemporalInteractionLayerDownSample``).

    semantic  S = Up(Attn(Down(x))) + x : AvgPool2d(2) (skipped below 2×2), ONE multi-head self-attention over all
                F·(H/2)·(W/2) tokens of a clip jointly — a moving object can be matched anywhere in any frame,
                which local temporal convs cannot do for discrete sticker frames — then nearest upsample to H×W.
    detail    D = x + conv(x) : 2 × [GN, SiLU, Conv3d(3,1,1)], last zero-init (Table 6: kernel (3,1,1), 2 layers).
    fusion    out = GroupNorm(w1·S + w2·D), w1 = 0, w2 = 1 at init: training starts from the conv path and learns
              how much joint attention to mix in. The GroupNorm is the authors' fix for NaN losses.
    """

    def __init__(
        self,
        channels: int,
        heads: int,
        head_dim: int,
        norm_num_groups: int,
        out_norm: bool = True,
        detail_layers: int = 2,
    ):
        super().__init__()
        # Pre-norm (not in the released code): bounds the attention logits, whose scale otherwise grows with the
        # un-normalised residual stream; LayerNorm is per token, so it shares nothing across frames.
        self.attn_norm = nn.LayerNorm(channels)
        self.attn = MultiHeadAttention(channels, heads, head_dim)
        self.detail = MaskedTemporalConvStack(channels, detail_layers, norm_num_groups)
        self.w1 = nn.Parameter(torch.zeros(1))
        self.w2 = nn.Parameter(torch.ones(1))
        self.out_norm = nn.GroupNorm(norm_num_groups, channels, eps=1e-6) if out_norm else nn.Identity()

    def semantic(self, x: torch.Tensor, frames: FrameInfo) -> torch.Tensor:
        f = frames.num_frames
        bf, c, h, w = x.shape
        b = bf // f
        small = F.avg_pool2d(x, 2) if min(h, w) >= 2 else x  # (B·F, C, h', w'), per frame
        hs, ws = small.shape[-2:]
        tokens = small.reshape(b, f, c, hs, ws).permute(0, 1, 3, 4, 2).reshape(b, f * hs * ws, c)  # frame-major
        tokens = self.attn(self.attn_norm(tokens), frames.token_mask(hs * ws))  # (B, F·h'·w', C)
        small = tokens.reshape(b, f, hs, ws, c).permute(0, 1, 4, 2, 3).reshape(bf, c, hs, ws)
        if (hs, ws) != (h, w):
            small = F.interpolate(small, size=(h, w), mode="nearest")
        return small + x

    def forward(self, x: torch.Tensor, frames: FrameInfo) -> torch.Tensor:
        s = self.semantic(x, frames)
        d = self.detail(x, frames)
        return self.out_norm(self.w1.to(x.dtype) * s + self.w2.to(x.dtype) * d)


def make_temporal_layer(channels: int, cfg: dict[str, Any]) -> nn.Module:
    """The per-layer temporal module chosen by the DFGN config (``temporal_layer`` = "sti" | "conv3d")."""
    if cfg["temporal_layer"] == "sti":
        return STILayer(channels, cfg["sti_heads"], cfg["sti_head_dim"], cfg["norm_num_groups"], cfg["sti_out_norm"])
    return Conv3DTemporalLayer(channels, cfg["norm_num_groups"])
