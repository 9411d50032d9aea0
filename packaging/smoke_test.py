"""Smoke test of a frozen build: the bundled worker answers and makes a sticker, the CLI works, the GUI starts.

    python packaging/smoke_test.py dist/rdtf-studio

1. The bundled worker (``rdtf-studio-console --worker``), spoken to through the same JSON-lines protocol the
   app uses: ping, device, models (the shipped default model must be listed without error), then *generate*
   one sticker on the shipped model and *export* it for Telegram (WebM) — the frozen torch, diffusers, text
   encoder package data, PyAV and the model resources all have to be there for that — *import* the exported
   file as a dataset, and *train* a tiny model for two steps (autoencoder, data encoding, accelerate, the
   optimizer, EMA and a checkpoint: the training path's lazy imports), then generate from that run.
2. The bundled engine CLI (``--cli check``) checks the exported file.
3. The GUI (``rdtf-studio``) is started offscreen with a fresh profile and must stay up for a few seconds
   (it starts its own bundled workers; a missing Qt plugin or a bad entry point exits at once).

Everything is written under build/smoke/; nothing needs a network. Exit code 0 = all passed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

WORK = Path("build") / "smoke"


def exe(folder: Path, name: str) -> Path:
    path = folder / (name + (".exe" if os.name == "nt" else ""))
    if not path.is_file():
        sys.exit(f"missing {path}")
    return path


def env() -> dict[str, str]:
    home = WORK.resolve()
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RDTF_STUDIO_HOME": str(home / "studio"),
            "RDTF_HOME": str(home / "engine")}


class Worker:
    """One bundled worker process; ``call`` sends a request and waits for its finished/failed event."""

    def __init__(self, console: Path) -> None:
        self.proc = subprocess.Popen([str(console), "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env())
        ready = json.loads(self.proc.stdout.readline())
        assert ready["kind"] == "ready", ready

    def call(self, op: str, params: dict | None = None) -> dict:
        job_id = f"{op}-{time.monotonic_ns()}"
        self.proc.stdin.write(json.dumps({"id": job_id, "op": op, "params": params or {}}) + "\n")
        self.proc.stdin.flush()
        while True:  # one request at a time: closing stdin early would cancel the queued ones
            line = self.proc.stdout.readline()
            assert line, f"the worker exited during {op} (code {self.proc.poll()})"
            ev = json.loads(line)
            if ev.get("id") == job_id and ev["kind"] in ("finished", "failed"):
                break
        assert ev["kind"] == "finished", ev
        return ev["result"]

    def close(self) -> None:
        self.proc.stdin.close()
        assert self.proc.wait(120) == 0


def check_worker(console: Path) -> Path:
    worker = Worker(console)
    for op in ("ping", "device"):
        print(f"worker {op}: ok", json.dumps(worker.call(op))[:160])
    models = worker.call("models")["models"]
    default = [m for m in models if m.get("name") == "default" and m.get("builtin")]
    assert default and "error" not in default[0], models
    print(f"worker models: ok ({len(models)}; default {default[0].get('bytes', 0) / 2**20:.1f} MB)")
    t0 = time.monotonic()
    gen = worker.call("generate", {"prompt": "a red heart beating", "steps": 4, "frames": 8, "size": 128,
                                   "seed": 1, "frames_dir": str((WORK / "frames").resolve())})
    assert len(gen["frames"]) == 8 and all(Path(p).is_file() for p in gen["frames"]), gen
    print(f"worker generate: ok ({len(gen['frames'])} frames in {time.monotonic() - t0:.1f} s)")
    out = (WORK / "sticker.webm").resolve()
    exported = worker.call("export", {"input": str(Path(gen["frames"][0]).parent), "preset": "telegram",
                                      "out": str(out)})
    assert out.is_file() and out.stat().st_size > 0, exported
    print(f"worker export: ok ({out.stat().st_size} bytes, {json.dumps(exported)[:120]})")
    dataset = (WORK / "dataset").resolve()
    worker.call("import", {"path": str(out), "out": str(dataset), "size": 64})
    assert (dataset / "manifest.json").is_file(), sorted(p.name for p in dataset.iterdir())
    print("worker import: ok")
    check_train(worker)
    worker.close()
    return out


def check_train(worker: Worker) -> None:
    """A tiny from-scratch run on the built-in shapes: every stage of training runs once, in seconds."""
    t0 = time.monotonic()
    run = (WORK / "run").resolve()
    result = worker.call("train", {"data": "builtin:shapes", "out": str(run), "preset": "tiny", "size": 32,
                                   "steps": 2, "batch_size": 2, "max_clips": 8, "ae_steps": 2,
                                   "checkpoint_every": 2})
    assert result.get("step") == 2 and Path(result["model_dir"]).is_dir(), result
    gen = worker.call("generate", {"model": str(run), "prompt": "a blue square", "steps": 2, "frames": 4,
                                   "seed": 1, "frames_dir": str((WORK / "run-frames").resolve())})
    assert len(gen["frames"]) == 4, gen
    print(f"worker train: ok (2 steps, then 4 frames from the run, {time.monotonic() - t0:.1f} s)")


def check_cli(console: Path, sticker: Path) -> None:
    run = subprocess.run([str(console), "--cli", "check", str(sticker), "--preset", "telegram"], env=env(),
                         capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    print("cli check: ok")


def check_gui(gui: Path) -> None:
    proc = subprocess.Popen([str(gui)], env=env())
    time.sleep(15)
    alive = proc.poll() is None
    proc.terminate()
    proc.wait(60)
    assert alive, f"the GUI exited early with code {proc.returncode}"
    print("gui: ok (stayed up offscreen)")


def main() -> int:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/rdtf-studio")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    console = exe(folder, "rdtf-studio-console")
    sticker = check_worker(console)
    check_cli(console, sticker)
    check_gui(exe(folder, "rdtf-studio"))
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
