"""Training recipes as the Train page shows them, time estimates, unfinished-run discovery and the dataset
captions file.

Pure functions over files and dicts (no Qt), so they are tested directly.

A run folder is ``runs/<name>/``; the engine keeps ``checkpoints/`` there and writes ``done.json`` when the run
completes. ``run.json`` holds the run's ``TrainRequest`` (``rdtf_engine.core.run_file``): the app writes it when
it starts the run, the engine completes it, and both read it to resume the run after the app was closed or
crashed. The recipes themselves are the engine's (``rdtf_engine.core.recipes``), so the CLI trains the same way.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any

from rdtf_engine.core.config import DECODER_TIME_SHARE
from rdtf_engine.core.recipes import APP_RECIPES, DEFAULT_RECIPE, Recipe, recipe
from rdtf_engine.core.requests import TrainRequest
from rdtf_engine.core.run_file import read_run_file, resumable_step, write_run_file
from rdtf_engine.data.pack_windows import MAX_STICKERS, MIN_STICKERS

# Steps/s of each recipe before this machine has measured anything (replaced by the measured speed).
# pack on CPU: the shipped small model at 128 px, batch 2, all weights: ≈ 1.1 steps/s on 2 idle cores (docs/app.md).
DEFAULT_SPEED = {("cpu", "pack"): 1.0, ("mps", "pack"): 0.5, ("cuda", "pack"): 4.0,
                 ("cpu", "quick"): 6.0, ("cpu", "standard"): 0.6, ("cpu", "long"): 0.075,
                 ("cuda", "quick"): 40.0, ("cuda", "standard"): 12.0, ("cuda", "long"): 6.0,
                 ("mps", "quick"): 15.0, ("mps", "standard"): 3.0, ("mps", "long"): 0.4}
# Stickers are imported at the shipped model's frame size; each run's data source resamples them to its own.
IMPORT_SIZE = 128
# A fine-tune's decoder step against its denoiser step: on a GPU batch 32 single frames against 256 clips of 8;
# on a CPU batch 4 frames against 2 clips of 8: about as fast (1.25 against 1.18 steps/s on 2 idle cores).
DECODER_SPEEDUP = {"cpu": 1.0, "mps": 1.0, "cuda": 8.0}
# loading the base model and text encoder, encoding the data (a 24-sticker pack's 384 windows: ≈ 2.5 min on 2 cores)
SETUP_SECONDS = {"cpu": 150.0, "mps": 90.0, "cuda": 30.0}


def device_kind(device: dict[str, Any]) -> str:
    d = str(device.get("device", "cpu")).lower()
    return "cuda" if d.startswith("cuda") else "mps" if d.startswith("mps") else "cpu"


def recipe_for(choice: str, device: dict[str, Any]) -> Recipe:
    """The engine recipe behind a Train page choice on this device (``pack`` differs by device)."""
    return recipe(choice if choice in APP_RECIPES else DEFAULT_RECIPE, device_kind(device))


def estimate_seconds(choice: str, device: dict[str, Any], measured: float | None = None) -> float:
    """Whole-run time: set-up, denoiser steps, and the autoencoder's steps: a run from scratch trains it (counted
    at 3× the denoiser's speed), a fine-tune tunes its decoder (``DECODER_SPEEDUP``); a capped recipe's steps
    never more than its cap (the run stops there with its model saved), its decoder tune never more than
    ``DECODER_TIME_SHARE`` of it."""
    kind = device_kind(device)
    r = recipe_for(choice, device)
    if measured is not None and not (isinstance(measured, (int, float)) and 1e-6 < measured < 1e6):
        measured = None  # NaN, 1e-310, inf or junk from a damaged settings file: use the built-in guess
    speed = measured or DEFAULT_SPEED.get((kind, r.name), 1.0)
    ae = r.train.ae_steps / 3 if r.from_scratch else r.train.decoder_steps / DECODER_SPEEDUP[kind]
    ae_s, steps_s = ae / speed, r.train.steps / speed
    if r.max_minutes > 0:  # the step loop stops at the cap, the decoder's tune at its share of it
        ae_s, steps_s = min(ae_s, r.max_minutes * 60 * DECODER_TIME_SHARE), min(steps_s, r.max_minutes * 60)
    return SETUP_SECONDS[kind] + ae_s + steps_s


def train_request(choice: str, device: dict[str, Any], data: str, run_dir: Path) -> TrainRequest:
    """The request the Train page sends for ``choice``: the engine recipe on the imported dataset."""
    return recipe_for(choice, device).request(data, str(run_dir))


MAX_SHOWN_S = 1000 * 3600  # past this an estimate says nothing useful


def format_duration(seconds: Any) -> str:
    """Seconds → "42 s" / "12 min" / "3.5 h"; total: NaN, infinities, huge values and non-numbers never raise
    (a corrupt measured speed in the settings must not stop the app from starting)."""
    try:
        value = float(seconds)
    except (TypeError, ValueError, OverflowError):
        return "unknown time"
    if math.isnan(value):
        return "unknown time"
    if value <= 0:
        return "0 s"
    if value >= MAX_SHOWN_S:
        return "over 1000 h"
    s = max(0, int(value))
    if s < 90:
        return f"{s} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    return f"{s / 3600:.1f} h"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "run"


def new_run_dir(runs: Path, name: str) -> Path:
    base = runs / f"{time.strftime('%Y%m%d-%H%M')}-{slug(name)}"
    d, n = base, 1
    while d.exists():
        n += 1
        d = base.with_name(f"{base.name}-{n}")
    return d


def write_request(run_dir: Path, req: TrainRequest) -> None:
    write_run_file(run_dir, req)


def read_request(run_dir: Path) -> TrainRequest | None:
    """The run's request (run.json, or the studio_request.json of runs from older versions)."""
    return read_run_file(run_dir)


def pack_size_warning(stickers: int | None) -> str:
    """What the Train page says before a fine-tune's Start about an imported pack it cannot train on (the engine
    refuses it too, ``pack_windows.check_pack_size``); "" when it can, or when nothing is imported yet."""
    if stickers is None:
        return ""
    if stickers < MIN_STICKERS:
        return (f"This pack has {stickers} readable sticker{'s' if stickers != 1 else ''}; fine-tuning on a pack "
                f"needs at least {MIN_STICKERS}. Add stickers to the folder and import it again.")
    if stickers > MAX_STICKERS:
        return (f"This pack has {stickers} stickers, over the {MAX_STICKERS}-sticker cap of a pack fine-tune: "
                f"split it into packs of up to {MAX_STICKERS}.")
    return ""


def has_checkpoint(run_dir: Path) -> bool:
    """A complete checkpoint the engine would resume from (an interrupted write or an empty folder is not one)."""
    return resumable_step(run_dir) is not None


def unfinished_runs(runs: Path, dismissed: set[str] | None = None) -> list[dict[str, Any]]:
    """Runs with a complete checkpoint, no done.json, and a request the app can resume with; newest first.
    ``step``: the step the engine's resume starts at."""
    found = []
    for d in sorted(Path(runs).iterdir() if Path(runs).is_dir() else [], reverse=True):
        if (d / "done.json").exists() or str(d) in (dismissed or set()):
            continue
        step = resumable_step(d)
        if step is None:
            continue
        req = read_request(d)
        if req is None:
            continue
        found.append({"run_dir": str(d), "name": d.name, "step": step, "steps": int(req.train.steps), "request": req})
    return found


# ---- captions.csv of an imported dataset --------------------------------------------------------------
def read_captions(dataset: Path) -> tuple[list[str], list[list[str]], int]:
    """(header, rows, index of the caption column). The engine owns the format; we only edit one column."""
    path = Path(dataset) / "captions.csv"
    if not path.exists():
        return ["file", "caption"], [], 1
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    if not rows:
        return ["file", "caption"], [], 1
    header = rows[0]
    lowered = [h.strip().lower() for h in header]
    col = lowered.index("caption") if "caption" in lowered else min(1, len(header) - 1)
    return header, [r for r in rows[1:] if r], col


def write_captions(dataset: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path = Path(dataset) / "captions.csv"
    tmp = path.with_suffix(".csv.part")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


def thumbnail_for(dataset: Path, key: str, source: Path | None = None) -> str:
    """A picture for a captions row: the first PNG of the clip's folder (in the manifest's ``clips_dir``),
    the file itself, or the source file."""
    bases = [Path(dataset), source]
    try:
        clips = json.loads((Path(dataset) / "manifest.json").read_text(encoding="utf-8")).get("clips_dir")
        if clips:
            bases.insert(0, Path(dataset) / str(clips))
    except (OSError, ValueError, AttributeError):
        pass
    for base in bases:
        if base is None:
            continue
        p = base / key
        if p.is_file():
            return str(p)
        if p.is_dir():
            pngs = sorted(p.glob("*.png"))
            if pngs:
                return str(pngs[0])
    return ""
