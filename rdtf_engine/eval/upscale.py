"""How well each upscaler gives back real frames: ``rdtf eval-upscale``.

A real frame (N, H, W, 4) is shrunk by premultiplied Lanczos by ``factor`` (how the model's training frames are
made), enlarged back by each candidate and compared with the real one: PSNR of premultiplied RGBA, alpha IoU
(``eval.reconstruction``) and edge acutance (``eval.pack_metrics.sharpness`` at the output size). For 4× export
(128 → 512 px) there is no real 512 px frame: the acutance of each 4× result is put beside that of the real
256 px frame enlarged 2× by Lanczos, the sharpest reference there is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rdtf_engine.eval.pack_metrics import sharpness
from rdtf_engine.eval.reconstruction import alpha_iou, psnr
from rdtf_engine.platforms.upscale import resize_frames, shrink

# unsharp grid tried on validation frames: radius (source px) × percent; threshold 0 (a threshold leaves the
# soft inner edges a 2× enlargement makes untouched)
UNSHARP_GRID = tuple((r, p, 0) for r in (0.5, 1.0, 1.5) for p in (30, 50, 80, 120, 160))


def score(real: np.ndarray, up: np.ndarray) -> dict[str, float]:
    """Two (N, H, W, 4) uint8 stacks → PSNR (dB, premultiplied RGBA), alpha IoU, acutance at H px."""
    return {"psnr_db": psnr(real, up), "alpha_iou": alpha_iou(real, up), "acutance": acutance(up)}


def acutance(frames: np.ndarray) -> float:
    """Mean edge acutance of (N, H, W, 4) frames at their own size (every frame)."""
    return sharpness(frames, size=frames.shape[1], max_frames=len(frames))


def evaluate(real: np.ndarray, candidates: Sequence[str], factor: int = 2, export_factor: int = 4,
             model=None, unsharp: tuple[float, int, int] | None = None, batch: int = 32) -> dict[str, Any]:
    """Real (N, H, W, 4) frames → {"real": …, "candidates": {name: {psnr_db, alpha_iou, acutance,
    acutance_export}}}: ``factor``× back to H (scored against the real frames), and ``export_factor``× from the
    same small frames (acutance only, beside ``real.acutance_export``: the real frames enlarged by
    ``export_factor / factor`` with Lanczos). Frames go through in batches to bound memory."""
    h, w = real.shape[1:3]
    extra = {"learned": {"model": model}, "unsharp": {} if unsharp is None else {"unsharp": unsharp}}
    kw = {name: extra.get(name, {}) for name in candidates}
    sums: dict[str, dict[str, float]] = {c: {} for c in [*candidates, "real"]}
    for s in range(0, len(real), batch):
        r = real[s: s + batch]
        small = shrink(r, factor)
        ref = resize_frames(r, w * export_factor // factor, h * export_factor // factor, "lanczos")
        _add(sums["real"], {"acutance": acutance(r), "acutance_export": acutance(ref)}, len(r))
        for name in candidates:
            up = resize_frames(small, w, h, name, **kw[name])
            big = resize_frames(small, w * export_factor // factor, h * export_factor // factor, name, **kw[name])
            _add(sums[name], {**score(r, up), "acutance_export": acutance(big)}, len(r))
    n = len(real)
    return {"frames": n, "size": h, "factor": factor, "export_factor": export_factor,
            "real": {k: v / n for k, v in sums["real"].items()},
            "candidates": {c: {k: v / n for k, v in sums[c].items()} for c in candidates}}


def _add(acc: dict[str, float], vals: dict[str, float], n: int) -> None:
    for k, v in vals.items():
        acc[k] = acc.get(k, 0.0) + v * n  # batch means weighted by frames → a mean over all frames


def tune_unsharp(val: np.ndarray, factor: int = 2,
                 grid: Sequence[tuple[float, int, int]] = UNSHARP_GRID) -> dict[str, Any]:
    """The unsharp setting with the best PSNR on validation frames (never the test frames) → {best, table}."""
    small = shrink(val, factor)
    h, w = val.shape[1:3]
    table = []
    for setting in grid:
        up = resize_frames(small, w, h, "unsharp", unsharp=setting)
        table.append({"unsharp": list(setting), **score(val, up)})
    best = max(table, key=lambda row: row["psnr_db"])
    return {"best": best["unsharp"], "frames": len(val), "table": table}


def edge_crop(frame: np.ndarray, side: int) -> tuple[int, int]:
    """(y, x) of the ``side`` × ``side`` window of an (H, W, 4) frame holding the most outline (0 < alpha < 255)
    and visible colour change: where upscalers differ."""
    a = frame[..., 3].astype(np.float32)
    lum = frame[..., :3].astype(np.float32).mean(-1) * a / 255
    gy, gx = np.gradient(lum)
    busy = ((a > 0) & (a < 255)).astype(np.float32) * 64 + np.hypot(gx, gy)
    h, w = busy.shape
    step = max(1, side // 4)
    best, at = -1.0, (0, 0)
    for y in range(0, h - side + 1, step):
        for x in range(0, w - side + 1, step):
            v = float(busy[y: y + side, x: x + side].sum())
            if v > best:
                best, at = v, (y, x)
    return at
