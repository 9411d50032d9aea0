"""Multi-process (DDP) training as the GPU host runs it (`torchrun -m rdtf_engine train`), here on 2 CPU
processes over gloo: both stop at the same step (step target and time limit), only one writes the run, and a
multi-process resume continues every process exactly where it stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def torchrun(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "rdtf_engine", "train", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)


def test_two_process_training_and_resume(tiny_run, tmp_path):
    out = tmp_path / "ddp"
    ae = str(Path(tiny_run[0]) / "autoencoder")
    r = torchrun("--data", "builtin:shapes", "--out", str(out), "--preset", "tiny", "--size", "32", "--steps", "6",
                 "--batch-size", "4", "--max-clips", "32", "--checkpoint-every", "3", "--autoencoder", ae,
                 "--device", "cpu", "--sample-every", "3")
    assert r.returncode == 0, r.stderr[-2000:]
    done = json.loads((out / "done.json").read_text())
    assert done["step"] == 6
    assert (out / "samples" / "step_0000003.png").is_file()
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in logged if "loss" in row] == [6]  # one writer: no duplicated rows
    assert r.stdout.count("checkpoint at step 6") == 1  # the other process reports nothing

    # a time limit reached by the processes at different moments still stops them at one step
    r = torchrun("--out", str(out), "--resume", "--steps", "100000", "--max-minutes", "0.05", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from step_0000006" in r.stdout and "(time limit)" in r.stdout


def test_two_process_resume_matches_an_uninterrupted_run(tiny_run, tmp_path):
    """Every process's random state (clip order, masks, caption dropout, noise, curriculum draws) is in the
    checkpoint: a 2-process run stopped after step 2 and resumed ends with the same weights, EMA, loss history
    and random states as one that ran its 4 steps straight through."""
    import torch

    from rdtf_engine.core.run_file import latest_checkpoint
    from rdtf_engine.training.checkpoint import load_checkpoint

    ae = str(Path(tiny_run[0]) / "autoencoder")
    script = str(Path(__file__).with_name("ddp_stop_resume.py"))
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    for args in ((str(straight), ae, "4"), (str(stopped), ae, "4", "stop")):
        r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            script, *args], capture_output=True, text=True, timeout=300, check=False,
                           env={**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"})
        assert r.returncode == 0, r.stderr[-2000:]
    assert not (stopped / "done.json").exists()
    first = load_checkpoint(latest_checkpoint(stopped))[3]
    assert first["step"] == 2 and len(first["rank_rng"]) == 2
    assert first["rank_rng"][0]["python"] != first["rank_rng"][1]["python"]  # each process has its own stream
    r = torchrun("--out", str(stopped), "--resume", "--device", "cpu")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "resumed from step_0000002" in r.stdout and "not bit-exactly" not in r.stdout + r.stderr
    ma, ea, _, sa = load_checkpoint(latest_checkpoint(straight))
    mb, eb, _, sb = load_checkpoint(latest_checkpoint(stopped))
    assert sa["step"] == sb["step"] == 4
    for k in ma:
        assert torch.equal(ma[k], mb[k]), k
    for k in ea:
        assert torch.equal(ea[k], eb[k]), k
    assert sa["history"] == sb["history"] and sa["rank_rng"] == sb["rank_rng"]
