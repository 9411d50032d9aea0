"""A deterministic stand-in for the engine's backend, loaded by the real worker process in tests.

Use: ``RDTF_WORKER_BACKEND=fake_backend`` with this folder on ``PYTHONPATH`` (see ``worker_env`` in
conftest.py). As a module it implements ``rdtf_engine.jobs.backend.Backend`` (one function per typed request),
emits the same event types and honours ``should_stop``. Magic prompts drive failure paths through a real subprocess: ``"crash"`` kills the process
(exit 3, like a segfault or OOM-kill), ``"fail"`` raises a typed ModelError. ``RDTF_FAKE_DELAY`` is the
sleep per denoise/train step in seconds (default 0.005).
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from rdtf_engine.core.errors import Cancelled, FormatError, ModelError
from rdtf_engine.core.events import Log, Metrics, Preview, Progress
from rdtf_engine.core.requests import (
    CheckRequest,
    DeviceRequest,
    ExportRequest,
    GenerateRequest,
    ImportRequest,
    ModelsRequest,
    PackExportRequest,
    PackRequest,
    PrepareRequest,
    TrainRequest,
)
from rdtf_engine.core.results import GenerateResult
from rdtf_engine.core.run_file import CHECKPOINTS, checkpoint_name, resumable_step

DELAY = float(os.environ.get("RDTF_FAKE_DELAY", "0.005"))


def _frame(seed: int, i: int, n: int, size: int) -> np.ndarray:
    """A coloured disc moving around a circle: frame i of n, colour from the seed."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(40, 255, 3)
    yy, xx = np.mgrid[0:size, 0:size]
    ang = 2 * np.pi * i / max(n, 1)
    cx, cy = size / 2 + size / 4 * np.cos(ang), size / 2 + size / 4 * np.sin(ang)
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= (size / 5) ** 2
    img = np.zeros((size, size, 4), np.uint8)
    img[inside, :3] = colour
    img[inside, 3] = 255
    return img


def generate(req: GenerateRequest, on_event, should_stop) -> GenerateResult:
    if "crash" in req.prompt:
        os._exit(3)
    if "fail" in req.prompt:
        raise ModelError(f"model {req.model!r} is not a model folder")
    seed = req.seed if req.seed is not None else zlib.crc32(req.prompt.encode())
    for i in range(req.steps):
        if should_stop():
            raise Cancelled("generation cancelled")
        time.sleep(DELAY)
        on_event(Progress("denoise", i + 1, req.steps))
    frames = np.stack([_frame(seed, i, req.frames, req.size) for i in range(req.frames)])
    for i, p in enumerate(req.cond_frames or []):
        if p:  # a given frame comes back unchanged, as the condition mask promises
            frames[i] = np.asarray(Image.open(p).convert("RGBA").resize((req.size, req.size)))
    locked = [i for i, p in enumerate(req.cond_frames or []) if p]
    recipe = {**req.recipe(seed, req.model, None, locked), "engine": "fake"}
    return GenerateResult(frames, [req.duration_ms] * req.frames, recipe, None)


def write_checkpoint(run: Path, step: int) -> Path:
    """A checkpoint in the engine's layout (``checkpoints/step_N/state.json`` and the ``latest`` pointer), without
    weights: enough for the app, which only decides whether and from which step a run resumes."""
    folder = Path(run) / CHECKPOINTS / checkpoint_name(step)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "state.json").write_text(json.dumps({"step": step}))
    (folder.parent / "latest").write_text(folder.name)
    return folder


def train(req: TrainRequest, on_event, should_stop) -> dict:
    run = Path(req.run.out)
    (run / CHECKPOINTS).mkdir(parents=True, exist_ok=True)
    start = (resumable_step(run) or 0) if req.run.resume else 0
    on_event(Log("info", f"training from step {start}"))
    step = start
    for step in range(start + 1, req.train.steps + 1):
        if should_stop():
            write_checkpoint(run, step - 1)
            return {"run_dir": str(run), "model_dir": None, "step": step - 1, "final_loss": 1.0 / step,
                    "stopped": True}
        time.sleep(DELAY)
        on_event(Progress("train", step, req.train.steps))
        on_event(Metrics(step, loss=1.0 / step, lr=req.train.lr, steps_per_s=50.0, eta_s=req.train.steps - step,
                         curriculum="adaptive", task_weights={"t2v": 1.0}))
        if req.run.sample_every and step % req.run.sample_every == 0:
            grid = run / "samples" / f"step_{step:06d}.png"
            grid.parent.mkdir(exist_ok=True)
            Image.fromarray(_frame(step, 0, 4, 64), "RGBA").save(grid)
            on_event(Preview(step, [str(grid)], "samples"))
        if req.run.checkpoint_every and step % req.run.checkpoint_every == 0:
            write_checkpoint(run, step)
    model = run / "model"
    model.mkdir(exist_ok=True)
    (model / "config.json").write_text(json.dumps({"name": run.name, "preset": req.model.preset, "size": req.model.size}))
    (run / "done.json").write_text(json.dumps({"step": step}))
    return {"run_dir": str(run), "model_dir": str(model), "step": step, "final_loss": 1.0 / max(step, 1),
            "stopped": False}


def models(req: ModelsRequest, on_event, should_stop) -> list[dict]:
    models = [{"name": "default", "path": "builtin:default", "preset": "small", "params": 1000, "size": 64,
               "num_frames": 8, "steps": 100, "data": "builtin:emoji", "created": "2025-01-01", "builtin": True}]
    for d in req.dirs:
        for cfg in sorted(Path(d).glob("*/config.json")):
            card = json.loads(cfg.read_text())
            models.append({"name": card.get("name", cfg.parent.name), "path": str(cfg.parent), "preset": "tiny",
                           "params": 10, "size": 32, "num_frames": 8, "steps": 1, "data": "user",
                           "created": "2025-02-02", "builtin": False})
    return models


def device(req: DeviceRequest, on_event, should_stop) -> dict:
    return {"device": "cpu", "torch": "fake", "cuda": None, "name": "fake CPU", "memory_mb": 0}


def prepare(req: PrepareRequest, on_event, should_stop) -> dict:
    """What the engine's preparation reports; ``"fail"`` as the model name fails it as a broken model would."""
    if req.model == "fail":
        raise ModelError("fake model failure")
    for _ in range(2):
        if should_stop():
            raise Cancelled("cancelled")
        time.sleep(DELAY)
    return {"model": req.model, "device": "cpu", "graphs": 1 + int(req.given), "seconds": 2 * DELAY}


def import_pack(req: ImportRequest, on_event, should_stop) -> dict:
    path, out = req.path, req.out
    src = Path(path)
    files = sorted(src.iterdir()) if src.is_dir() else []
    imported, skipped = [], []
    Path(out).mkdir(parents=True, exist_ok=True)
    rows = ["file,caption"]
    for f in files:
        if f.suffix.lower() in (".png", ".gif"):
            imported.append({"file": f.name, "caption": f.stem.replace("_", " "), "frames": 1})
            rows.append(f"{f.name},{f.stem.replace('_', ' ')}")
        else:
            skipped.append({"file": f.name, "reason": "not an image we can read"})
    if not imported:
        raise FormatError(f"nothing importable in {path}")
    (Path(out) / "captions.csv").write_text("\n".join(rows) + "\n")
    return {"out": out, "imported": imported, "skipped": skipped}


def _rules(path: str, preset: str) -> list[dict]:
    n = os.path.getsize(path)
    cap = 64 if preset == "line" else 512 * 1024  # LINE fails on purpose in tests
    return [{"name": "bytes", "ok": n <= cap, "detail": f"{n} B of {cap} B"},
            {"name": "loops forever", "ok": True, "detail": "loop=0"}]


def export(req: ExportRequest, on_event, should_stop) -> dict:
    frames = sorted(Path(req.input).glob("*.png")) if Path(req.input).is_dir() else [Path(req.input)]
    imgs = [Image.open(f).convert("RGBA") for f in frames]
    Path(req.out).parent.mkdir(parents=True, exist_ok=True)
    imgs[0].save(req.out, format="GIF", save_all=True, append_images=imgs[1:], loop=0, duration=100,
                 comment=json.dumps(req.recipe).encode())
    return {"path": req.out, "bytes": os.path.getsize(req.out), "checks": _rules(req.out, req.preset), "trades": []}


def check(req: CheckRequest, on_event, should_stop) -> dict:
    return {"path": req.path, "preset": req.preset, "rules": _rules(req.path, req.preset)}


def pack(req: PackRequest, on_event, should_stop) -> dict:
    """Pack mode with fake stickers: the real pack.json handling (engine functions), discs for pixels."""
    from dataclasses import replace

    from rdtf_engine.core.errors import InputError
    from rdtf_engine.packs.edit import new_project
    from rdtf_engine.packs.project import load_pack, save_pack

    folder = Path(req.folder)
    if req.action == "new" and not (folder / "pack.json").exists():
        if "fail" in req.character:
            raise ModelError("model 'default' is not a model folder")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_frame(7, 0, 1, 32), "RGBA").save(folder / "character.png")
        project = new_project(req.title or "pack", req.motions, seed=req.seed or 1, frames=4, steps=2,
                              character_prompt=None if Path(req.character).is_file() else req.character)
        save_pack(folder, project)
    project = load_pack(folder)
    made = lambda s: bool(s.file) and (folder / s.file).is_file()
    if req.action == "regen":
        for sid in req.ids:
            if project.sticker(sid).locked:
                raise InputError(f"sticker {sid!r} is locked")
        todo = req.ids or [s.id for s in project.stickers if not s.locked]
    else:
        todo = [s.id for s in project.stickers if not made(s)]
    for i, sid in enumerate(todo):
        if should_stop():
            raise Cancelled("pack stopped")
        on_event(Progress("pack", i, len(todo), sid))
        time.sleep(DELAY)
        s = load_pack(folder).sticker(sid)
        seed = s.seed + 1 if req.reroll else s.seed
        imgs = [Image.fromarray(_frame(seed, k, 4, 32), "RGBA") for k in range(4)]
        (folder / "stickers").mkdir(exist_ok=True)
        imgs[0].save(folder / "stickers" / f"{sid}.png", save_all=True, append_images=imgs[1:], duration=100, loop=0)
        cur = load_pack(folder)
        save_pack(folder, cur.with_sticker(replace(cur.sticker(sid), seed=seed, file=f"stickers/{sid}.png")))
        on_event(Preview(i + 1, [str(folder / "stickers" / f"{sid}.png")], sid))
    on_event(Progress("pack", len(todo), len(todo), "done"))
    final = load_pack(folder)
    return {"folder": str(folder), "stickers": len(final.stickers), "made": todo,
            "missing": [s.id for s in final.stickers if not made(s)]}


def export_pack(req: PackExportRequest, on_event, should_stop) -> dict:
    """A pack export without encoding: the made stickers' files zipped (or copied) under the target name."""
    import shutil
    import zipfile

    from rdtf_engine.packs.project import load_pack

    files = [s.file for s in load_pack(req.folder).stickers if s.file]
    out = Path(req.out)
    if out.suffix:
        with zipfile.ZipFile(out, "w") as z:
            for i, f in enumerate(files):
                z.write(Path(req.folder) / f, f"{i + 1:02d}.png")
                on_event(Progress("export-pack", i + 1, len(files), f))
    else:
        out.mkdir(parents=True, exist_ok=True)
        for f in files:
            shutil.copy(Path(req.folder) / f, out / Path(f).name)
    return {"preset": req.preset, "ok": True, "out": str(out), "archive": "zip" if out.suffix else "folder",
            "problems": []}
