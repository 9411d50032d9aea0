"""Consistency distillation of a network into its few-step deltas (latent consistency models, arXiv 2310.04378).

The network a run starts from (``init_from``) is the teacher; the student is the same network with its few-step
deltas switched on (model/size_deltas.py), so the teacher costs no second copy of the weights and the network
itself never changes. One training sample (docs/method.md §7.1):

    t = a timestep of the 50-step DDIM grid (19, 39, …, 999), s = t − 20 (0 at the grid's first point)
    x_t = √ᾱ_t·z₀ + √(1−ᾱ_t)·ε                                  the forward process, as in training
    ε̂ = the teacher's guided ε at (x_t, t)                        rows ∅∅ / img∅ / img·txt, the pipeline's formula
    x_s = √ᾱ_s·x̂₀ + √(1−ᾱ_s)·ε̂, x̂₀ = (x_t − √(1−ᾱ_t)·ε̂)/√ᾱ_t     one DDIM step of the teacher
    f(x, t) = c_skip(t)·x + c_out(t)·x̂₀(x, t)                     the student's consistency function
    loss = pseudo-Huber( f_student(x_t, t), sg[f_student(x_s, s)] ) over the clip's valid frames

The student runs the prompt's row alone, so at sampling time one unguided denoiser call per step draws what the
teacher draws with two or three guided ones. The target uses the student itself without gradient (as LCM-LoRA:
low-rank deltas need no EMA target network). diffusers' ``LCMScheduler`` samples it with the same grid and
boundary scalings (``diffusion.schedule``: ``original_inference_steps`` = GRID, ``timestep_scaling`` = LCM_T_SCALE).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from functools import lru_cache

import torch

from rdtf_engine.diffusion.schedule import LCM_GRID as GRID  # the DDIM grid the teacher steps along
from rdtf_engine.model.size_deltas import set_few_step

HUBER_C = 1e-3  # pseudo-Huber's c (LCM's choice for 4-channel latents)


def grid_timesteps(num_train_timesteps: int = 1000, grid: int = GRID) -> torch.Tensor:
    """(grid,) long: the DDIM grid's timesteps, ascending: c − 1, 2c − 1, …, T − 1 with c = T // grid."""
    c = num_train_timesteps // grid
    return torch.arange(1, grid + 1, dtype=torch.long) * c - 1


def step_pairs(index: torch.Tensor, num_train_timesteps: int = 1000,
               grid: int = GRID) -> tuple[torch.Tensor, torch.Tensor]:
    """Grid indices (B,) → (t, s) (B,) long: the timestep a sample starts at and the one the teacher steps to
    (one grid step earlier; 0 from the first point, where the boundary condition makes f the identity)."""
    c = num_train_timesteps // grid
    t = grid_timesteps(num_train_timesteps, grid)[index]
    return t, (t - c).clamp(min=0)


@lru_cache(maxsize=1)
def _sampler():
    """The few-step sampler's scheduler (diffusion.schedule): its boundary condition is the one distilled for."""
    from rdtf_engine.core.config import DiffusionConfig
    from rdtf_engine.diffusion.schedule import sampling_scheduler

    return sampling_scheduler(DiffusionConfig(), "lcm")


def boundary_scalings(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(c_skip, c_out) at timesteps t (B,): c_skip(0) = 1 and c_out(0) = 0 (f(x, 0) = x); near the end of the
    schedule c_skip ≈ 0, f ≈ x̂₀. diffusers' LCMScheduler computes them (σ_data 0.5, timestep scaling LCM_T_SCALE), so
    training and sampling use one formula."""
    return _sampler().get_scalings_for_boundary_condition_discrete(t.float())


def _bcast(v: torch.Tensor) -> torch.Tensor:
    return v.reshape(-1, 1, 1, 1, 1)  # (B,) → (B, 1, 1, 1, 1) against (B, 4, F, h, w)


def x0_of(x: torch.Tensor, eps: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """x̂₀ from ε-prediction: x (B, 4, F, h, w), ε̂ alike, ᾱ (B,)."""
    a = _bcast(a)
    return (x - (1 - a).sqrt() * eps) / a.sqrt()


def consistency_fn(x: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """f(x, t) = c_skip(t)·x + c_out(t)·x̂₀ (B, 4, F, h, w)."""
    c_skip, c_out = boundary_scalings(t)
    return _bcast(c_skip.to(x.device)) * x + _bcast(c_out.to(x.device)) * x0_of(x, eps, a)


def pseudo_huber(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, c: float = HUBER_C) -> torch.Tensor:
    """√((pred − target)² + c²) − c, averaged over the valid frames' elements: pred, target (B, 4, F, h, w),
    valid (B, F) 0/1."""
    v = valid[:, None, :, None, None].to(pred.dtype)
    err = ((pred.float() - target.float()) ** 2 + c * c).sqrt() - c
    return (err * v).sum() / (v.sum() * pred.shape[1] * pred.shape[3] * pred.shape[4]).clamp(min=1)


def guided_teacher_eps(model, x: torch.Tensor, t: torch.Tensor, states: torch.Tensor, tmask: torch.Tensor,
                       null: tuple[torch.Tensor, torch.Tensor], cond: torch.Tensor, frame_mask: torch.Tensor,
                       scales: tuple[float, float]) -> torch.Tensor:
    """The teacher's guided ε̂ (B, 4, F, h, w): rows ∅∅ / img∅ / img·txt in one batched call (3B), combined as the
    pipeline combines them (``diffusion.denoiser``); with no frame given img∅ is ∅∅ and the formula is text
    guidance alone. ``null`` = the null prompt's (states (1, L, D), mask (1, L)); ``scales`` = (text, image)."""
    b = x.shape[0]
    ns, nm = null[0].expand(b, -1, -1), null[1].expand(b, -1)
    conds = torch.cat([torch.zeros_like(cond), cond, cond])  # (3B, 4, F, h, w)
    eps = model(x.repeat(3, 1, 1, 1, 1), t.repeat(3), torch.cat([ns, ns, states]), conds,
                frame_mask=frame_mask.repeat(3, 1), text_mask=torch.cat([nm, nm, tmask])).float()
    e00, e0i, eti = eps.chunk(3)
    s_txt, s_img = scales
    return e00 + s_img * (e0i - e00) + s_txt * (eti - e0i)


def consistency_loss(model, z0: torch.Tensor, cond: torch.Tensor, valid: torch.Tensor, states: torch.Tensor,
                     tmask: torch.Tensor, null: tuple[torch.Tensor, torch.Tensor], noise: torch.Tensor,
                     index: torch.Tensor, alphas: torch.Tensor, scales: tuple[float, float],
                     autocast: Callable[[], object] = nullcontext, student=None) -> torch.Tensor:
    """The distillation loss of one batch (module docstring): z0, cond, noise (B, 4, F, h, w); valid (B, F);
    states (B, L, D) and tmask (B, L) the captions'; ``index`` (B,) grid points; ``alphas`` ᾱ (T,) on the device.
    ``model`` runs the teacher and the target (no gradient); ``student`` (default ``model``: under DDP the wrapped
    one) the prediction. Leaves the few-step deltas switched off, as it found them."""
    t, s = (v.to(z0.device) for v in step_pairs(index, alphas.shape[0]))
    a_t, a_s = alphas[t], alphas[s]
    x_t = _bcast(a_t).sqrt() * z0 + (1 - _bcast(a_t)).sqrt() * noise
    fm = valid > 0
    try:
        with torch.no_grad():
            set_few_step(model, False)
            with autocast():
                eps = guided_teacher_eps(model, x_t, t, states, tmask, null, cond, fm, scales)
            x_s = _bcast(a_s).sqrt() * x0_of(x_t, eps, a_t) + (1 - _bcast(a_s)).sqrt() * eps
            set_few_step(model, True)
            with autocast():
                e_tgt = model(x_s, s, states, cond, frame_mask=fm, text_mask=tmask).float()
            target = consistency_fn(x_s, e_tgt, s, a_s)
        with autocast():
            e_st = (student or model)(x_t, t, states, cond, frame_mask=fm, text_mask=tmask).float()
    finally:  # off again: anything else that runs the network (a preview, the next teacher) finds it as itself
        set_few_step(model, False)
    return pseudo_huber(consistency_fn(x_t, e_st, t, a_t), target, valid)


def teacher_scales(train, drawing: dict) -> tuple[float, float]:
    """(text, image) guidance the teacher draws with: the run's (``TrainConfig.guidance_*``), else the base model's
    card (``drawing``, finetune.drawing_of), else the engine's defaults — what the base draws with unasked."""
    from rdtf_engine.core.requests import DEFAULT_GUIDANCE_IMAGE, DEFAULT_GUIDANCE_TEXT

    txt = float(train.guidance_text or drawing.get("guidance_text") or DEFAULT_GUIDANCE_TEXT)
    img = float(train.guidance_image or drawing.get("guidance_image") or DEFAULT_GUIDANCE_IMAGE)
    return txt, img


class Distiller:
    """What a consistency run's steps share: the network (teacher with its few-step deltas off, student with them
    on), the null prompt's text states, ᾱ on the device and the teacher's guidance."""

    def __init__(self, model, text, noise_sched, scales: tuple[float, float], device: torch.device) -> None:
        from rdtf_engine.model.text import NULL_PROMPT

        self.model, self.scales = model, scales
        self.null = text.encode([NULL_PROMPT])  # ((1, L, D), (1, L))
        self.alphas = noise_sched.alphas_cumprod.to(device=device, dtype=torch.float32)  # (T,)

    def loss(self, b, states, tmask, noise, gen: torch.Generator, autocast=nullcontext, student=None) -> torch.Tensor:
        """One micro-batch's loss (``batching.Batch`` b; noise like b.z0); grid points drawn from ``gen``."""
        index = torch.randint(0, GRID, (b.z0.shape[0],), generator=gen)
        return consistency_loss(self.model, b.z0, b.cond, b.valid, states, tmask, self.null, noise, index,
                                self.alphas, self.scales, autocast, student)
