"""The RDTF training loop (docs/architecture.md §4): DFGN from scratch with dual masks and the difficulty-adaptive
curriculum, on accelerate (fp32 on CPU, bf16 autocast on CUDA, DDP under ``accelerate launch``).

Every random choice goes through generators whose states are checkpointed (python ``random`` for tasks,
k and masks; a torch generator for noise and timesteps; the curriculum's own RNG), so ``--resume`` continues
exactly where the run stopped. A run folder holds::

    train_config.json   the TrainRequest (resume re-reads it)
    autoencoder/        the RGBA autoencoder trained for this run (or copied from --autoencoder)
    checkpoints/        atomic safetensors checkpoints (checkpoint.py)
    model/              the EMA model exported at each checkpoint: usable by `rdtf generate --model RUN`
    samples/            preview grids;  metrics.jsonl: one line per logged step;  done.json when finished
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import torch

from rdtf_engine import __version__
from rdtf_engine.core.config import CurriculumConfig, DiffusionConfig, ModelCard, TextConfig, reference_mode
from rdtf_engine.core.device import resolve_device
from rdtf_engine.core.errors import Cancelled, InputError, TrainingError
from rdtf_engine.core.events import Log, Metrics, Progress, never_stop, null_event
from rdtf_engine.core.requests import TrainRequest, from_dict, to_dict
from rdtf_engine.training.batching import make_batch
from rdtf_engine.training.checkpoint import latest_checkpoint, load_checkpoint, optimizer_from_tensors, save_checkpoint
from rdtf_engine.training.curriculum import Curriculum
from rdtf_engine.training.heldout_loss import validation_loss
from rdtf_engine.training.masks import masked_mse
from rdtf_engine.training.run_folder import run_folder
from rdtf_engine.training.setup import (
    base_of,
    curriculum_span,
    init_weights,
    prepare_data,
    warmup_steps,
    write_json_atomic,
)

LOG_EVERY = 10
MAX_BAD_STEPS = 20


def train(req: TrainRequest, on_event=null_event, should_stop=never_stop) -> dict[str, Any]:
    """Run (or resume) a training run with the run folder locked for its whole life (run_folder.py)."""
    run_dir = Path(req.out).expanduser()
    if not req.resume:
        req.validate()  # before the folder is touched: a bad request leaves nothing behind
    main = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 holds the lock

    def cleaned(names: list[str]) -> None:
        on_event(Log("info", f"removed {len(names)} temp file(s) a stopped run left behind: {', '.join(names)}"))

    with run_folder(run_dir, on_clean=cleaned, main_process=main):
        return _train_locked(req, run_dir, on_event, should_stop)


def _train_locked(req: TrainRequest, run_dir: Path, on_event, should_stop) -> dict[str, Any]:
    req = _effective_request(req, run_dir)
    req.validate()
    from accelerate import Accelerator
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    from rdtf_engine.diffusion.schedule import training_scheduler
    from rdtf_engine.model.dfgn import build_dfgn, count_parameters
    from rdtf_engine.model.text import get_text_encoder

    device, mp = resolve_device(req.device, req.mixed_precision)
    from datetime import timedelta

    from accelerate.utils import InitProcessGroupKwargs

    # Multi-GPU: `torchrun --nproc_per_node N -m rdtf_engine train …` (DDP). Building the latent cache can take
    # many minutes on the main process while the others wait at a barrier: the default 10-minute timeout is short.
    # No torch.compile: on torch 2.11 + H200 it fails for this model (docs/results.md, round 5).
    accelerator = Accelerator(mixed_precision=mp, cpu=device.type == "cpu",
                              kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(hours=2))])
    device = accelerator.device
    multi = accelerator.num_processes > 1
    if not accelerator.is_main_process:
        on_event = null_event  # one process reports; the others would print every line again
    run_dir.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        write_json_atomic(run_dir / "train_config.json", to_dict(req))
    seed = req.seed + accelerator.process_index
    torch.manual_seed(seed)

    with accelerator.main_process_first():  # the main process trains the autoencoder / saves the cache first;
        data = prepare_data(req, run_dir, device, on_event, should_stop)  # the others then load them
    text_cfg = TextConfig()
    text = get_text_encoder(text_cfg, device)
    model = build_dfgn(req.preset, temporal=req.temporal, num_frames=req.num_frames,
                       reference_attention=req.reference_attention).to(device)
    if req.init_from and not (req.resume and latest_checkpoint(run_dir) is not None):
        on_event(Log("info", init_weights(model, req, device)))  # before the EMA copies the weights
    base = base_of(req, run_dir)
    n_params = count_parameters(model)
    on_event(Log("info", f"DFGN preset {req.preset} ({req.temporal}): {n_params / 1e6:.2f} M parameters on {device}"))
    cuda = device.type == "cuda"  # fused/foreach kernels: hundreds of small tensors per step otherwise
    optimizer = torch.optim.AdamW(model.parameters(), lr=req.lr, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8,
                                  fused=cuda)
    warmup = warmup_steps(req.steps, fine_tune=bool(req.init_from))
    lr_sched = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=warmup)
    ema = EMAModel(model.parameters(), decay=req.ema_decay, use_ema_warmup=True, power=2 / 3, foreach=cuda)
    offset, horizon = curriculum_span(req, base[1])
    curriculum = Curriculum(CurriculumConfig(mode=req.curriculum, horizon=horizon), seed=seed)
    noise_sched = training_scheduler(DiffusionConfig())
    rng = random.Random(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)

    step, history = 0, []
    ck = latest_checkpoint(run_dir) if req.resume else None
    if ck is not None:
        m, e, o, st = load_checkpoint(ck)
        model.load_state_dict(m)
        ema.shadow_params = [e[n].to(device) for n, _ in model.named_parameters()]
        ema.optimization_step = int(st["ema_steps"])
        optimizer_from_tensors(optimizer, o, st["optimizer"])
        lr_sched.load_state_dict(st["lr_sched"])
        curriculum.load_state_dict(st["curriculum"])
        rng.setstate(_tuplify(st["rng"]))
        gen.set_state(torch.tensor(st["torch_rng"], dtype=torch.uint8))
        step, history = int(st["step"]), list(st.get("history", []))
        if accelerator.process_index > 0:  # only the main process's RNG states are saved: give the others their
            rng.seed(seed * 1_000_003 + step)  # own streams again (a multi-GPU resume is not bit-exact)
            gen.manual_seed(seed * 1_000_003 + step)
        on_event(Log("info", f"resumed from {ck.name} at step {step}"))
    model, optimizer = accelerator.prepare(model, optimizer)
    raw_model = accelerator.unwrap_model(model)

    def checkpoint(reason: str) -> None:
        if not accelerator.is_main_process:
            return
        state = {"ema_steps": ema.optimization_step, "lr_sched": lr_sched.state_dict(),
                 "curriculum": curriculum.state_dict(), "rng": _listify(rng.getstate()),
                 "torch_rng": gen.get_state().tolist(), "history": history[-5000:], "reason": reason,
                 "config": to_dict(req)}
        ema_state = {n: p.detach() for (n, _), p in zip(raw_model.named_parameters(), ema.shadow_params)}
        save_checkpoint(run_dir, step, raw_model, ema_state, optimizer, state)
        _export_model(run_dir, raw_model, ema, data, req, step, history, base)
        on_event(Log("info", f"checkpoint at step {step} ({reason})"))

    val_every = max(LOG_EVERY, req.checkpoint_every)
    # per-step wall time by phase (metrics "ms"): data, text encoder, forward+backward (+ DDP all-reduce), the
    # update (clip, AdamW, EMA, curriculum all-reduce) and the stop-flag all-reduce that starts each step
    timing = dict.fromkeys(("batch", "text", "model", "update", "sync"), 0.0)
    t_start, step_at_start, bad, window = time.time(), step, 0, []
    train_ids, cache = data.train_ids, data.cache
    on_event(Progress("train", step, req.steps, "starting"))
    if step == 0:  # the starting point of the held-out loss curve
        _validate(raw_model, ema, data, text, noise_sched, req, 0, on_event, run_dir, accelerator)
    stopped, reason = False, "finished"
    model.train()
    while step < req.steps:
        t_sync = time.perf_counter()
        flags = [float(should_stop()), float(bool(req.max_minutes) and time.time() - t_start > req.max_minutes * 60)]
        if multi:  # every process must leave the loop at the same step, or the others hang in the next all-reduce
            flags = accelerator.reduce(torch.tensor(flags, device=device), "sum").tolist()
        if flags[0] or flags[1]:
            stopped, reason = True, "stopped" if flags[0] else "time limit"
            break
        timing["sync"] += time.perf_counter() - t_sync
        weights, task_counts, loss_sum, signal_sum = None, {}, 0.0, 0.0
        for _ in range(req.grad_accum):
            ids = [train_ids[rng.randrange(len(train_ids))] for _ in range(req.batch_size)]

            def pick(r: random.Random, at: int = offset + step) -> str:  # bound now: called within this step
                nonlocal weights
                task, weights = curriculum.next_task(at)
                return task

            t0 = time.perf_counter()
            b = make_batch(cache, ids, rng, req.num_frames, req.dual_mask, pick,
                           text_cfg.word_dropout, text_cfg.uncond_prob)
            t1 = time.perf_counter()
            states, tmask = text.encode(b.captions)
            t2 = time.perf_counter()
            noise = torch.randn(b.z0.shape, generator=gen).to(device)
            t = torch.randint(0, noise_sched.config.num_train_timesteps, (b.z0.shape[0],), generator=gen).to(device)
            noisy = noise_sched.add_noise(b.z0, noise, t)
            with accelerator.autocast():
                eps = model(noisy, t, states, b.cond, frame_mask=b.valid > 0, text_mask=tmask)
            loss = masked_mse(eps.float(), noise, b.valid)
            if not torch.isfinite(loss) and not multi:  # under DDP the NaN reaches every process's gradient
                break  # through the all-reduce instead, so they all skip the update together
            accelerator.backward(loss / req.grad_accum)
            loss_sum += float(loss.detach()) / req.grad_accum
            # The curriculum sees the per-valid-frame loss: the paper's all-element mean also swings with the
            # random key-frame count k (3…8), which would look like "easy data" for short clips (curriculum.md).
            signal_sum += float(masked_mse(eps.detach().float(), noise, b.valid, renormalize=True)) / req.grad_accum
            for task in b.tasks:
                task_counts[task] = task_counts.get(task, 0) + 1
            # Where a step's wall time goes (float(loss) above synchronises, so "model" is the GPU's real time):
            # tells a data-bound run from a launch-bound or compute-bound one (metrics "ms").
            timing["batch"] += t1 - t0
            timing["text"] += t2 - t1
            timing["model"] += time.perf_counter() - t2
        else:
            t_update = time.perf_counter()
            grad_norm = accelerator.clip_grad_norm_(model.parameters(), 1.0)
            if torch.isfinite(torch.as_tensor(grad_norm)):
                optimizer.step()
                lr_sched.step()
                optimizer.zero_grad(set_to_none=True)
                ema.step(raw_model.parameters())
                if multi:  # one curriculum signal for all processes: the mean difficulty of the global batch
                    signal_sum = float(accelerator.reduce(torch.tensor(signal_sum, device=device), "mean"))
                curriculum.observe(signal_sum)
                timing["update"] += time.perf_counter() - t_update
                history.append(loss_sum)
                window.append(loss_sum)
                step += 1
                bad = 0
                _after_step(step, req, on_event, window, t_start, step_at_start, lr_sched, curriculum, weights,
                            task_counts, run_dir, accelerator, timing)
                if step % LOG_EVERY == 0 or step == req.steps:  # the window _after_step just logged: a resume at
                    window = []  # a step that is not a multiple of LOG_EVERY must not shift it off the log steps
                if step % val_every == 0 or step == req.steps:
                    _validate(raw_model, ema, data, text, noise_sched, req, step, on_event, run_dir, accelerator)
                if step % req.checkpoint_every == 0 and step < req.steps:
                    checkpoint("periodic")
                if req.sample_every and step % req.sample_every == 0 and accelerator.is_main_process:
                    _sample_preview(raw_model, ema, data, req, step, on_event, run_dir)
                continue
        # Non-finite loss or gradient: skip the update, never let NaN reach the weights or a checkpoint.
        optimizer.zero_grad(set_to_none=True)
        bad += 1
        on_event(Log("warning", f"non-finite loss/gradient at step {step}: update skipped ({bad} in a row)"))
        if bad >= MAX_BAD_STEPS:
            checkpoint("non-finite")
            raise TrainingError(f"training diverged: {bad} non-finite steps in a row at step {step}; "
                                f"resume with a lower learning rate (now {req.lr})")
    checkpoint(reason)
    accelerator.wait_for_everyone()
    result = {"run_dir": str(run_dir), "model_dir": str(run_dir / "model"), "step": step,
              "final_loss": (sum(history[-50:]) / len(history[-50:])) if history else None,
              "stopped": stopped, "reason": reason, "params": n_params}
    if not stopped and accelerator.is_main_process:
        write_json_atomic(run_dir / "done.json", result)
    if stopped and reason == "stopped":
        on_event(Log("info", f"stopped at step {step}; continue with --resume"))
    return result


def _effective_request(req: TrainRequest, run_dir: Path) -> TrainRequest:
    """On --resume the run's saved config wins (same data, model, seed), except steps/max_minutes/device."""
    cfg = run_dir / "train_config.json"
    if req.resume:
        if not cfg.is_file():
            raise InputError(f"nothing to resume in {run_dir} (no train_config.json)")
        saved = from_dict(TrainRequest, json.loads(cfg.read_text("utf-8")))
        # steps 0 = keep the run's own target (the CLI's --resume without --steps)
        return dataclasses.replace(saved, resume=True, steps=req.steps or saved.steps,
                                   max_minutes=req.max_minutes,
                                   device=req.device, sample_every=req.sample_every or saved.sample_every)
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise InputError(f"{run_dir} already holds a training run; pass --resume to continue it or pick a new --out")
    if req.reference_attention is None:  # decided once here and saved, so a resume never depends on the base model
        from rdtf_engine.training.setup import base_reference_attention

        return dataclasses.replace(req, reference_attention=base_reference_attention(req))
    return dataclasses.replace(req, reference_attention=reference_mode(req.reference_attention))


def _after_step(step, req, on_event, window, t_start, step_at_start, lr_sched, curriculum, weights, task_counts,
                run_dir, accelerator, timing) -> None:
    if step % LOG_EVERY and step != req.steps:
        return
    ms = {k: round(v * 1000 / max(len(window), 1), 2) for k, v in timing.items()}  # per step, this window
    timing.update(dict.fromkeys(timing, 0.0))
    elapsed = max(time.time() - t_start, 1e-6)
    rate = (step - step_at_start) / elapsed  # since start/resume, so ETA is honest after a resume
    vals = {"loss": sum(window) / max(len(window), 1), "lr": lr_sched.get_last_lr()[0], "steps_per_s": rate,
            "eta_s": (req.steps - step) / max(rate, 1e-9), "tasks": task_counts,
            "weights": {k: round(v, 4) for k, v in (weights or {}).items()},
            "bucket": curriculum.state.bucket, "curriculum": req.curriculum, "ms": ms,
            "elapsed_s": round(elapsed, 2)}  # since start/resume: the steady rate between two rows
    if torch.cuda.is_available():
        vals["gpu_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20
    on_event(Metrics(step, vals))
    on_event(Progress("train", step, req.steps))
    if accelerator.is_main_process:
        with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"step": step, **vals}) + "\n")


def _validate(model, ema, data, text, noise_sched, req, step, on_event, run_dir, accelerator) -> None:
    if not data.val_ids or not accelerator.is_main_process:
        return
    ema.store(model.parameters())
    ema.copy_to(model.parameters())
    try:
        per_task = validation_loss(model, data.cache, data.val_ids, text, noise_sched, req.num_frames,
                                   req.dual_mask, seed=1234)
    finally:
        ema.restore(model.parameters())
        model.train()
    on_event(Metrics(step, {"val_loss": per_task["all"], "val": per_task}))
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": step, "val": per_task}) + "\n")


def _export_model(run_dir, model, ema, data, req, step, history, base=("", 0)) -> None:
    """Write the EMA weights as a complete model folder (run_dir/model) usable by generate."""
    import copy

    from rdtf_engine.model.store import save_model_folder

    ema_model = copy.deepcopy(model).eval()
    ema.copy_to(ema_model.parameters())
    card = ModelCard(name=run_dir.name, preset=req.preset, size=req.size, num_frames=req.num_frames,
                     temporal=req.temporal, dual_mask=req.dual_mask, curriculum=req.curriculum, steps=step,
                     data=req.data, data_summary=data.summary, latent_scale=data.scale,
                     base_model=base[0], base_steps=base[1], engine_version=__version__)
    save_model_folder(run_dir / "model", ema_model, data.vae, card)


def _sample_preview(model, ema, data, req, step, on_event, run_dir) -> None:
    from rdtf_engine.diffusion.pipeline import sample_grid

    ema.store(model.parameters())
    ema.copy_to(model.parameters())
    try:
        path = sample_grid(model, data.vae, data.scale, data.cache, data.val_ids or data.train_ids, req,
                           run_dir / "samples" / f"step_{step:07d}.png")
    finally:
        ema.restore(model.parameters())
        model.train()
    from rdtf_engine.core.events import Preview

    on_event(Preview(step, [str(path)], "samples (EMA weights)"))


def _listify(x):
    return [_listify(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x


__all__ = ["Cancelled", "train"]
