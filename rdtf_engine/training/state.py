"""The state a training run carries from step to step (``TrainState``) and how it is checkpointed and restored.

Every random choice of a step goes through one of three generators per process: python ``random`` (clip
order, k, condition masks, caption dropout), a CPU torch generator (noise and timesteps) and the curriculum's
own ``random.Random`` (task draws). Each process seeds them with ``seed + rank``. A checkpoint stores the three
states of **every** process (``rank_rng``, JSON in state.json: python and curriculum states as int lists, the
torch state as its uint8 bytes), so a multi-process ``--resume`` with the same number of processes continues
exactly where each process stopped.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Any

import torch

from rdtf_engine.core.requests import TrainRequest
from rdtf_engine.training.curriculum import Curriculum

RESEED = 1_000_003  # a resume on a different number of processes reseeds with seed * RESEED + step


@dataclass
class TrainState:
    """Model, EMA, optimiser, LR schedule, curriculum, generators and counters of one process's run."""

    model: Any  # the DFGN (wrapped by accelerate.prepare under DDP)
    raw_model: Any  # the unwrapped DFGN: what checkpoints and the EMA see
    ema: Any  # diffusers EMAModel of raw_model's parameters
    optimizer: Any
    lr_sched: Any
    curriculum: Curriculum
    rng: random.Random
    gen: torch.Generator
    seed: int  # this process's seed: the run's seed + rank
    step: int = 0
    history: list[float] = field(default_factory=list)  # the loss of every step (checkpoints keep the last 5000)
    offset: int = 0  # the curriculum's step offset (a continued curriculum starts after the base's steps)


def warmup_steps(steps: int, fine_tune: bool = False) -> int:
    """Linear LR warm-up length: 10 % of the run, at most 500 steps from scratch. A fine-tune (``--init-from``)
    starts from trained weights and only needs Adam's moment estimates to settle: at most 100 steps, so short
    continuation chunks (a few thousand steps per GPU lease) spend little of their time at a reduced LR."""
    return min(100 if fine_tune else 500, max(1, int(steps) // 10))


def curriculum_span(req: TrainRequest, base_steps: int) -> tuple[int, int]:
    """(step offset, horizon) of a run's curriculum. A run starts its own schedule at "generation 0.1"
    (docs/method.md §5); a continuation of a model on the same data (``continue_curriculum``) takes its place on the base's
    schedule instead, after ``base_steps``, so it does not spend its first half on the easy tasks again."""
    if req.train.continue_curriculum:
        return int(base_steps), int(base_steps) + int(req.train.steps)
    return 0, int(req.train.steps)


# ---- per-process random state -------------------------------------------------------------------------
def rng_state(st: TrainState) -> dict[str, Any]:
    """This process's generators, JSON-able."""
    return {"python": _listify(st.rng.getstate()), "torch": st.gen.get_state().tolist(),
            "curriculum": st.curriculum.state_dict()}


def set_rng_state(st: TrainState, saved: dict[str, Any]) -> None:
    st.rng.setstate(_tuplify(saved["python"]))
    st.gen.set_state(torch.tensor(saved["torch"], dtype=torch.uint8))
    st.curriculum.load_state_dict(saved["curriculum"])


def gather_rng_states(st: TrainState, accelerator) -> list[dict[str, Any]]:
    """Every process's ``rng_state`` in rank order (a collective: all processes call it together). The states
    travel as UTF-8 JSON bytes in a padded uint8 tensor (gloo and NCCL both gather tensors)."""
    mine = rng_state(st)
    if accelerator.num_processes == 1:
        return [mine]
    raw = json.dumps(mine).encode("utf-8")
    device = accelerator.device
    sizes = accelerator.gather(torch.tensor([len(raw)], device=device)).tolist()
    buf = torch.zeros(max(sizes), dtype=torch.uint8, device=device)
    buf[: len(raw)] = torch.frombuffer(bytearray(raw), dtype=torch.uint8).to(device)
    rows = accelerator.gather(buf[None]).cpu()  # (processes, max bytes)
    return [json.loads(bytes(rows[i, :n].tolist()).decode("utf-8")) for i, n in enumerate(sizes)]


def restore_rng(st: TrainState, saved: dict[str, Any], rank: int, processes: int) -> str:
    """Set this process's generators from a checkpoint's state; → a log line when it could not be exact."""
    ranks = saved.get("rank_rng")
    if ranks and len(ranks) == processes:
        set_rng_state(st, ranks[rank])
        return ""
    # Checkpoints without per-process states (older runs) hold the main process's only; so does a resume on
    # another number of processes, where no saved stream fits. The main process takes rank 0's (or the old
    # single) state, the others fresh streams: the run goes on, not bit-exactly.
    if ranks:
        set_rng_state(st, ranks[0])
    else:
        st.rng.setstate(_tuplify(saved["rng"]))
        st.gen.set_state(torch.tensor(saved["torch_rng"], dtype=torch.uint8))
        st.curriculum.load_state_dict(saved["curriculum"])
    if rank > 0:
        st.rng.seed(st.seed * RESEED + st.step)
        st.gen.manual_seed(st.seed * RESEED + st.step)
        st.curriculum.rng.seed(st.seed * RESEED + st.step)
    if processes == 1 and not ranks:
        return ""
    return (f"the checkpoint holds {len(ranks) if ranks else 1} process(es)' random state, this run has "
            f"{processes}: the resume continues with fresh random streams, not bit-exactly")


def checkpoint_state(st: TrainState, req: TrainRequest, reason: str, rank_rng: list[dict[str, Any]]) -> dict:
    """The JSON part of a checkpoint (checkpoint.py writes it as state.json beside the tensors)."""
    from rdtf_engine.core.requests import to_dict

    main = rank_rng[0]
    return {"ema_steps": st.ema.optimization_step, "lr_sched": st.lr_sched.state_dict(),
            # rank 0's states also under the old keys, so an older engine can still resume the run
            "curriculum": main["curriculum"], "rng": main["python"], "torch_rng": main["torch"],
            "rank_rng": rank_rng, "history": st.history[-5000:], "reason": reason, "config": to_dict(req)}


def _listify(x):
    return [_listify(v) for v in x] if isinstance(x, (tuple, list)) else x


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x
