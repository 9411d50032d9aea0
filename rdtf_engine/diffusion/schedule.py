"""Noise schedules, all from diffusers (never hand-written): DDPM for training, DPM-Solver++ / DDIM for sampling.

docs/method.md §3: T = 1000, linear β 0.00085 → 0.012, ε-prediction; the paper samples with DDIM 50 steps
(η = 1.0 in Table 6). Our fast default is DPM-Solver++ (2nd order, ~20 steps), good for guided sampling.
"""

from __future__ import annotations

from dataclasses import asdict

from rdtf_engine.core.config import DiffusionConfig
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.requests import SCHEDULERS

# The few-step sampler (``"lcm"``): diffusers' LCMScheduler on the grid and boundary condition a consistency run
# distils with (training/consistency.py): 50 DDIM points (19, 39, …, 999), timestep scaling 10 (σ_data 0.5 is
# the scheduler's own).
LCM_GRID = 50
LCM_T_SCALE = 10.0


def _common(cfg: DiffusionConfig) -> dict:
    return {k: v for k, v in asdict(cfg).items()}


def training_scheduler(cfg: DiffusionConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(**_common(cfg), clip_sample=False)


def sampling_scheduler(cfg: DiffusionConfig, kind: str):
    """``kind`` (``requests.SCHEDULERS``): "dpm" → DPMSolverMultistepScheduler (dpmsolver++, order 2), "unipc" →
    UniPCMultistepScheduler (bh2, order 2, x₀-predicting corrector), "ddim" → DDIMScheduler, "lcm" → LCMScheduler
    (a consistency-distilled model's few-step sampler). All on the model's
    own training schedule (``cfg``), which is what makes their timesteps mean what the network learnt."""
    if kind == "unipc":
        from diffusers import UniPCMultistepScheduler

        return UniPCMultistepScheduler(
            **_common(cfg), solver_order=2, predict_x0=True, solver_type="bh2", lower_order_final=True
        )
    if kind == "dpm":
        from diffusers import DPMSolverMultistepScheduler

        return DPMSolverMultistepScheduler(
            **_common(cfg), algorithm_type="dpmsolver++", solver_order=2, lower_order_final=True
        )
    if kind == "lcm":  # a distilled model's few-step deltas (model/size_deltas.py), one unguided call a step
        from diffusers import LCMScheduler

        return LCMScheduler(**_common(cfg), original_inference_steps=LCM_GRID, timestep_scaling=LCM_T_SCALE,
                            clip_sample=False)
    if kind == "ddim":
        from diffusers import DDIMScheduler

        return DDIMScheduler(**_common(cfg), clip_sample=False, set_alpha_to_one=False)
    raise InputError(f"unknown scheduler {kind!r}; choose one of {', '.join(SCHEDULERS)}")
