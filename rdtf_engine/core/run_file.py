"""The run file: one ``run.json`` per training run, holding its ``TrainRequest`` (``to_dict``'s nested form).

The app writes it when it starts a run, the engine rewrites it once the request is resolved (a fine-tune's
architecture taken from its base model), and both read it back: the engine on ``--resume`` (the saved request
wins, see ``training.run_setup``), the app to offer unfinished runs. Runs made before this file existed keep
working: their ``train_config.json`` (engine) or ``studio_request.json`` (app) is read instead.

Checkpoints live in ``checkpoints/step_NNNNNNN/`` (``training.checkpoint`` writes them atomically, ``state.json``
last) with a ``checkpoints/latest`` pointer. Which one a resume starts from is decided here, without torch, so the
app offers to resume exactly the runs, and from exactly the step, that the engine will resume.
"""

from __future__ import annotations

import json
from pathlib import Path

from rdtf_engine.core.atomic import write_text_atomic
from rdtf_engine.core.requests import TrainRequest, to_dict

RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
CHECKPOINT_PREFIX = "step_"  # checkpoints/step_0000100/
LEGACY_RUN_FILES = ("train_config.json", "studio_request.json")  # flat requests of older engines / apps


def write_run_file(run_dir: str | Path, req: TrainRequest) -> Path:
    return write_text_atomic(Path(run_dir) / RUN_FILE, json.dumps(to_dict(req), indent=1))


def read_run_file(run_dir: str | Path) -> TrainRequest | None:
    """The run's request, from run.json or a legacy file; None if there is none or it is unreadable."""
    for name in (RUN_FILE, *LEGACY_RUN_FILES):
        try:
            data = json.loads((Path(run_dir) / name).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            try:
                return TrainRequest.from_dict(data)
            except (TypeError, ValueError):  # a hand-edited file with a wrong type: as good as none
                continue
    return None


def checkpoint_name(step: int) -> str:
    return f"{CHECKPOINT_PREFIX}{int(step):07d}"


def checkpoint_folders(run_dir: str | Path) -> list[Path]:
    """Every checkpoint folder of the run, complete or not, oldest first."""
    ck_root = Path(run_dir) / CHECKPOINTS
    return sorted(p for p in ck_root.glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir()) if ck_root.is_dir() else []


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The complete checkpoint a resume starts from (its folder holds ``state.json``), or None."""
    ck_root = Path(run_dir) / CHECKPOINTS
    ptr = ck_root / "latest"
    if ptr.is_file():
        try:
            p = ck_root / ptr.read_text("utf-8").strip()
        except (OSError, ValueError):
            p = None
        if p is not None and p.parent == ck_root and (p / "state.json").is_file():
            return p
    # Pointer missing or stale (e.g. killed between rename and pointer update): newest complete folder.
    complete = [p for p in checkpoint_folders(run_dir) if (p / "state.json").is_file()]
    return complete[-1] if complete else None


def resumable_step(run_dir: str | Path) -> int | None:
    """The step a resume of this run starts at (its latest complete checkpoint's), or None when it has none."""
    ck = latest_checkpoint(run_dir)
    if ck is None:
        return None
    try:
        return int(ck.name.removeprefix(CHECKPOINT_PREFIX))
    except ValueError:
        return None
