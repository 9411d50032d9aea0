"""Shared building blocks of the DFGN denoiser (docs/method.md §2.1).

Every tensor that flows between blocks is laid out ``(B·F, C, H, W)``: frames ride in the batch so that the 2-D
diffusers ops (ResnetBlock2D, Transformer2DModel, GroupNorm) treat each frame on its own. Only the temporal
layers (temporal attention here, STI / 3-D conv in ``sti.py``) look across frames, and they all take a
``FrameInfo`` so that zero-padded frames (loss-mask slots, docs/method.md §4.2) never reach a real frame:
attention keys of padded frames are masked out and temporal convolutions see zeros there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class FrameInfo:
    """How the batch axis of a ``(B·F, C, H, W)`` tensor splits into clips and frames.

    ``mask`` is ``(B, F)`` bool, True = a real frame; None means every frame is real (the fast path: no
    attention mask, no multiplications). ``reference_rows`` ``(B·F,)`` long: the batch row of each frame's
    reference frame, for the DFGN's reference attention (None = off).
    """

    num_frames: int
    mask: torch.Tensor | None = None
    reference_rows: torch.Tensor | None = None

    def frame_gate(self, x: torch.Tensor) -> torch.Tensor:
        """Zero the padded frames of ``x`` (B·F, ...) so that a temporal conv reads zeros there."""
        if self.mask is None:
            return x
        gate = self.mask.reshape(-1).to(x.dtype)  # (B·F,)
        return x * gate.view(-1, *([1] * (x.ndim - 1)))

    def token_mask(self, tokens_per_frame: int) -> torch.Tensor | None:
        """Key mask ``(B, F·tokens_per_frame)`` for attention over a clip's frames (frame-major token order)."""
        if self.mask is None:
            return None
        return self.mask.repeat_interleave(tokens_per_frame, dim=1)


def to_clips(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B·F, C, H, W) -> (B, C, F, H, W), the layout Conv3d expects."""
    bf, c, h, w = x.shape
    return x.reshape(bf // num_frames, num_frames, c, h, w).permute(0, 2, 1, 3, 4)


def from_clips(x: torch.Tensor) -> torch.Tensor:
    """(B, C, F, H, W) -> (B·F, C, H, W)."""
    b, c, f, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)


# Sequences per scaled-dot-product-attention call. The temporal attention at 256 px and batch 128 holds
# 128 · 32 · 32 = 131,072 sequences of 8 frames; the flash kernel puts the sequences on a CUDA grid axis limited to
# 65,535 blocks and fails with "invalid argument" past it (seen on an H200, torch 2.11), so longer batches go in
# slices (exactly the same attention: every sequence is independent).
MAX_SDPA_SEQUENCES = 32768


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor | None,
                     max_sequences: int = MAX_SDPA_SEQUENCES) -> torch.Tensor:
    """Scaled dot-product attention with a boolean key mask.

    q, k, v: (N, heads, T, d); key_mask: (N, T) bool, True = may be attended to, or None.
    A row whose keys are all masked would give softmax over -inf only = NaN; such a row (a clip of nothing but
    padding, which the data never produces since frame 0 is always real) is allowed to see every key instead,
    so its output is finite garbage that the loss mask discards.
    """
    if key_mask is not None:
        key_mask = (key_mask | ~key_mask.any(dim=-1, keepdim=True))[:, None, None, :]  # (N, 1, 1, T)
    if q.shape[0] <= max_sequences:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
    parts = []
    for i in range(0, q.shape[0], max_sequences):
        part = slice(i, i + max_sequences)
        parts.append(F.scaled_dot_product_attention(q[part], k[part], v[part],
                                                    attn_mask=None if key_mask is None else key_mask[part]))
    return torch.cat(parts)


def sinusoidal_table(length: int, dim: int) -> torch.Tensor:
    """Classic transformer position table (length, dim); the initial value of the learned frame embeddings."""
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / max(dim, 1)))
    table = torch.zeros(length, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


class MultiHeadAttention(nn.Module):
    """Self-attention over ``(N, T, C)`` tokens with in/out projections C -> heads·head_dim -> C and a key mask.

    Written out (instead of diffusers ``Attention``) so the mask is a plain boolean SDPA mask and the empty-row
    case is handled in one place (``masked_attention``).
    """

    def __init__(self, dim: int, heads: int, head_dim: int, zero_out: bool = False):
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)
        if zero_out:  # the block starts as identity (residual only), like ModelScope's temporal layers
            nn.init.zeros_(self.to_out.weight)
            nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        n, t, _ = x.shape
        q, k, v = self.to_qkv(x).reshape(n, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # 3×(N,h,T,d)
        out = masked_attention(q, k, v, key_mask)  # (N, heads, T, d)
        return self.to_out(out.transpose(1, 2).reshape(n, t, self.heads * self.head_dim))


class TemporalAttention(nn.Module):
    """Attention over the F frames at every spatial position (ModelScope "TransformerTemporal" / transformer_in).

    (B·F, C, H, W) -> tokens (B·H·W, F, C); pre-LayerNorm (per token, so no statistics are shared across
    frames, unlike the GroupNorm of diffusers' TransformerTemporalModel which would let padding leak in) + a
    learned frame-position embedding (initialised sinusoidal, F ≤ num_frames rows used); masked self-attention;
    a GELU feed-forward. Both residual branches end in zero-initialised projections: the block starts as identity.
    """

    def __init__(self, channels: int, heads: int, head_dim: int, num_frames: int, ff_mult: int = 2):
        super().__init__()
        self.frame_pos = nn.Parameter(sinusoidal_table(num_frames, channels))  # (num_frames, C)
        self.norm1 = nn.LayerNorm(channels)
        self.attn = MultiHeadAttention(channels, heads, head_dim, zero_out=True)
        self.norm2 = nn.LayerNorm(channels)
        self.ff = nn.Sequential(
            nn.Linear(channels, ff_mult * channels), nn.GELU(), nn.Linear(ff_mult * channels, channels)
        )
        nn.init.zeros_(self.ff[-1].weight)
        nn.init.zeros_(self.ff[-1].bias)

    def forward(self, x: torch.Tensor, frames: FrameInfo) -> torch.Tensor:
        f = frames.num_frames
        bf, c, h, w = x.shape
        b = bf // f
        tokens = x.reshape(b, f, c, h, w).permute(0, 3, 4, 1, 2).reshape(b * h * w, f, c)  # (B·H·W, F, C)
        key_mask = None
        if frames.mask is not None:  # (B, F) -> (B·H·W, F): the same frame mask at every pixel of a clip
            key_mask = frames.mask[:, None, :].expand(b, h * w, f).reshape(b * h * w, f)
        tokens = tokens + self.attn(self.norm1(tokens) + self.frame_pos[:f].to(tokens.dtype), key_mask)
        tokens = tokens + self.ff(self.norm2(tokens))
        return tokens.reshape(b, h, w, f, c).permute(0, 3, 4, 1, 2).reshape(bf, c, h, w)
