"""Opening a training run: the effective request (a resume's saved one wins), accelerate, data, text encoder,
model, optimiser and the rest of the ``TrainState`` (fresh, or restored from the newest checkpoint)."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch

from rdtf_engine.core.config import CurriculumConfig, DiffusionConfig, TextConfig
from rdtf_engine.core.device import resolve_device
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Log, null_event
from rdtf_engine.core.requests import TrainRequest
from rdtf_engine.core.run_file import latest_checkpoint, read_run_file, write_run_file
from rdtf_engine.training.checkpoint import load_checkpoint, optimizer_from_tensors, save_checkpoint
from rdtf_engine.training.curriculum import Curriculum
from rdtf_engine.training.data_prep import TrainData, prepare_data
from rdtf_engine.training.finetune import (
    apply_trainable,
    base_of,
    drawing_of,
    init_weights,
    resolve_architecture,
)
from rdtf_engine.training.reporting import export_model
from rdtf_engine.training.state import (
    TrainState,
    checkpoint_state,
    curriculum_span,
    gather_rng_states,
    restore_rng,
    warmup_steps,
)


@dataclass
class Run:
    """Everything a run's steps need that does not change from step to step, plus its ``TrainState``."""

    req: TrainRequest
    dir: Path
    accelerator: Any
    device: torch.device
    data: TrainData
    text: Any  # the text encoder (model/text.py)
    noise_sched: Any  # diffusers DDPMScheduler of DiffusionConfig
    state: TrainState
    on_event: Any
    n_params: int
    base: tuple[str, int]  # (base model name, its steps) of a fine-tune
    anchor: Any = None  # training/anchor.py's Anchor (TrainConfig.anchor), or None
    drawing: dict = dataclasses.field(default_factory=dict)  # card fields a fine-tune keeps (finetune.drawing_of)
    distiller: Any = None  # training/consistency.py's Distiller for a consistency-distillation run, else None

    def checkpoint(self, reason: str) -> None:
        """Every process hands in its random state; the main process writes the checkpoint and the model."""
        ranks = gather_rng_states(self.state, self.accelerator)
        if not self.accelerator.is_main_process:
            return
        st = self.state
        ema_state = {n: p.detach() for (n, _), p in zip(st.raw_model.named_parameters(), st.ema.shadow_params)}
        save_checkpoint(self.dir, st.step, st.raw_model, ema_state, st.optimizer,
                        checkpoint_state(st, self.req, reason, ranks))
        export_model(self)
        self.on_event(Log("info", f"checkpoint at step {st.step} ({reason})"))


def effective_request(req: TrainRequest, run_dir: Path) -> TrainRequest:
    """On resume the run's saved request wins (same data, model, seed), except steps / max_minutes / device /
    sample_every; a new run gets its architecture resolved once (a fine-tune's from its base model)."""
    if req.run.resume:
        saved = read_run_file(run_dir)
        if saved is None:
            raise InputError(f"nothing to resume in {run_dir} (no run.json)")
        # steps 0 = keep the run's own target (the CLI's --resume without --steps)
        train = dataclasses.replace(saved.train, steps=req.train.steps or saved.train.steps)
        run = dataclasses.replace(saved.run, resume=True, out=str(run_dir), max_minutes=req.run.max_minutes,
                                  device=req.run.device, sample_every=req.run.sample_every or saved.run.sample_every)
        return dataclasses.replace(saved, model=saved.model.resolved(), train=train, run=run)
    if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()):
        raise InputError(f"{run_dir} already holds a training run; pass --resume to continue it or pick a new --out")
    return resolve_architecture(req)


def make_accelerator(req: TrainRequest):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs

    device, mp = resolve_device(req.run.device, req.run.mixed_precision)
    # Multi-GPU: `torchrun --nproc_per_node N -m rdtf_engine train …` (DDP). Building the latent cache can take
    # many minutes on the main process while the others wait at a barrier: the default 10-minute timeout is short.
    # No torch.compile: on torch 2.11 + H200 it fails for this model (docs/results.md, round 5).
    handlers = [InitProcessGroupKwargs(timeout=timedelta(hours=2))]
    m = req.model
    if ((m.size_delta_rank and m.draft_size or m.style_delta_rank) and req.train.trainable not in ("deltas", "style")
            and not req.train.draft_only):
        # the size deltas sit out the draft-size steps, the style deltas (switched off) every step: DDP must not
        # wait for their gradients there
        handlers.append(DistributedDataParallelKwargs(find_unused_parameters=True))
    return Accelerator(mixed_precision=mp, cpu=device.type == "cpu", kwargs_handlers=handlers)


def open_run(req: TrainRequest, on_event=null_event, should_stop=None) -> Run:
    from rdtf_engine.diffusion.schedule import training_scheduler
    from rdtf_engine.model.dfgn import build_dfgn, count_parameters
    from rdtf_engine.model.text import get_text_encoder

    run_dir = Path(req.run.out).expanduser()
    req = effective_request(req, run_dir)
    req.validate()
    acc = make_accelerator(req)
    device = acc.device
    if not acc.is_main_process:
        on_event = null_event  # one process reports; the others would print every line again
    run_dir.mkdir(parents=True, exist_ok=True)
    if acc.is_main_process:
        write_run_file(run_dir, req)
    seed = req.train.seed + acc.process_index
    torch.manual_seed(seed)
    with acc.main_process_first():  # the main process trains the autoencoder / saves the cache first;
        data = prepare_data(req, run_dir, device, on_event, should_stop)  # the others then load them
    text = get_text_encoder(TextConfig(), device)
    anchor = None
    if req.train.anchor:
        from rdtf_engine.training.anchor import load_anchor

        anchor = load_anchor(req.train.anchor, req.train.anchor_weight, data.vae, data.scale, device)
        on_event(Log("info", f"anchored to {anchor.name} (weight {anchor.weight:g}) on its own {anchor.latent_size} "
                             f"latent grid, for the clips of its sources ({', '.join(sorted(anchor.sources))})"))
    model = build_dfgn(req.model).to(device)
    ck = latest_checkpoint(run_dir) if req.run.resume else None
    if req.init_from and ck is None:
        on_event(Log("info", init_weights(model, req, device)))  # before the EMA copies the weights
    trainable = apply_trainable(model, req.train.trainable, keep_deltas=req.train.draft_only)
    if req.train.trainable == "style":
        from rdtf_engine.model.size_deltas import set_style

        set_style(model, True)  # every step is a styled prompt's draft (the EMA and held-out copies inherit it)
    n_params = count_parameters(model)
    frozen = f", {trainable / 1e6:.2f} M of them trained" if trainable < n_params else ""
    on_event(Log("info", f"DFGN preset {req.model.preset} ({req.model.temporal}): {n_params / 1e6:.2f} M "
                         f"parameters{frozen} on {device}"))
    base = base_of(req, run_dir)
    state = build_state(req, model, seed, base[1], device.type)
    if ck is not None:
        warn = resume_state(state, ck, acc.process_index, acc.num_processes)
        on_event(Log("info", f"resumed from {ck.name} at step {state.step}"))
        if warn:
            on_event(Log("warning", warn))
    state.model, state.optimizer = acc.prepare(state.model, state.optimizer)
    state.raw_model = acc.unwrap_model(state.model)
    noise_sched, drawing = training_scheduler(DiffusionConfig()), drawing_of(req, run_dir)
    distiller = None
    if req.train.objective == "consistency":
        from rdtf_engine.training.consistency import Distiller, teacher_scales

        scales = teacher_scales(req.train, drawing)
        distiller = Distiller(state.raw_model, text, noise_sched, scales, device)
        on_event(Log("info", f"distilling the network into its few-step deltas: the teacher guided at text "
                             f"{scales[0]:g}, image {scales[1]:g}; the student unguided"))
    return Run(req, run_dir, acc, device, data, text, noise_sched, state, on_event, n_params, base, anchor,
               drawing, distiller)


def build_state(req: TrainRequest, model, seed: int, base_steps: int, device_type: str) -> TrainState:
    from diffusers.optimization import get_scheduler
    from diffusers.training_utils import EMAModel

    # Fused AdamW on CUDA (hundreds of small tensors per step otherwise) and on the CPU, where the default
    # per-tensor loop took 43 ms of a ≈ 700 ms batch-2 step of the small model on 2 cores and the fused kernel
    # 13 ms (docs/performance.md): ≈ 5 % more steps in the CPU recipe's hour. MPS keeps the default.
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=req.train.lr, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8,
                                  fused=device_type in ("cuda", "cpu"))
    warmup = warmup_steps(req.train.steps, fine_tune=bool(req.init_from))
    lr_sched = get_scheduler("constant_with_warmup", optimizer, num_warmup_steps=warmup)
    ema = EMAModel(model.parameters(), decay=req.train.ema_decay, use_ema_warmup=True, power=2 / 3,
                   foreach=device_type == "cuda")
    offset, horizon = curriculum_span(req, base_steps)
    curriculum = Curriculum(CurriculumConfig(mode=req.train.curriculum, horizon=horizon), seed=seed)
    return TrainState(model=model, raw_model=model, ema=ema, optimizer=optimizer, lr_sched=lr_sched,
                      curriculum=curriculum, rng=random.Random(seed),
                      gen=torch.Generator(device="cpu").manual_seed(seed), seed=seed, offset=offset)


def resume_state(st: TrainState, ck: Path, rank: int, processes: int) -> str:
    """Load a checkpoint into a fresh state (before accelerate wraps it); → a warning line, or ""."""
    m, e, o, saved = load_checkpoint(ck)
    st.model.load_state_dict(m)
    device = next(st.model.parameters()).device
    st.ema.shadow_params = [e[n].to(device) for n, _ in st.model.named_parameters()]
    st.ema.optimization_step = int(saved["ema_steps"])
    optimizer_from_tensors(st.optimizer, o, saved["optimizer"])
    st.lr_sched.load_state_dict(saved["lr_sched"])
    st.step, st.history = int(saved["step"]), list(saved.get("history", []))
    return restore_rng(st, saved, rank, processes)
