"""DFGN — the Discrete Frame Generation Network, RDTF's denoiser (docs/method.md §2).

A 3-D UNet factorised in space and time (ModelScope / I2VGen-XL layout): every frame goes through the 2-D ops
with batch B·F; temporal layers (STI or the 3-D-conv ablation, and temporal attention) mix frames. Input: the noisy
latent (4 ch) concatenated with the encoded condition latents (4 ch) = 8 channels; output: ε̂ (4 ch).

Data flow (shapes for B clips of F frames at h×w latents, C_i = block_out_channels[i]):
  sample, cond (B, 4, F, h, w) -> cond = ConditionEncoder(cond) -> cat -> (B·F, 8, h, w)
  conv_in -> (B·F, C_0, h, w) -> transformer_in (temporal attention)
  down level i: layers_per_block × SpaceTimeLayer, Downsample2D (not on the last level); every output is a skip
  mid: SpaceTimeLayer(cross-attn) -> ResnetBlock2D
  up level i (reversed): (layers_per_block + 1) × SpaceTimeLayer on cat(x, skip), Upsample2D (not on the last)
  GroupNorm, SiLU, conv_out -> (B·F, 4, h, w) -> (B, 4, F, h, w)
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D
from diffusers.models.transformers.transformer_2d import Transformer2DModel
from torch import nn

from rdtf_engine.core.config import DFGN_PRESETS, VAE_FACTOR, ModelConfig, reference_flags, reference_mode
from rdtf_engine.core.errors import InputError
from rdtf_engine.model.blocks import FrameInfo, TemporalAttention
from rdtf_engine.model.condition import ConditionEncoder
from rdtf_engine.model.reference import ReferenceAttention, ReferenceAttnProcessor, reference_rows
from rdtf_engine.model.size_deltas import FewStepDeltas, SizeDeltas, StyleDeltas
from rdtf_engine.model.sti import make_temporal_layer

TEMPORAL_LAYERS = ("sti", "conv3d")


class SpaceTimeLayer(nn.Module):
    """ResnetBlock2D(temb) -> temporal layer -> [Transformer2D (self-attn + text cross-attn) -> TemporalAttention].

    The bracket exists only on cross-attention levels (ModelScope's DownBlock3D has no attention either); with
    reference attention "all", the other levels get a ReferenceAttention block after the temporal layer instead.
    (B·F, C_in, H, W) -> (B·F, C_out, H, W).
    """

    def __init__(self, in_channels: int, out_channels: int, temb_channels: int, cross_attn: bool, cfg: dict[str, Any]):
        super().__init__()
        groups, head_dim = cfg["norm_num_groups"], cfg["attention_head_dim"]
        self.resnet = ResnetBlock2D(
            in_channels=in_channels, out_channels=out_channels, temb_channels=temb_channels, groups=groups, eps=1e-6
        )
        self.temporal = make_temporal_layer(out_channels, cfg)
        self.attn = self.temp_attn = None
        if cross_attn:
            heads = out_channels // head_dim
            self.attn = Transformer2DModel(
                num_attention_heads=heads,
                attention_head_dim=head_dim,
                in_channels=out_channels,
                cross_attention_dim=cfg["cross_attention_dim"],
                norm_num_groups=groups,
                use_linear_projection=True,
            )
            if cfg["reference_attention"]:
                proc = ReferenceAttnProcessor()  # stateless: one instance serves attn1 (self) and attn2 (text)
                for block in self.attn.transformer_blocks:
                    block.attn1.set_processor(proc)
                    block.attn2.set_processor(proc)
            self.temp_attn = TemporalAttention(out_channels, heads, head_dim, cfg["num_frames"])
        self.ref_attn = None
        if not cross_attn and cfg["reference_attention_all_levels"]:
            self.ref_attn = ReferenceAttention(out_channels, head_dim, groups)
        self.gradient_checkpointing = False  # set by ModelMixin.enable_gradient_checkpointing()

    def _run(self, x, temb, text, text_mask, frames: FrameInfo):
        x = self.temporal(self.resnet(x, temb), frames)
        if self.ref_attn is not None:
            x = self.ref_attn(x, frames.reference_rows)
        if self.attn is not None:
            kw = None if frames.reference_rows is None else {"reference_rows": frames.reference_rows}
            x = self.attn(x, encoder_hidden_states=text, encoder_attention_mask=text_mask, cross_attention_kwargs=kw,
                          return_dict=False)[0]
            x = self.temp_attn(x, frames)
        return x

    def forward(self, x, temb, text, text_mask, frames: FrameInfo):
        """x (B·F, C_in, H, W); temb (B·F, T); text (B·F, L, D_ctx); text_mask (B·F, L) 1 = real token, or None."""
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(self._run, x, temb, text, text_mask, frames)
        return self._run(x, temb, text, text_mask, frames)


class DownLevel(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, temb_ch: int, n_layers: int, cross: bool, down: bool, cfg: dict):
        super().__init__()
        self.layers = nn.ModuleList(
            SpaceTimeLayer(in_ch if i == 0 else out_ch, out_ch, temb_ch, cross, cfg) for i in range(n_layers)
        )
        self.downsample = (
            Downsample2D(out_ch, use_conv=True, out_channels=out_ch, padding=1, name="op") if down else None
        )

    def forward(self, x, temb, text, text_mask, frames):
        skips = []
        for layer in self.layers:
            x = layer(x, temb, text, text_mask, frames)
            skips.append(x)
        if self.downsample is not None:
            x = self.downsample(x)  # (B·F, C, ⌈H/2⌉, ⌈W/2⌉); works down to 1×1
            skips.append(x)
        return x, skips


class UpLevel(nn.Module):
    def __init__(self, prev_ch: int, skip_chs: list[int], out_ch: int, temb_ch: int, cross: bool, up: bool, cfg: dict):
        super().__init__()
        self.layers = nn.ModuleList(
            SpaceTimeLayer((prev_ch if i == 0 else out_ch) + s, out_ch, temb_ch, cross, cfg)
            for i, s in enumerate(skip_chs)
        )
        self.upsample = Upsample2D(out_ch, use_conv=True, out_channels=out_ch) if up else None

    def forward(self, x, skips, temb, text, text_mask, frames, upsample_size):
        for layer in self.layers:
            x = layer(torch.cat([x, skips.pop()], dim=1), temb, text, text_mask, frames)
        if self.upsample is not None:
            # explicit size: odd latent sizes (e.g. 5 -> 3 -> 6) must come back to the skip's size, not 2×
            x = self.upsample(x, output_size=upsample_size)
        return x


class DFGN(ModelMixin, ConfigMixin):
    """Denoiser ε_θ(z_t, t, text, condition latents, frame mask). See the module doc for the layout."""

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        sample_channels: int = 4,
        cond_channels: int = 4,
        out_channels: int = 4,
        block_out_channels: tuple[int, ...] = (16, 32),
        layers_per_block: int = 1,
        cross_attn_levels: tuple[bool, ...] = (False, True),
        attention_head_dim: int = 8,
        text_embed_dim: int = 384,
        cross_attention_dim: int = 32,
        num_frames: int = 8,
        temporal_layer: str = "sti",  # "sti" | "conv3d" (paper Table 3 ablation)
        sti_heads: int = 2,
        sti_head_dim: int = 8,
        sti_out_norm: bool = True,
        norm_num_groups: int = 8,
        cond_hidden: int = 16,
        cond_heads: int = 2,
        reference_attention: bool = False,  # spatial self-attention also sees the reference frame (reference.py)
        reference_attention_all_levels: bool = False,  # and levels without attention get a block of their own
        size_delta_rank: int = 0,  # low-rank deltas acting only off the latent grid below (size_deltas.py); 0 = none
        size_delta_off_latent: int = 0,  # the draft size's latent side, where the network is exactly its base
        style_delta_rank: int = 0,  # low-rank deltas on that grid only, switched on per prompt (size_deltas.py)
        few_step_delta_rank: int = 0,  # low-rank deltas on every grid, switched on by the few-step sampler
    ):
        super().__init__()
        chans = tuple(int(c) for c in block_out_channels)
        cross = tuple(bool(c) for c in cross_attn_levels)
        _validate(chans, cross, attention_head_dim, norm_num_groups, temporal_layer, layers_per_block, num_frames)
        if reference_attention_all_levels and not reference_attention:
            raise InputError("reference_attention_all_levels needs reference_attention")
        cfg = {  # what the layers need; they read it at build time only (the saved config is self.config)
            "norm_num_groups": norm_num_groups,
            "attention_head_dim": attention_head_dim,
            "cross_attention_dim": cross_attention_dim,
            "num_frames": num_frames,
            "temporal_layer": temporal_layer,
            "sti_heads": sti_heads,
            "sti_head_dim": sti_head_dim,
            "sti_out_norm": sti_out_norm,
            "reference_attention": bool(reference_attention),
            "reference_attention_all_levels": bool(reference_attention_all_levels),
        }
        c0, temb_ch = chans[0], 4 * chans[0]

        self.time_proj = Timesteps(c0, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(c0, temb_ch)
        # MiniLM gives 384-d token states (the paper's CLIP/T5 context is 1024-d): one projection to the context width
        self.text_proj = nn.Linear(text_embed_dim, cross_attention_dim)
        self.cond_encoder = ConditionEncoder(cond_channels, cond_hidden, cond_heads)

        self.conv_in = nn.Conv2d(sample_channels + cond_channels, c0, 3, padding=1)
        self.transformer_in = TemporalAttention(c0, max(1, c0 // attention_head_dim), attention_head_dim, num_frames)

        skip_chs = [c0]  # channel count of every tensor pushed on the skip stack, in push order
        self.down_blocks = nn.ModuleList()
        prev = c0
        for i, ch in enumerate(chans):
            last = i == len(chans) - 1
            self.down_blocks.append(DownLevel(prev, ch, temb_ch, layers_per_block, cross[i], not last, cfg))
            skip_chs += [ch] * (layers_per_block + (0 if last else 1))
            prev = ch

        self.mid_layer = SpaceTimeLayer(prev, prev, temb_ch, True, cfg)
        self.mid_resnet = ResnetBlock2D(
            in_channels=prev, out_channels=prev, temb_channels=temb_ch, groups=norm_num_groups, eps=1e-6
        )

        self.up_blocks = nn.ModuleList()
        for i, (ch, has_cross) in enumerate(zip(reversed(chans), reversed(cross))):
            last = i == len(chans) - 1
            level_skips = [skip_chs.pop() for _ in range(layers_per_block + 1)]
            self.up_blocks.append(UpLevel(prev, level_skips, ch, temb_ch, has_cross, not last, cfg))
            prev = ch

        self.conv_norm_out = nn.GroupNorm(norm_num_groups, c0, eps=1e-5)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(c0, out_channels, 3, padding=1)
        if size_delta_rank and size_delta_off_latent < 1:
            raise InputError("size deltas need the latent side they are off at (size_delta_off_latent)")
        # built last: the deltas wrap every layer above (never their own)
        self.size_deltas = SizeDeltas(self, size_delta_rank, size_delta_off_latent) if size_delta_rank else None
        if style_delta_rank and size_delta_off_latent < 1:
            raise InputError("style deltas need the draft size's latent side they act on (size_delta_off_latent)")
        self.style_deltas = (StyleDeltas(self, style_delta_rank, size_delta_off_latent) if style_delta_rank
                             else None)
        # last of all: their hooks nest inside the size deltas' (size_deltas.FewStepDeltas)
        self.few_step_deltas = FewStepDeltas(self, few_step_delta_rank) if few_step_delta_rank else None

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float,
        encoder_hidden_states: torch.Tensor,
        cond_latents: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """sample, cond_latents (B, 4, F, h, w); timestep (B,) or scalar; encoder_hidden_states (B, L, text_embed_dim);
        frame_mask (B, F) True/1 = real frame; text_mask (B, L) 1 = real token. Returns ε̂ (B, out_channels, F, h, w)."""
        b, _, f, h, w = sample.shape
        self._check_inputs(sample, encoder_hidden_states, cond_latents, frame_mask, text_mask)
        if frame_mask is not None:
            frame_mask = frame_mask.to(device=sample.device, dtype=torch.bool)
        if self.size_deltas is not None:
            self.size_deltas.set_grid(h, w)  # off on the draft-size grid: there the network is its base exactly
        if self.style_deltas is not None:
            self.style_deltas.set_grid(h, w)  # on there only, and only while switched on
        if self.few_step_deltas is not None:
            self.few_step_deltas.set_grid(h, w)  # on while switched on, at any size
        refs = reference_rows(cond_latents) if self.config.reference_attention else None
        frames = FrameInfo(f, frame_mask, refs)

        # timestep -> (B·F, 4·C0): the same embedding for every frame of a clip
        t = (timestep if torch.is_tensor(timestep) else torch.tensor(timestep)).to(sample.device).reshape(-1)
        if t.numel() not in (1, b):
            raise InputError(f"timestep must be a scalar or hold one value per clip ({b}), got {t.numel()}")
        t = t.expand(b)
        temb = self.time_embedding(self.time_proj(t).to(self.conv_in.weight.dtype))
        temb = temb.repeat_interleave(f, dim=0)

        text = self.text_proj(encoder_hidden_states.to(self.text_proj.weight.dtype)).repeat_interleave(f, dim=0)
        if text_mask is not None:
            text_mask = text_mask.to(device=sample.device).repeat_interleave(f, dim=0)  # (B·F, L)

        cond = self.cond_encoder(cond_latents.to(sample.dtype), frame_mask)  # (B, 4, F, h, w)
        x = torch.cat([sample, cond], dim=1).permute(0, 2, 1, 3, 4).reshape(b * f, -1, h, w)  # (B·F, 8, h, w)
        x = self.transformer_in(self.conv_in(x), frames)

        skips = [x]
        for level in self.down_blocks:
            x, level_skips = level(x, temb, text, text_mask, frames)
            skips += level_skips

        x = self.mid_resnet(self.mid_layer(x, temb, text, text_mask, frames), temb)

        for level in self.up_blocks:
            n = len(level.layers)
            level_skips, skips = skips[-n:], skips[:-n]
            size = skips[-1].shape[-2:] if skips else None  # resolution of the next level up
            x = level(x, level_skips, temb, text, text_mask, frames, size)

        x = self.conv_out(self.conv_act(self.conv_norm_out(x)))  # (B·F, out, h, w)
        return x.reshape(b, f, -1, h, w).permute(0, 2, 1, 3, 4)

    def _check_inputs(self, sample, text, cond, frame_mask, text_mask) -> None:
        cfg = self.config
        if sample.ndim != 5 or sample.shape[1] != cfg.sample_channels:
            raise InputError(f"sample must be (B, {cfg.sample_channels}, F, h, w), got {tuple(sample.shape)}")
        b, _, f, h, w = sample.shape
        if f > cfg.num_frames:
            raise InputError(f"{f} frames given but the model was built for at most {cfg.num_frames}")
        if tuple(cond.shape) != (b, cfg.cond_channels, f, h, w):
            raise InputError(f"cond_latents must be {(b, cfg.cond_channels, f, h, w)}, got {tuple(cond.shape)}")
        if text.ndim != 3 or text.shape[0] != b or text.shape[2] != cfg.text_embed_dim:
            raise InputError(f"encoder_hidden_states must be ({b}, L, {cfg.text_embed_dim}), got {tuple(text.shape)}")
        if frame_mask is not None and tuple(frame_mask.shape) != (b, f):
            raise InputError(f"frame_mask must be {(b, f)}, got {tuple(frame_mask.shape)}")
        if text_mask is not None and tuple(text_mask.shape) != tuple(text.shape[:2]):
            raise InputError(f"text_mask must be {tuple(text.shape[:2])}, got {tuple(text_mask.shape)}")


def _validate(chans, cross, head_dim, groups, temporal, layers, num_frames) -> None:
    if not chans or len(cross) != len(chans):
        raise InputError(f"cross_attn_levels {cross} must have one entry per level of block_out_channels {chans}")
    if temporal not in TEMPORAL_LAYERS:
        raise InputError(f"temporal_layer must be one of {TEMPORAL_LAYERS}, got {temporal!r}")
    if layers < 1 or num_frames < 1:
        raise InputError("layers_per_block and num_frames must be >= 1")
    for i, ch in enumerate(chans):
        if ch % groups:
            raise InputError(f"block_out_channels[{i}] = {ch} is not divisible by norm_num_groups = {groups}")
        if (cross[i] or i == len(chans) - 1) and ch % head_dim:  # the mid block always has attention
            raise InputError(f"block_out_channels[{i}] = {ch} is not divisible by attention_head_dim = {head_dim}")


def build_dfgn(cfg: ModelConfig | str, temporal: str = "sti", num_frames: int = 8,
               reference_attention: bool | str | None = False) -> DFGN:
    """A fresh DFGN for a ``ModelConfig`` (its None fields take ``ModelConfig.DEFAULTS``), or for a preset name
    (tiny | small | medium | paper) with the other arguments; ``reference_attention``: a ``config.REFERENCE_MODES`` name
    ("off" | "on" | "all") or a bool (True = "on")."""
    deltas = {}
    if isinstance(cfg, ModelConfig):
        cfg = cfg.resolved()
        preset, temporal, num_frames, reference_attention = (cfg.preset, cfg.temporal, cfg.num_frames,
                                                             cfg.reference_attention)
        if cfg.size_delta_rank or cfg.style_delta_rank:
            deltas = {"size_delta_rank": int(cfg.size_delta_rank), "style_delta_rank": int(cfg.style_delta_rank),
                      "size_delta_off_latent": int(cfg.draft_size) // VAE_FACTOR}
        if cfg.few_step_rank:
            deltas["few_step_delta_rank"] = int(cfg.few_step_rank)
    else:
        preset = cfg
    if preset not in DFGN_PRESETS:
        raise InputError(f"unknown model preset {preset!r}; choose one of {', '.join(DFGN_PRESETS)}")
    if temporal not in TEMPORAL_LAYERS:
        raise InputError(f"unknown temporal layer {temporal!r}; choose one of {', '.join(TEMPORAL_LAYERS)}")
    return DFGN(**{**DFGN_PRESETS[preset], "temporal_layer": temporal, "num_frames": int(num_frames),
                   **reference_flags(reference_mode(reference_attention)), **deltas})


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (works on meta-device models too: only shapes are read)."""
    return sum(p.numel() for p in model.parameters())
