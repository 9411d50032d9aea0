"""Training presets, time estimates, unfinished-run discovery and the dataset captions file.

Pure functions over files and dicts (no Qt), so they are tested directly.

A run folder is ``runs/<name>/``; the engine keeps ``checkpoints/`` there and writes ``done.json`` when the run
completes. The app adds ``studio_request.json`` (the TrainRequest it sent) so a run can be resumed with the
same settings after the app was closed or crashed.
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

REQUEST_FILE = "studio_request.json"

# The three choices a user sees. Model sizes are the engine's presets (rdtf_engine/core/config.py).
TRAIN_PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"label": "Quick (try it out)", "preset": "tiny", "steps": 300, "ae_steps": 200, "size": 64,
              "batch_size": 4, "sample_every": 50, "checkpoint_every": 50},
    "standard": {"label": "Standard", "preset": "small", "steps": 3000, "ae_steps": 800, "size": 64,
                 "batch_size": 4, "sample_every": 250, "checkpoint_every": 250},
    "long": {"label": "Long (best quality)", "preset": "small", "steps": 12000, "ae_steps": 2000, "size": 128,
             "batch_size": 8, "sample_every": 500, "checkpoint_every": 500},
}

# Rough steps/s before this machine has measured anything (batch 4, 64 px); replaced by measured speed.
DEFAULT_SPEED = {("cpu", "tiny"): 6.0, ("cpu", "small"): 0.6, ("cuda", "tiny"): 40.0, ("cuda", "small"): 12.0,
                 ("mps", "tiny"): 15.0, ("mps", "small"): 3.0}


def device_kind(device: dict[str, Any]) -> str:
    d = str(device.get("device", "cpu")).lower()
    return "cuda" if d.startswith("cuda") else "mps" if d.startswith("mps") else "cpu"


def estimate_seconds(choice: str, device: dict[str, Any], measured: float | None = None) -> float:
    """Whole-run time: denoiser steps plus autoencoder steps (cheaper, counted at 3× the speed)."""
    p = TRAIN_PRESETS[choice]
    if measured is not None and not (isinstance(measured, (int, float)) and 1e-6 < measured < 1e6):
        measured = None  # NaN, 1e-310, inf or junk from a damaged settings file: use the built-in guess
    speed = measured or DEFAULT_SPEED.get((device_kind(device), p["preset"]), 1.0)
    # Bigger images and batches cost proportionally more than the 64 px / batch-4 reference.
    scale = (p["size"] / 64) ** 2 * p["batch_size"] / 4
    return (p["steps"] + p["ae_steps"] / 3) * scale / speed


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


def write_request(run_dir: Path, params: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / (REQUEST_FILE + ".part")
    tmp.write_text(json.dumps(params, indent=1), encoding="utf-8")
    os.replace(tmp, run_dir / REQUEST_FILE)


def read_request(run_dir: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((run_dir / REQUEST_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def last_step(run_dir: Path) -> int:
    """Best effort: the highest number in a checkpoint name (``checkpoint_1200``, ``step_000300``…)."""
    steps = [int(m.group(0)) for p in (run_dir / "checkpoints").iterdir() if (m := re.search(r"\d+", p.name))]
    return max(steps, default=0)


def unfinished_runs(runs: Path, dismissed: set[str] | None = None) -> list[dict[str, Any]]:
    """Runs with checkpoints, no done.json, and a request the app can resume with; newest first."""
    found = []
    for d in sorted(Path(runs).iterdir() if Path(runs).is_dir() else [], reverse=True):
        if not (d / "checkpoints").is_dir() or (d / "done.json").exists() or str(d) in (dismissed or set()):
            continue
        req = read_request(d)
        if req is None:
            continue
        found.append({"run_dir": str(d), "name": d.name, "step": last_step(d), "steps": int(req.get("steps", 0)),
                      "request": req})
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
