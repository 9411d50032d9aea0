"""``rdtf eval-upscale``: every upscaler candidate on held-out real frames (+ a side-by-side sheet at 512 px)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from rdtf_engine.core.errors import InputError

SHEET_TITLES = ("real (256 px, Lanczos)", "lanczos", "unsharp", "learned")


def real_frames(data: str, files: int, per_file: int, seed: int = 0) -> np.ndarray:
    """(N, 256, 256, 4) real frames of ``data``: whole Fluent files (``per_file`` frames each) for the built-in
    Fluent sources, else the middle frames of ``files`` clips of any source at 256 px."""
    from rdtf_engine.training.upscaler import fluent_frames

    if data == "builtin:fluent":
        raise InputError("builtin:fluent is the upscaler's training data; measure on builtin:fluent-holdout "
                         "(--tune-unsharp reads its validation part by itself)")
    if data.startswith("builtin:fluent-"):
        return fluent_frames(data.removeprefix("builtin:fluent-"), files, per_file, seed=seed)
    from rdtf_engine.data.sources import open_source

    src = open_source(data, 256, num_clips=files, seed=seed)
    out = []
    for i in range(min(files, len(src))):
        fr = src[i].frames
        out.append(fr[np.unique(np.linspace(0, len(fr) - 1, per_file + 2).round().astype(int))[1:-1]])
    return np.concatenate(out)


def evaluate_upscalers(data: str, files: int, per_file: int, candidates: list[str], weights: str | None = None,
                       seed: int = 0, sheet: str | None = None, tune_unsharp: bool = False) -> dict[str, Any]:
    """The measurement behind the export's upscaler (docs/results.md, "Upscaling to 512 px") → report."""
    from rdtf_engine.eval import upscale as ev
    from rdtf_engine.model.upscaler import builtin_upscaler, load_upscaler
    from rdtf_engine.platforms.upscale import UNSHARP

    model = None
    if "learned" in candidates or sheet:
        model = load_upscaler(weights) if weights else builtin_upscaler()
    report: dict[str, Any] = {"data": data, "seed": seed}
    unsharp = UNSHARP
    if tune_unsharp:
        from rdtf_engine.training.upscaler import fluent_frames

        val = fluent_frames("train", files, per_file, validation=True, seed=seed)
        report["unsharp_tuning"] = ev.tune_unsharp(val)
        unsharp = tuple(report["unsharp_tuning"]["best"])
    report["unsharp"] = list(unsharp)
    real = real_frames(data, files, per_file, seed)
    report.update(ev.evaluate(real, candidates, model=model, unsharp=unsharp))
    if model is not None:
        report["learned_upscaler"] = {**model.config(), "parameters": model.num_parameters(),
                                      "summary": model.summary}
    if sheet:
        report["sheet"] = save_sheet(sheet, real, model, unsharp)
    return report


def sheet_columns(real: np.ndarray, model, unsharp, export_factor: int = 4) -> list[np.ndarray]:
    """[reference, Lanczos, unsharp, learned] (N, 4·H/2, 4·W/2, 4) at export size from the half-size frames."""
    from rdtf_engine.platforms.upscale import resize_frames, shrink

    h, w = real.shape[1:3]
    small = shrink(real, 2)
    size = (w * export_factor // 2, h * export_factor // 2)
    return [resize_frames(real, *size, "lanczos"), resize_frames(small, *size, "lanczos"),
            resize_frames(small, *size, "unsharp", unsharp=unsharp), resize_frames(small, *size, "learned",
                                                                                   model=model)]


def save_sheet(path: str, real: np.ndarray, model, unsharp, rows: int = 3, crop: int = 160) -> str:
    """PNG: for ``rows`` frames spread over the set, a ``crop`` px window (at 512 px, where the outline is
    busiest) of each column in ``SHEET_TITLES``, on a checkerboard, unscaled so the pixels are the export's."""
    from PIL import Image, ImageDraw

    from rdtf_engine.core.atomic import write_bytes_atomic
    from rdtf_engine.diffusion.sheets import grid_image
    from rdtf_engine.eval.upscale import edge_crop

    pick = real[np.unique(np.linspace(0, len(real) - 1, rows + 2).round().astype(int))[1:-1]]
    cols = sheet_columns(pick, model, unsharp)
    head = 16
    sheet = Image.new("RGB", (crop * len(cols), head + crop * len(pick)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, t in enumerate(SHEET_TITLES):
        draw.text((c * crop + 4, 2), t, fill=(0, 0, 0))
    for r in range(len(pick)):
        y, x = edge_crop(cols[0][r], crop)
        tiles = [col[r: r + 1, y: y + crop, x: x + crop] for col in cols]  # (1, crop, crop, 4) each
        sheet.paste(Image.fromarray(grid_image([np.concatenate(tiles, axis=2)])), (0, head + r * crop))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    write_bytes_atomic(path, buf.getvalue())
    return Path(path).name
