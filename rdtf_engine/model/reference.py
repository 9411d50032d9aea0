"""Reference attention: every frame of a clip also looks at its clip's reference frame (the first given frame,
frame 0 in text→video), so a given picture keeps its identity wherever it moves to.

Why: the temporal layers match pixels at the same position (temporal attention, STI's detail convs) or at half
resolution (STI's joint attention), so once a sticker moves, a generated frame sees the given frame's detail only
through a few coarse tokens, and an emoji the model never trained on drifts toward a familiar one. With the
reference frame's tokens among every frame's spatial keys / values (ConsistI2V's first-frame spatial attention,
Text2Video-Zero's cross-frame attention) each frame can look the given picture up at any position.

Two forms, chosen by the DFGN config (``config.reference_mode``):
- "on": the existing spatial self-attention of the attention levels gets the extra keys (no new weights);
- "all": also a :class:`ReferenceAttention` block of its own on the levels without spatial attention (the
  ``small`` preset's finest, 16 × 16 level at 128 px, where the detail lives), zero-initialised so that a model
  trained without it loads and behaves exactly as before and a fine-tune grows into it.
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn


class ReferenceAttnProcessor(AttnProcessor2_0):
    """Spatial self-attention whose keys / values also hold the tokens of the clip's reference frame.

    No new weights: the layer's own to_k / to_v project the extra tokens, so a model trained without it loads as is.
    hidden_states (B·F, N, C); ``reference_rows`` (B·F,) long = the batch row of each row's reference frame.
    The reference frame attends to its own tokens twice, which leaves its output exactly as without the extension.
    Cross-attention (text) ignores ``reference_rows``.
    """

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None,
                 reference_rows: torch.Tensor | None = None):
        if reference_rows is not None and not attn.is_cross_attention:
            encoder_hidden_states = torch.cat([hidden_states, hidden_states[reference_rows]], dim=1)  # (B·F, 2N, C)
        return super().__call__(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


def reference_rows(cond_latents: torch.Tensor) -> torch.Tensor:
    """(B, C, F, h, w) masked condition latents -> (B·F,) long: for every frame, the batch row (b·F + r) of its
    clip's reference frame r = the first given frame (non-zero condition), or frame 0 when none is given (t2v)."""
    b, _, f = cond_latents.shape[:3]
    given = cond_latents.detach().abs().flatten(3).amax(dim=3).amax(dim=1) > 0  # (B, F)
    first = torch.argmax(given.to(torch.uint8), dim=1)  # (B,) first True; 0 when a row has none
    return (torch.arange(b, device=first.device) * f + first).repeat_interleave(f)


class ReferenceAttention(nn.Module):
    """A spatial attention block for a level that has none: each frame's tokens attend to [own + reference tokens].

    GroupNorm (per frame) -> diffusers ``Attention`` with :class:`ReferenceAttnProcessor` -> residual. The output
    projection starts at zero, so the block starts as identity (like the temporal layers).
    (B·F, C, H, W) + ``reference_rows`` (B·F,) -> (B·F, C, H, W).
    """

    def __init__(self, channels: int, head_dim: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.attn = Attention(query_dim=channels, heads=max(1, channels // head_dim), dim_head=head_dim,
                              out_bias=True, processor=ReferenceAttnProcessor())
        nn.init.zeros_(self.attn.to_out[0].weight)
        nn.init.zeros_(self.attn.to_out[0].bias)

    def forward(self, x: torch.Tensor, refs: torch.Tensor) -> torch.Tensor:
        bf, c, h, w = x.shape
        tokens = self.norm(x).flatten(2).transpose(1, 2)  # (B·F, H·W, C)
        out = self.attn(tokens, reference_rows=refs)  # (B·F, H·W, C): keys / values over 2·H·W tokens
        return x + out.transpose(1, 2).reshape(bf, c, h, w)
