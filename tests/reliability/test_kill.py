"""kill -9 at a random moment of a checkpoint or an export: the previous output is intact (or absent), never torn,
and the next writer cleans the temp siblings the killed one left behind.

Each trial runs a tiny writer loop in a subprocess (a small model checkpointed over and over; a GIF and a frames
folder exported over and over, each iteration's content tagged with its number) and SIGKILLs it after a random
delay, so kills land in every phase: tensor files, state.json, the rename, the ``latest`` pointer, old-folder
clean-up. TRIALS is small to keep the suite fast; the random delays differ per run (seeded per trial).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import torch

TRIALS = 5

def checkpointer(run: Path, ready) -> None:
    """Child: checkpoint a small model over and over; every tensor of checkpoint N holds N."""
    from rdtf_engine.training.checkpoint import save_checkpoint

    torch.set_num_threads(1)
    model = torch.nn.Linear(64, 64)
    opt = torch.optim.AdamW(model.parameters())
    ready.set()
    step = 0
    while True:
        step += 1
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(float(step))
        ema = {n: p.detach().clone() for n, p in model.named_parameters()}
        save_checkpoint(run, step, model, ema, opt, {"tag": step})


def exporter(out: Path, ready) -> None:
    """Child: export a GIF and a frames folder over and over; every frame of iteration i has red = i."""
    from rdtf_engine.core.clip import Clip
    from rdtf_engine.platforms.export import write_clip

    ready.set()
    i = 0
    while True:
        i += 1
        frames = np.zeros((6, 48, 48, 4), np.uint8)
        frames[..., 3] = 255
        frames[..., 0] = i % 250
        frames[..., 1] = (np.arange(6) * 40)[:, None, None]  # distinct frames: the GIF encoder keeps all six
        clip = Clip(frames, [100] * 6, "kill test")
        write_clip(clip, out / "sticker.gif", recipe={"i": i})
        write_clip(clip, out / "frames")


_CTX = None


def _context():
    """A forkserver that has imported torch and the engine once: each trial's writer starts in milliseconds
    instead of re-importing torch (a fresh interpreter per trial costs ~10 s on a loaded 2-core machine)."""
    global _CTX
    if _CTX is None:
        _CTX = multiprocessing.get_context("forkserver")
        _CTX.set_forkserver_preload(["torch", "numpy", "rdtf_engine.training.checkpoint",
                                     "rdtf_engine.platforms.export"])
    return _CTX


def _run_and_kill(target_fn, path: Path, seed: int) -> None:
    ctx = _context()
    ready = ctx.Event()
    proc = ctx.Process(target=target_fn, args=(path, ready), daemon=True)
    proc.start()
    try:
        assert ready.wait(120), "the writer did not start"
        time.sleep(random.Random(seed).uniform(0.05, 1.5))
        assert proc.is_alive(), "the writer died on its own"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_during_checkpoint(tmp_path, trial):
    from rdtf_engine.core.run_file import latest_checkpoint
    from rdtf_engine.training.checkpoint import load_checkpoint
    from rdtf_engine.training.run_folder import run_folder

    run = tmp_path / "run"
    _run_and_kill(checkpointer, run, seed=1000 * trial + os.getpid())
    ck = latest_checkpoint(run)
    if ck is not None:  # killed before the first checkpoint completed: absent is fine, torn is not
        model, ema, _optim, state = load_checkpoint(ck)
        tag = state["tag"]
        assert ck.name == f"step_{tag:07d}"
        for t in [*model.values(), *ema.values()]:
            assert torch.all(t == float(tag)), "a checkpoint mixes tensors of two steps"
    with run_folder(run):  # the next start: temp siblings of the killed writer are removed
        leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.startswith(".")] \
            if (run / "checkpoints").is_dir() else []
        assert leftovers == []


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill_during_export(tmp_path, trial):
    from rdtf_engine.formats.loader import load_clip
    from rdtf_engine.platforms.export import write_clip

    out = tmp_path / "out"
    out.mkdir()
    _run_and_kill(exporter, out, seed=2000 * trial + os.getpid())
    gif = out / "sticker.gif"
    if gif.exists():
        clip = load_clip(gif)
        assert clip.num_frames == 6 and len(np.unique(clip.frames[..., 0])) == 1, "a torn GIF"
    frames = out / "frames"
    if frames.exists():
        clip = load_clip(frames)
        assert clip.num_frames == 6
        assert len(np.unique(clip.frames[..., 0])) == 1, "a frames folder mixes two exports"
    # the next export cleans what the killed one left (temp files named after its dead PID)
    blank = np.zeros((2, 8, 8, 4), np.uint8)
    from rdtf_engine.core.clip import Clip

    write_clip(Clip(blank, [100, 100], ""), gif)
    write_clip(Clip(blank, [100, 100], ""), frames)
    assert sorted(p.name for p in out.iterdir()) == ["frames", "sticker.gif"]
