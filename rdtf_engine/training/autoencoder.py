"""Train the RGBA autoencoder on sticker frames (the latent space the DFGN lives in): from scratch, or a model's.

A fine-tune may train the decoder alone (``decoder_only``): the encoder, and so the latent space and its scale,
stay exactly the base model's, so every DFGN trained on those latents keeps working while the decoder learns
new styles and sizes (Fluent's shaded 3-D look at 256 px beside Noto's flat 128 px glyphs).

Frames are sampled from the clips of a source and kept as uint8 on the training device (N, H, W, 4); each step
premultiplies a random batch and minimises autoencoder_loss. The result is a diffusers ``AutoencoderKL``
folder whose ``scaling_factor`` is set to 1/std of its latents (SD's 0.18215 trick, measured, not copied).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rdtf_engine.core.errors import Cancelled, InputError, TrainingError
from rdtf_engine.core.events import Log, Metrics, Progress, never_stop, null_event
from rdtf_engine.model.autoencoder import autoencoder_loss, build_autoencoder, compute_latent_scale, uint8_to_pixels
from rdtf_engine.model.store import load_module_folder


def collect_frames(source, max_frames: int, seed: int = 0) -> np.ndarray:
    """Up to ``max_frames`` frames from clips of ``source`` in a seeded random order → (N, H, W, 4) uint8."""
    from rdtf_engine.data.sources import ProceduralSource, render_many

    order = [int(i) for i in np.random.default_rng(seed).permutation(len(source))]
    out, n, chunk = [], 0, 256
    for s in range(0, len(order), chunk):
        ids = order[s : s + chunk]
        clips = render_many(source, ids) if isinstance(source, ProceduralSource) else [source[i] for i in ids]
        for c in clips:
            out.append(c.frames)
            n += c.num_frames
        if n >= max_frames:
            break
    if not out:
        raise InputError("the training data is empty")
    return np.concatenate(out)[:max_frames]


def train_autoencoder(
    source,
    out_dir: str | os.PathLike,
    preset: str,
    steps: int,
    device: torch.device,
    batch_size: int = 16,
    lr: float = 4e-4,
    seed: int = 0,
    max_frames: int = 20000,
    mixed_precision: str = "no",
    on_event=null_event,
    should_stop=never_stop,
    frames: np.ndarray | None = None,
    max_minutes: float = 0.0,
    init_vae=None,
    decoder_only: bool = False,
    draft_source=None,
):
    """→ (vae, scale). Writes ``out_dir`` (config.json + safetensors + ae.json) atomically.

    ``init_vae``: start from this autoencoder (a fine-tune) instead of a fresh ``preset`` one; ``decoder_only``
    (needs ``init_vae``) freezes the encoder and keeps its latent scale. ``draft_source``: the same data at a
    model's smaller draft size; every other step then trains on its frames, so the decoder still decodes the
    drafts it is given at that size (a decoder tuned at 256 px alone lost 2.5 dB on 128 px Noto frames)."""
    if decoder_only and init_vae is None:
        raise InputError("decoder-only training needs an autoencoder to start from (--init-from)")
    torch.manual_seed(seed)
    if frames is None:
        on_event(Log("info", f"autoencoder: collecting up to {max_frames} frames"))
        frames = collect_frames(source, max_frames, seed)
    size = frames.shape[1]
    data = torch.from_numpy(frames).to(device)  # (N, H, W, 4) uint8
    pools = [data]  # step s trains on pools[s % len(pools)]: one size per batch
    if draft_source is not None:
        pools.append(torch.from_numpy(collect_frames(draft_source, max_frames, seed)).to(device))
        on_event(Log("info", f"autoencoder: every other step on {pools[1].shape[0]} frames at {pools[1].shape[1]} px"))
    vae = (init_vae if init_vae is not None else build_autoencoder(preset, sample_size=size)).to(device).train()
    params = trainable_parameters(vae, decoder_only)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 100) * (0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)) * 0.9 + 0.1))
    gen = torch.Generator(device="cpu").manual_seed(seed)
    use_bf16 = device.type == "cuda" and mixed_precision in ("auto", "bf16")
    t0, bad, last = time.time(), 0, float("nan")
    for step in range(steps):
        if should_stop():
            raise Cancelled("autoencoder training stopped")
        if max_minutes and time.time() - t0 > max_minutes * 60:
            on_event(Log("info", f"autoencoder: time limit reached after {step} steps"))
            steps = step
            break
        pool = pools[step % len(pools)]
        idx = torch.randint(0, pool.shape[0], (batch_size,), generator=gen).to(device)
        x = uint8_to_pixels(pool.index_select(0, idx))  # (B, 4, H, W)
        if torch.rand((), generator=gen) < 0.5:
            x = x.flip(-1)  # stickers are mostly left/right symmetric in style; cheap augmentation
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss, parts = autoencoder_loss(vae, x)
        if not torch.isfinite(loss):
            bad += 1
            opt.zero_grad(set_to_none=True)
            if bad > 20:
                raise TrainingError("autoencoder loss is not finite (20 times in a row); lower the learning rate")
            continue
        bad = 0
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        last = float(loss.detach())
        if step % 25 == 0 or step == steps - 1:
            rate = (step + 1) / max(time.time() - t0, 1e-6)
            on_event(Metrics(step, stage="autoencoder", loss=last, steps_per_s=rate,
                             eta_s=(steps - step - 1) / rate, extra=dict(parts)))
            on_event(Progress("autoencoder", step + 1, steps))
    vae.eval().requires_grad_(False)
    if decoder_only:  # same encoder → same latents: the base's scale stays right for its DFGN
        scale = float(vae.config.scaling_factor)
    else:
        scale = compute_latent_scale(vae, uint8_to_pixels(data[: min(256, data.shape[0])]))
        vae.register_to_config(scaling_factor=scale)
    vae.register_to_config(sample_size=int(size))
    save_autoencoder(vae, Path(out_dir), {"preset": preset, "steps": steps, "final_loss": last, "scale": scale,
                                          "frames": int(data.shape[0]), "size": int(size),
                                          "draft_size": int(pools[1].shape[1]) if len(pools) > 1 else 0,
                                          "decoder_only": bool(decoder_only), "fine_tuned": init_vae is not None})
    on_event(Log("info", f"autoencoder trained: {steps} steps, loss {last:.4f}, latent scale {scale:.4f}"))
    return vae, scale


def trainable_parameters(vae, decoder_only: bool) -> list[torch.nn.Parameter]:
    """All weights, or (``decoder_only``) the decoder and its post-quantisation conv, the encoder frozen."""
    if not decoder_only:
        return [p.requires_grad_(True) for p in vae.parameters()]
    vae.requires_grad_(False)
    parts = [vae.decoder, vae.post_quant_conv]
    return [p.requires_grad_(True) for m in parts for p in m.parameters()]


def save_autoencoder(vae, out: Path, info: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        vae.save_pretrained(tmp, safe_serialization=True, max_shard_size="15MB")
        (tmp / "ae.json").write_text(json.dumps(info, indent=2), "utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_autoencoder(path: str | os.PathLike, device: torch.device):
    """A folder written by ``save_autoencoder`` or a model folder (its ``vae/``) → (vae, scale)."""
    from rdtf_engine.core.errors import ModelError

    p = Path(path)
    if (p / "vae" / "config.json").is_file():
        p = p / "vae"
    if not (p / "config.json").is_file():
        raise ModelError(f"{path} is not an autoencoder folder (no config.json)")
    vae = load_module_folder(p, "vae")  # the model-folder trust boundary: checked config, safetensors only
    return vae.to(device).eval().requires_grad_(False), float(vae.config.scaling_factor)
