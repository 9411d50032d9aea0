"""What happens after a training step: metrics (events and metrics.jsonl), the held-out loss, checkpoints,
sample grids and the exported EMA model."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rdtf_engine import __version__
from rdtf_engine.core.atomic import write_text_atomic
from rdtf_engine.core.config import ModelCard
from rdtf_engine.core.events import Metrics, Preview, Progress
from rdtf_engine.core.requests import FEW_STEPS
from rdtf_engine.training.heldout_loss import validation_loss

if TYPE_CHECKING:
    from rdtf_engine.training.run_setup import Run

LOG_EVERY = 10
EARLY_ETA_STEPS = 3  # steps after the start (or resume) that report progress and an ETA before LOG_EVERY
PHASES = ("batch", "text", "model", "update", "sync")


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


class StepReport:
    """The logging window of a run: loss and per-phase wall time since the last logged step, and the rate
    (steps/s since the run or its resume started, so the ETA is honest after a resume)."""

    def __init__(self, run: Run, step_at_start: int) -> None:
        self.run, self.step_at_start = run, step_at_start
        self.t_start = self.t_first = time.time()
        self.window: list[float] = []
        # per-step wall time by phase (metrics "ms"): data, text encoder, forward+backward (+ DDP all-reduce),
        # the update (clip, AdamW, EMA, curriculum all-reduce) and the stop-flag all-reduce that starts each step
        self.timing = dict.fromkeys(PHASES, 0.0)
        # per-step sums of the loss terms beside the ε-MSE (the anchor's, the motion term's), this window
        self.extra: dict[str, float] = {}
        self.val_every = max(LOG_EVERY, run.req.run.checkpoint_every)

    def after_step(self, loss: float, weights: dict[str, float] | None, task_counts: dict[str, int]) -> None:
        run, step = self.run, self.run.state.step
        req = run.req
        self.window.append(loss)
        logged = step % LOG_EVERY == 0 or step == req.train.steps
        if 0 < step - self.step_at_start <= EARLY_ETA_STEPS and not logged:
            self.progress(step)  # an ETA from the very first steps, long before the first metrics row
        if logged:
            self.log(step, weights, task_counts)
            self.window = []  # a resume at a step that is not a multiple of LOG_EVERY must not shift the window
        if step % self.val_every == 0 or step == req.train.steps:
            validate(run, step)
        if step % req.run.checkpoint_every == 0 and step < req.train.steps:
            run.checkpoint("periodic")
        if req.run.sample_every and step % req.run.sample_every == 0 and run.accelerator.is_main_process:
            sample_preview(run, step)

    def log(self, step: int, weights: dict[str, float] | None, task_counts: dict[str, int]) -> None:
        run = self.run
        n = max(len(self.window), 1)
        ms = {k: round(v * 1000 / n, 2) for k, v in self.timing.items()}  # per step, this window
        self.timing.update(dict.fromkeys(self.timing, 0.0))
        extra = {k: round(v / n, 6) for k, v in self.extra.items()}  # per step of the window (0 where it sat out)
        self.extra = {}
        elapsed = max(time.time() - self.t_start, 1e-6)
        rate = (step - self.step_at_start) / elapsed
        m = Metrics(step, loss=sum(self.window) / n, lr=run.state.lr_sched.get_last_lr()[0], steps_per_s=rate,
                    eta_s=self.capped((run.req.train.steps - step) / max(rate, 1e-9)), elapsed_s=round(elapsed, 2),
                    curriculum=run.req.train.curriculum, task_counts=dict(task_counts),
                    task_weights={k: round(v, 4) for k, v in (weights or {}).items()},
                    bucket=run.state.curriculum.state.bucket, ms=ms, extra=extra,
                    gpu_mem_mb=torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None)
        run.on_event(m)
        run.on_event(Progress("train", step, run.req.train.steps, eta_message(m.eta_s), eta_s=m.eta_s))
        append_metrics_row(run, m)

    def capped(self, eta_s: float) -> float:
        """A run with a time cap (``max_minutes``, e.g. the CPU pack recipe on a slow machine) ends at the cap
        if its steps would take longer: the ETA says when it really ends."""
        limit = self.run.req.run.max_minutes
        if not limit:
            return eta_s
        return max(0.0, min(eta_s, limit * 60 - (time.time() - self.t_start)))

    def progress(self, step: int) -> None:
        # The first step also pays for warm-up (allocations, kernel choice): from the second on, the rate is
        # measured from the end of the first one.
        if step - self.step_at_start == 1:
            self.t_first = time.time()
        done, since = step - self.step_at_start, time.time() - self.t_start
        if step - self.step_at_start > 1:
            done, since = step - self.step_at_start - 1, time.time() - self.t_first
        eta = self.capped((self.run.req.train.steps - step) * since / max(done, 1))
        self.run.on_event(Progress("train", step, self.run.req.train.steps, eta_message(eta), eta_s=eta))


def eta_message(eta_s: float | None) -> str:
    if eta_s is None:
        return ""
    s = int(eta_s)
    return f"ETA {s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def append_metrics_row(run: Run, m: Metrics) -> None:
    if run.accelerator.is_main_process:
        with open(run.dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(m.row()) + "\n")


def _with_ema(run: Run, fn):
    """Run ``fn()`` with the EMA weights in the model, then put the training weights back."""
    st = run.state
    st.ema.store(st.raw_model.parameters())
    st.ema.copy_to(st.raw_model.parameters())
    try:
        return fn()
    finally:
        st.ema.restore(st.raw_model.parameters())
        st.raw_model.train()


def validate(run: Run, step: int) -> None:
    """The held-out denoising loss of the EMA weights, per task (a fixed seed: comparable across steps); a
    consistency-distillation run's own loss there."""
    req, (cache, val_ids) = run.req, run.data.heldout
    if not val_ids or not run.accelerator.is_main_process:
        return
    per_task = _with_ema(run, lambda: validation_loss(run.state.raw_model, cache, val_ids, run.text,
                                                      run.noise_sched, req.model.num_frames, req.train.dual_mask,
                                                      seed=1234, distiller=run.distiller))
    m = Metrics(step, stage="validation", val_loss=per_task["all"], val=per_task)
    run.on_event(m)
    append_metrics_row(run, m)


def sample_preview(run: Run, step: int) -> None:
    from rdtf_engine.diffusion.sheets import sample_grid

    data, train = run.data, run.req.train
    cache, ids = data.heldout if data.val_ids else (data.cache, data.train_ids)
    # a style run's captions carry its tag: the preview draws them with the style deltas on
    card = {**run.drawing, "style_tag": train.style_tag.strip(" ,") if train.trainable == "style" else ""}
    # a distillation run's previews are what it learns: its few-step sampler's drawings
    how = {"scheduler": "lcm", "steps": FEW_STEPS} if run.distiller is not None else {}
    path = _with_ema(run, lambda: sample_grid(run.state.raw_model, data.vae, data.scale, cache, ids, run.req.model,
                                              run.dir / "samples" / f"step_{step:07d}.png", **how, **card))
    run.on_event(Preview(step, [str(path)], "samples (EMA weights)"))


def export_model(run: Run) -> None:
    """Write the EMA weights as a complete model folder (run_dir/model) usable by generate."""
    from rdtf_engine.model.store import save_model_folder

    st, req, data = run.state, run.req, run.data
    ema_model = copy.deepcopy(st.raw_model).eval()
    st.ema.copy_to(ema_model.parameters())
    drawing = {"guidance_text": float(req.train.guidance_text), "guidance_image": float(req.train.guidance_image),
               "style_tag": req.train.style_tag.strip(" ,") if req.model.style_delta_rank else "", **run.drawing}
    if run.distiller is not None:  # the few-step sampler's steps, and the guidance its deltas draw at
        drawing.update(few_step_steps=FEW_STEPS, few_step_guidance=run.distiller.scales[0])
    card = ModelCard(name=run.dir.name, preset=req.model.preset, size=req.model.size,
                     num_frames=req.model.num_frames, temporal=req.model.temporal, dual_mask=req.train.dual_mask,
                     curriculum=req.train.curriculum, steps=st.step, data=req.train.data,
                     data_summary=data.summary, latent_scale=data.scale, base_model=run.base[0],
                     base_steps=run.base[1], draft_size=int(req.model.draft_size or 0),
                     anchor=run.anchor.name if run.anchor else "", motion_weight=float(req.train.motion_weight),
                     engine_version=__version__, **drawing)
    save_model_folder(run.dir / "model", ema_model, data.vae, card)
