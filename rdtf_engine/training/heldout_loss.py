"""Held-out denoising loss, per task: the one metric that needs no pretrained network.

Deterministic: the same clips, key-frame counts, masks, timesteps and noise every call (own seeded
generators), so losses from different steps, runs and ablation arms are directly comparable.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

from rdtf_engine.training.batching import make_batch
from rdtf_engine.training.masks import masked_mse

EVAL_TASKS = ("t2v", "it2v", "interpolation", "pred_forward")


@torch.no_grad()
def validation_loss(model, cache, val_ids: Sequence[int], text, noise_sched, num_frames: int, dual_mask: bool,
                    seed: int = 1234, batch_size: int = 8, repeats: int = 2, distiller=None) -> dict[str, float]:
    """→ {"all": mean, task: mean, ...}. Without dual masks only t2v on fixed-length clips is measured.
    ``distiller`` (training/consistency.py): its distillation loss instead of the ε-MSE (same clips, same seeds)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    tasks = EVAL_TASKS if dual_mask else ("t2v",)
    out: dict[str, float] = {}
    for task in tasks:
        rng = random.Random(f"{seed}-{task}")
        gen = torch.Generator(device="cpu").manual_seed(seed)
        total, count = 0.0, 0
        for _ in range(repeats):
            for s in range(0, len(val_ids), batch_size):
                ids = list(val_ids[s : s + batch_size])
                b = make_batch(cache, ids, rng, num_frames, dual_mask, lambda r, t=task: t, augment=False)
                states, tmask = text.encode(b.captions)
                noise = torch.randn(b.z0.shape, generator=gen).to(device)
                if distiller is not None:
                    total += float(distiller.loss(b, states, tmask, noise, gen)) * len(ids)
                    count += len(ids)
                    continue
                t = torch.randint(50, 950, (len(ids),), generator=gen).to(device)
                noisy = noise_sched.add_noise(b.z0, noise, t)
                eps = model(noisy, t, states, b.cond, frame_mask=b.valid > 0, text_mask=tmask)
                total += float(masked_mse(eps.float(), noise, b.valid)) * len(ids)
                count += len(ids)
        out[task] = total / max(count, 1)
    out["all"] = sum(out[t] for t in tasks) / len(tasks)
    model.train(was_training)
    return out


