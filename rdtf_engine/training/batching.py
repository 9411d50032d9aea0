"""Assemble one training batch with the paper's dual masks (docs/method.md §4).

For each sample: pick k ∈ 3…8 key frames (loss mask: zero-padded to ``num_frames``), draw a task from the
curriculum weights, build its condition mask, and augment the caption. With ``dual_mask=False`` (the
ablation arm) every clip is a fixed-length ``num_frames`` clip and the task is always text→video.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from rdtf_engine.data.latent_cache import KS, LatentCache
from rdtf_engine.model.text import NULL_PROMPT, augment_caption
from rdtf_engine.training.masks import condition_mask, uses_text


@dataclass
class Batch:
    z0: torch.Tensor  # (B, 4, F, h, w) clean latents, zero on padded frames
    cond: torch.Tensor  # (B, 4, F, h, w) = z0 · condition mask · validity mask
    valid: torch.Tensor  # (B, F) float 0/1 loss/validity mask
    cond_mask: torch.Tensor  # (B, F) float 0/1
    captions: list[str]  # augmented; "" = null prompt
    tasks: list[str]


def make_batch(
    cache: LatentCache,
    clip_ids: Sequence[int],
    rng: random.Random,
    num_frames: int,
    dual_mask: bool,
    pick_task: Callable[[random.Random], str],
    word_dropout: float = 0.2,
    uncond_prob: float = 0.1,
    augment: bool = True,
) -> Batch:
    rows, valids, cmasks, caps, tasks = [], [], [], [], []
    for i in clip_ids:
        if dual_mask:
            k = rng.choice([k for k in KS if k <= num_frames]) if num_frames >= KS[0] else num_frames
            frames = cache.keyframes[i][k] if k in cache.keyframes[i] else cache.fixed_frames(i, k)
            task = pick_task(rng)
        else:
            k = num_frames
            frames = cache.fixed_frames(i, k)
            task = "t2v"
        base = cache.offsets[i]
        # padded slots gather the clip's first frame and are zeroed by the validity mask below
        rows.extend([base + j for j in frames] + [base] * (num_frames - k))
        valid = [1.0] * k + [0.0] * (num_frames - k)
        cm = [float(v) for v in condition_mask(task, k, num_frames, rng)] if dual_mask else [0.0] * num_frames
        caption = cache.captions[i]
        if not uses_text(task):
            caption = NULL_PROMPT  # i2v: the authors multiply the text embedding by 0; we use the null prompt
        elif augment:
            caption = augment_caption(caption, rng, word_dropout, uncond_prob)
        valids.append(valid)
        cmasks.append(cm)
        caps.append(caption)
        tasks.append(task)
    # One gather for the whole batch (not one per clip): on CUDA every small host→device index copy would
    # wait for the GPU queue to drain, so per-clip gathers serialised batch assembly with the previous step.
    dev = cache.latents.device
    sel = torch.tensor(rows, dtype=torch.long).to(dev, non_blocking=True)
    lat = cache.latents.index_select(0, sel).float()  # (B·F, 4, h, w)
    lat = lat.view(len(valids), num_frames, *lat.shape[1:])  # (B, F, 4, h, w)
    valid_t = torch.tensor(valids).to(dev, non_blocking=True)
    cm_t = torch.tensor(cmasks).to(dev, non_blocking=True)
    z0 = (lat * valid_t[:, :, None, None, None]).permute(0, 2, 1, 3, 4).contiguous()  # (B, 4, F, h, w)
    cond = z0 * (cm_t * valid_t)[:, None, :, None, None]
    return Batch(z0, cond, valid_t, cm_t, caps, tasks)
