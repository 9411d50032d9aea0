"""The RDTF training loop (docs/architecture.md §4): DFGN from scratch or fine-tuned, with dual masks and the
difficulty-adaptive curriculum, on accelerate (fp32 on CPU, bf16 autocast on CUDA, DDP under ``torchrun``).

``train`` = set-up (``run_setup.open_run``) → steps (``train_step``) → after each step (``after_step``: metrics,
held-out loss, checkpoint, samples) → the final checkpoint. Every random choice goes through generators whose
states are checkpointed per process (state.py), so ``--resume`` continues exactly where the run stopped. A run
folder holds::

    run.json            the TrainRequest (resume re-reads it; runs of older versions: train_config.json)
    autoencoder/        the RGBA autoencoder trained for this run (or copied from --autoencoder)
    checkpoints/        atomic safetensors checkpoints (checkpoint.py)
    model/              the EMA model exported at each checkpoint: usable by `rdtf generate --model RUN`
    samples/            preview grids;  metrics.jsonl: one line per logged step;  done.json when finished
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

import torch

from rdtf_engine.core.config import TextConfig
from rdtf_engine.core.errors import Cancelled, TrainingError
from rdtf_engine.core.events import Log, Progress, never_stop, null_event
from rdtf_engine.core.requests import TrainRequest
from rdtf_engine.training.batching import make_batch
from rdtf_engine.training.masks import masked_motion_mse, masked_mse
from rdtf_engine.training.reporting import StepReport, validate, write_json_atomic
from rdtf_engine.training.run_folder import run_folder
from rdtf_engine.training.run_setup import Run, open_run

MAX_BAD_STEPS = 20


def train(req: TrainRequest, on_event=null_event, should_stop=never_stop) -> dict[str, Any]:
    """Run (or resume) a training run with the run folder locked for its whole life (run_folder.py)."""
    run_dir = Path(req.run.out).expanduser()
    if not req.run.resume:
        req.validate()  # before the folder is touched: a bad request leaves nothing behind
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 holds the lock

    def cleaned(names: list[str]) -> None:
        on_event(Log("info", f"removed {len(names)} temp file(s) a stopped run left behind: {', '.join(names)}"))

    with run_folder(run_dir, on_clean=cleaned, main_process=main):
        return _train_locked(req, on_event, should_stop)


def _train_locked(req: TrainRequest, on_event, should_stop) -> dict[str, Any]:
    run = open_run(req, on_event, should_stop)
    req, st, acc = run.req, run.state, run.accelerator
    report = StepReport(run, st.step)
    on_event = run.on_event
    on_event(Progress("train", st.step, req.train.steps, "starting"))
    if st.step == 0:  # the starting point of the held-out loss curve
        validate(run, 0)
    stopped, reason, bad = False, "finished", 0
    st.model.train()
    while st.step < req.train.steps:
        reason = _stop_reason(run, should_stop, report)
        if reason:
            stopped = True
            break
        out = train_step(run, report)
        if out is not None:
            bad = 0
            report.after_step(*out)
            continue
        # Non-finite loss or gradient: skip the update, never let NaN reach the weights or a checkpoint.
        st.optimizer.zero_grad(set_to_none=True)
        bad += 1
        on_event(Log("warning", f"non-finite loss/gradient at step {st.step}: update skipped ({bad} in a row)"))
        if bad >= MAX_BAD_STEPS:
            run.checkpoint("non-finite")
            raise TrainingError(f"training diverged: {bad} non-finite steps in a row at step {st.step}; "
                                f"resume with a lower learning rate (now {req.train.lr})")
    reason = reason or "finished"
    run.checkpoint(reason)
    acc.wait_for_everyone()
    hist = st.history
    result = {"run_dir": str(run.dir), "model_dir": str(run.dir / "model"), "step": st.step,
              "final_loss": (sum(hist[-50:]) / len(hist[-50:])) if hist else None,
              "stopped": stopped, "reason": reason, "params": run.n_params}
    if not stopped and acc.is_main_process:
        write_json_atomic(run.dir / "done.json", result)
    if stopped and reason == "stopped":
        on_event(Log("info", f"stopped at step {st.step}; continue with --resume"))
    return result


def _stop_reason(run: Run, should_stop, report: StepReport) -> str:
    """"stopped" / "time limit" / "" (go on). Under DDP every process must leave the loop at the same step, or
    the others hang in the next all-reduce: the flags are summed over processes."""
    t0 = time.perf_counter()
    limit = run.req.run.max_minutes
    flags = [float(should_stop()), float(bool(limit) and time.time() - report.t_start > limit * 60)]
    if run.accelerator.num_processes > 1:
        flags = run.accelerator.reduce(torch.tensor(flags, device=run.device), "sum").tolist()
    report.timing["sync"] += time.perf_counter() - t0
    return "stopped" if flags[0] else "time limit" if flags[1] else ""


def train_step(run: Run, report: StepReport):
    """One optimiser step over ``grad_accum`` micro-batches → (loss, curriculum weights, task counts), or None
    when the loss or the gradient was not finite (the caller skips the update)."""
    req, st, acc, timing = run.req, run.state, run.accelerator, report.timing
    multi = acc.num_processes > 1
    weights, task_counts, loss_sum, signal_sum = None, {}, 0.0, 0.0
    accum = req.train.grad_accum
    t_data = time.perf_counter()
    run.data.at_step(st.step)  # streamed data: this step's window of shards (a wait for it counts as "batch")
    timing["batch"] += time.perf_counter() - t_data
    distil = req.train.objective == "consistency"  # the few-step deltas learn from the network (consistency.py)
    # distillation keeps every caption whole: the student learns the guided drawing of the caption as written
    word_dropout = (0.0 if distil else TextConfig.word_dropout) if req.train.word_dropout is None \
        else float(req.train.word_dropout)
    for _ in range(accum):
        ids = [run.data.train_ids[st.rng.randrange(len(run.data.train_ids))] for _ in range(req.train.batch_size)]

        def pick(r: random.Random, at: int = st.offset + st.step) -> str:  # bound now: called within this step
            nonlocal weights
            task, weights = st.curriculum.next_task(at)
            return task

        t0 = time.perf_counter()
        b = make_batch(run.data.cache, ids, st.rng, req.model.num_frames, req.train.dual_mask, pick,
                       word_dropout, 0.0 if distil else TextConfig.uncond_prob)
        t1 = time.perf_counter()
        states, tmask = run.text.encode(b.captions)
        t2 = time.perf_counter()
        # z0, noise, noisy: (B, 4, F, h, w); t: (B,)
        noise = torch.randn(b.z0.shape, generator=st.gen).to(run.device)
        if distil:
            loss = run.distiller.loss(b, states, tmask, noise, st.gen, acc.autocast, st.model)
            signal = loss.detach()  # the curriculum's difficulty: the distillation loss itself
        else:
            loss, signal = _noise_loss(run, report, b, ids, states, tmask, noise, st.gen)
        if not torch.isfinite(loss) and not multi:  # under DDP the NaN reaches every process's gradient
            return None  # through the all-reduce instead, so they all skip the update together
        acc.backward(loss / accum)
        loss_sum += float(loss.detach()) / accum
        signal_sum += float(signal) / accum
        for task in b.tasks:
            task_counts[task] = task_counts.get(task, 0) + 1
        # Where a step's wall time goes (float(loss) above synchronises, so "model" is the GPU's real time):
        # tells a data-bound run from a launch-bound or compute-bound one (metrics "ms").
        timing["batch"] += t1 - t0
        timing["text"] += t2 - t1
        timing["model"] += time.perf_counter() - t2
    t_update = time.perf_counter()
    grad_norm = acc.clip_grad_norm_([p for p in st.model.parameters() if p.requires_grad], 1.0)
    if not torch.isfinite(torch.as_tensor(grad_norm)):
        return None
    st.optimizer.step()
    st.lr_sched.step()
    st.optimizer.zero_grad(set_to_none=True)
    st.ema.step(st.raw_model.parameters())
    if multi:  # one curriculum signal for all processes: the mean difficulty of the global batch
        signal_sum = float(acc.reduce(torch.tensor(signal_sum, device=run.device), "mean"))
    st.curriculum.observe(signal_sum)
    timing["update"] += time.perf_counter() - t_update
    st.history.append(loss_sum)
    st.step += 1
    return loss_sum, weights, task_counts


def _noise_loss(run: Run, report: StepReport, b, ids, states, tmask, noise, gen) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's ε-prediction loss of one micro-batch (+ the anchor's and the motion term where set) → (loss,
    the curriculum's difficulty signal). b.z0, noise (B, 4, F, h, w)."""
    req, st, acc = run.req, run.state, run.accelerator
    accum = req.train.grad_accum
    t = torch.randint(0, run.noise_sched.config.num_train_timesteps, (b.z0.shape[0],), generator=gen)
    noisy = run.noise_sched.add_noise(b.z0, noise, t.to(run.device))
    inputs = {"sample": noisy, "timestep": t.to(run.device), "encoder_hidden_states": states,
              "cond_latents": b.cond, "frame_mask": b.valid > 0, "text_mask": tmask}
    with acc.autocast():
        eps = st.model(**inputs)
    loss = masked_mse(eps.float(), noise, b.valid)
    if run.anchor is not None and run.anchor.applies(b.z0):  # a batch at the anchor's own size
        held = run.anchor.loss(eps, inputs, b.valid, run.anchor.rows(run.data.cache.labels, ids), acc.autocast)
        if held is not None:
            report.extra["anchor_loss"] = report.extra.get("anchor_loss", 0.0) + float(held.detach()) / accum
            loss = loss + held
    if req.train.motion_weight:  # the motion the plain MSE under-weighs (masks.masked_motion_mse)
        moved = req.train.motion_weight * masked_motion_mse(eps.float(), noise, b.valid)
        report.extra["motion_loss"] = report.extra.get("motion_loss", 0.0) + float(moved.detach()) / accum
        loss = loss + moved
    # The curriculum sees the per-valid-frame loss: the paper's all-element mean also swings with the random
    # key-frame count k (3…8), which would look like "easy data" for short clips (curriculum.md).
    return loss, masked_mse(eps.detach().float(), noise, b.valid, renormalize=True)


__all__ = ["Cancelled", "train", "train_step"]
