"""Train the small 2× upscaler (``model/upscaler.py``) on real artist frames: ``rdtf train-upscaler``.

Pairs are made the way the product makes them: a real frame (Fluent Emoji, 256 px, the artists' own size) is
shrunk by premultiplied Lanczos to half size, as the model's training frames are shrunk to its 128 px, and the
network learns to give the real frame back (L1 on premultiplied RGBA, which weighs outline and colour alike).

Which frames: the Fluent *training* split only (reserved faces and the pack-evaluation themes are already
dropped by the source), minus a fixed **validation** share of its base code points (``is_validation``: ≈ 10 %,
by sha256) on which the unsharp-mask candidate is tuned; the held-out split is never read here. A share of
Noto frames (``builtin:emoji``, its training emoji, 128 px pairs, no reserved code point) keeps the network from
learning one artist's style only.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rdtf_engine.core.errors import InputError
from rdtf_engine.data.fluent_split import code_points, is_code_point_name, is_reserved
from rdtf_engine.model.upscaler import Upscaler, save_upscaler, to_valid_premultiplied
from rdtf_engine.platforms.upscale import shrink

VALIDATION_FRACTION = 0.1
PATCH = 64  # high-resolution patch side; the network sees 32 × 32


def is_validation(stem: str) -> bool:
    """True for the Fluent training files kept for tuning upscalers (by base code point, so every variant of an
    emoji lands on the same side)."""
    h = hashlib.sha256(f"rdtf-upscale-val:{code_points(stem)[0]:x}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < VALIDATION_FRACTION


def fluent_frames(split: str, files: int, per_file: int, validation: bool | None = None, seed: int = 0,
                  size: int = 256) -> np.ndarray:
    """(N, size, size, 4) uint8 frames of ``files`` Fluent files of ``split`` (evenly spread over the split, or
    all when it has fewer), ``per_file`` evenly spaced frames each. ``validation``: True / False keeps only
    the validation / non-validation files of the training split (None: no filter)."""
    from rdtf_engine.data.fluent import FluentSource
    from rdtf_engine.formats.timing import fit_canvas

    src = FluentSource(size, 1, seed, split=split)
    items = [it for it in src.files if validation is None or is_validation(it.stem) == validation]
    if not items:
        raise InputError(f"no Fluent {split} files for this selection")
    pick = np.unique(np.linspace(0, len(items) - 1, min(files, len(items))).round().astype(int))
    out = []
    for k in pick:
        clip = src.decode(items[k].stem)
        idx = np.unique(np.linspace(0, clip.num_frames - 1, per_file + 2).round().astype(int))[1:-1]
        out.append(fit_canvas(clip.frames[idx], size, size))  # Fluent files are 256 px: a no-op there
    return np.concatenate(out)


def noto_frames(clips: int, seed: int = 0, size: int = 128) -> np.ndarray:
    """(N, size, size, 4): the middle frame of ``clips`` ``builtin:emoji`` training clips, none showing a
    reserved code point."""
    from rdtf_engine.data.emoji import EmojiSource

    src = EmojiSource(size, clips, seed)
    out = []
    for i in range(len(src)):
        clip = src[i]
        cps = [v for v in clip.labels.values() if isinstance(v, str) and is_code_point_name(v)]
        if not any(is_reserved(code_points(v)) for v in cps):
            out.append(clip.frames[clip.num_frames // 2])
    return np.stack(out)


class PairBank:
    """Random (low, high) premultiplied patch pairs (B, 4, 32, 32) / (B, 4, 64, 64) from frame stacks, patches
    with something visible only (an empty corner teaches nothing)."""

    def __init__(self, stacks: list[tuple[np.ndarray, float]], seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        # kept as uint8 premultiplied (N, H, W, 4): float copies of a few thousand 256 px frames would take GBs
        self.stacks = [(_premultiplied_u8(hi), _premultiplied_u8(shrink(hi))) for hi, _ in stacks]
        w = np.asarray([share for _, share in stacks], np.float64)
        self.shares = w / w.sum()

    def batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        lows, highs = [], []
        while len(lows) < n:
            hi, lo = self.stacks[int(self.rng.choice(len(self.stacks), p=self.shares))]
            i = int(self.rng.integers(len(hi)))
            y, x = (int(self.rng.integers(0, lo.shape[1] - PATCH // 2 + 1)) for _ in range(2))
            h = hi[i, 2 * y: 2 * y + PATCH, 2 * x: 2 * x + PATCH]  # (64, 64, 4)
            if h[..., 3].max() < 13:
                continue
            highs.append(h)
            lows.append(lo[i, y: y + PATCH // 2, x: x + PATCH // 2])
        return _to_tensor(np.stack(lows)), _to_tensor(np.stack(highs))


def _premultiplied_u8(frames: np.ndarray) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(f, "RGBA").convert("RGBa")) for f in frames])


def _to_tensor(pm: np.ndarray) -> torch.Tensor:
    """(B, h, w, 4) uint8 premultiplied → (B, 4, h, w) float32 in [0, 1]."""
    return torch.from_numpy(pm).permute(0, 3, 1, 2).float().div_(255)


def train_upscaler(out: str | Path, minutes: float = 20.0, max_steps: int = 100_000, batch: int = 16,
                   lr: float = 2e-3, width: int = 32, depth: int = 3, fluent_files: int = 400, noto_clips: int = 400,
                   seed: int = 0, on_step: Callable[[int, float], None] | None = None) -> dict[str, Any]:
    """Train until ``minutes`` of wall time or ``max_steps`` → the saved upscaler's summary."""
    torch.manual_seed(seed)
    bank = PairBank([(fluent_frames("train", fluent_files, 3, validation=False, seed=seed), 0.75),
                     (noto_frames(noto_clips, seed), 0.25)], seed)
    model = Upscaler(width, depth)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0, step, losses = time.monotonic(), 0, []
    budget = minutes * 60.0
    while step < max_steps and time.monotonic() - t0 < budget:
        # cosine decay on the share of the time budget used (the step count is unknown in advance)
        frac = min(1.0, max(step / max_steps, (time.monotonic() - t0) / budget))
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + np.cos(np.pi * frac))
        lo, hi = bank.batch(batch)
        loss = F.l1_loss(to_valid_premultiplied(model(lo)), hi)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
        step += 1
        if on_step and step % 100 == 0:
            on_step(step, float(np.mean(losses[-100:])))
    model.summary = {"steps": step, "minutes": round((time.monotonic() - t0) / 60, 2), "batch": batch,
                     "patch": PATCH, "parameters": model.num_parameters(),
                     "final_l1": float(np.mean(losses[-100:])) if losses else None,
                     "data": "builtin:fluent (training split minus validation) 75 %, builtin:emoji 25 %"}
    save_upscaler(model.eval(), out)
    return model.summary
