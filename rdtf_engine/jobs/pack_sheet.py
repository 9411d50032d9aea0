"""``rdtf pack sheet DIR --out sheet.png``: the whole pack on one PNG, to look at or share.

The first row is the character picture; then one row per sticker in pack order: its name and emoji, then
``frames`` evenly spaced frames of it on a checkerboard (``diffusion.pipeline.grid_image``, the sheet every
evaluation writes). A sticker not made yet shows an empty row marked "not made yet". No local paths are
written into the PNG.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rdtf_engine.core.errors import InputError

LABEL_W, PAD = 170, 6  # the label column; the gap around each row
EMOJI_PX = 22  # emoji drawn with the colour emoji font, this tall


def _tiles(frames: np.ndarray, count: int, cell: int) -> np.ndarray:
    """(F, H, W, 4) → (min(count, F), cell, cell, 4): evenly spaced frames, each fitted into a square cell."""
    idx = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    out = []
    for fr in frames[idx]:
        im = Image.fromarray(fr, "RGBA")
        im.thumbnail((cell, cell), Image.LANCZOS)
        square = Image.new("RGBA", (cell, cell))
        square.paste(im, ((cell - im.width) // 2, (cell - im.height) // 2))
        out.append(np.asarray(square))
    return np.stack(out)


def _emoji_image(emoji: tuple[str, ...]) -> Image.Image | None:
    """The sticker's emoji in colour (the Noto font the emoji data uses), or None without the font."""
    from rdtf_engine.core.errors import DependencyError
    from rdtf_engine.data.emoji import FONT_SIZE, load_font

    if not emoji:
        return None
    try:
        font = load_font()
    except DependencyError:
        return None
    text = "".join(emoji)
    img = Image.new("RGBA", (FONT_SIZE * 2 * len(text) + 32, FONT_SIZE * 2))
    ImageDraw.Draw(img).text((8, 8), text, font=font, embedded_color=True)
    box = img.getbbox()
    if box is None:
        return None
    img = img.crop(box)
    return img.resize((max(1, round(img.width * EMOJI_PX / img.height)), EMOJI_PX), Image.LANCZOS)


def save_pack_sheet(folder: str | Path, out: str | Path, frames: int = 4, cell: int = 96) -> dict[str, Any]:
    """Write the pack's sheet to ``out`` (atomically); returns what it holds."""
    from rdtf_engine.core.atomic import write_bytes_atomic
    from rdtf_engine.diffusion.sheets import grid_image
    from rdtf_engine.formats.loader import load_clip
    from rdtf_engine.jobs.pack_mode import is_made
    from rdtf_engine.packs.project import inside, load_pack

    if not 1 <= frames <= 16 or not 32 <= cell <= 256:
        raise InputError("a sheet shows 1-16 frames per sticker, each 32-256 px")
    if Path(out).suffix.lower() != ".png":
        raise InputError(f"the sheet is a PNG: name it *.png, not {Path(out).name!r}")
    project = load_pack(folder)
    char_path = inside(folder, project.character)
    if not char_path.is_file():
        raise InputError(f"the pack's character picture {project.character} is missing")
    rows: list[tuple[str, tuple[str, ...], np.ndarray | None]] = [
        ("character", (), _tiles(load_clip(char_path, first_frames=1).frames, 1, cell))]
    for s in project.stickers:
        clip = _tiles(load_clip(inside(folder, str(s.file))).frames, frames, cell) if is_made(folder, s) else None
        rows.append((s.title, s.emoji, clip))
    row_h = cell + 2 * PAD
    head = 30
    sheet = Image.new("RGB", (LABEL_W + frames * cell + PAD, head + len(rows) * row_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font, small = ImageFont.load_default(size=16), ImageFont.load_default(size=13)
    who = f" by {project.author}" if project.author else ""
    draw.text((PAD, 7), f"{project.title}{who}: {len(project.stickers)} stickers"[:80], fill=(0, 0, 0), font=font)
    for r, (label, emoji, tiles) in enumerate(rows):
        y = head + r * row_h
        draw.line((0, y, sheet.width, y), fill=(225, 225, 225))
        draw.text((PAD, y + PAD + 4), label[:22], fill=(0, 0, 0), font=font)
        icon = _emoji_image(emoji)
        if icon is not None:
            sheet.paste(icon, (PAD, y + PAD + 28), icon)
        if tiles is None:
            draw.text((LABEL_W, y + row_h // 2 - 8), "not made yet", fill=(150, 150, 150), font=small)
        else:
            sheet.paste(Image.fromarray(grid_image([tiles])), (LABEL_W, y + PAD))
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    write_bytes_atomic(out, buf.getvalue())
    return {"path": Path(out).name, "stickers": len(project.stickers), "frames": frames, "cell_px": cell,
            "bytes": len(buf.getvalue())}


__all__ = ["save_pack_sheet"]
