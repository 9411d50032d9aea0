"""``rdtf eval-autoencoder``: reconstruction of held-out real clips by one or more autoencoders, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch


def open_autoencoder(spec: str, device: torch.device):
    """An autoencoder folder, a model folder or an installed model's name → (vae, scale)."""
    from rdtf_engine.training.autoencoder import load_autoencoder
    from rdtf_engine.training.finetune import resolve_init

    p = Path(spec).expanduser()
    return load_autoencoder(p if (p / "config.json").is_file() else resolve_init(spec), device)


def evaluate_autoencoders(specs: list[str], data: str, size: int, clips: int, device: torch.device,
                          seed: int = 0, sheet: str | None = None) -> dict[str, Any]:
    """Reconstruct ``clips`` clips of ``data`` at ``size`` px with each autoencoder → report (+ a sheet PNG:
    one row per clip, the real frames then each autoencoder's)."""
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.eval.reconstruction import reconstruct, reconstruction_report

    src = open_source(data, size, num_clips=clips, seed=seed)
    real = [src[i].frames for i in range(len(src))]  # (F, size, size, 4) uint8 each
    report: dict[str, Any] = {"data": data, "size": size, "seed": seed, "autoencoders": {}}
    rows: list[list[np.ndarray]] = [[r] for r in real]
    for spec in specs:
        vae, _ = open_autoencoder(spec, device)
        recon = [reconstruct(vae, r, device) for r in real]
        name = Path(spec).name or spec  # no local path in a report
        report["autoencoders"][name] = reconstruction_report(real, recon)
        for row, rc in zip(rows, recon):
            row.append(rc)
    if sheet:
        report["sheet"] = _save_sheet(sheet, rows, ["real", *(Path(s).name or s for s in specs)])
    return report


def _save_sheet(path: str, rows: list[list[np.ndarray]], titles: list[str], max_rows: int = 8,
                cell: int = 256) -> str:
    """Rows of [real, recon A, …] → one PNG: each clip's middle frame per column, on a checkerboard."""
    import io

    from PIL import Image, ImageDraw

    from rdtf_engine.core.atomic import write_bytes_atomic
    from rdtf_engine.diffusion.sheets import grid_image

    rows = rows[:max_rows]
    head = 20
    sheet = Image.new("RGB", (cell * len(titles), head + cell * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for c, t in enumerate(titles):
        draw.text((c * cell + 4, 4), t[:40], fill=(0, 0, 0))
    for r, row in enumerate(rows):
        mids = [clip[len(clip) // 2][None] for clip in row]  # (1, H, W, 4) each
        tiles = [np.asarray(Image.fromarray(m[0], "RGBA").resize((cell, cell), Image.LANCZOS))[None] for m in mids]
        sheet.paste(Image.fromarray(grid_image([np.concatenate(tiles, axis=2)])), (0, head + r * cell))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    write_bytes_atomic(path, buf.getvalue())
    return Path(path).name
