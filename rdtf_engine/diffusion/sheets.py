"""Sample sheets: clips laid out as rows of frames on a checkerboard (evaluation grids, pack sheets), labelled
sheets (a caption per row, titled columns of clips), and the training preview that draws a run's held-out captions
the way its finished model will, beside the real clips."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rdtf_engine.diffusion.pipeline import SampleParams, StickerPipeline
from rdtf_engine.formats.timing import fit_canvas


def checkerboard(h: int, w: int, cell: int = 8) -> np.ndarray:
    """Light grey checkerboard (h, w, 3) uint8: how transparent stickers are shown everywhere."""
    yy, xx = np.mgrid[0:h, 0:w]
    board = ((yy // cell + xx // cell) % 2).astype(np.uint8)
    return np.where(board[..., None] == 1, 204, 255).repeat(3, axis=-1).astype(np.uint8)


def grid_image(rows: Sequence[np.ndarray]) -> np.ndarray:
    """rows of (F, H, W, 4) RGBA clips → one RGB image (rows × F tiles) composited on a checkerboard."""
    f_max = max(r.shape[0] for r in rows)
    h, w = rows[0].shape[1:3]
    canvas = np.full((len(rows) * h, f_max * w, 3), 255, np.uint8)
    bg = checkerboard(h, w).astype(np.float32)
    for ri, clip in enumerate(rows):
        for fi, fr in enumerate(clip):
            a = fr[..., 3:4].astype(np.float32) / 255.0
            tile = fr[..., :3].astype(np.float32) * a + bg * (1 - a)
            canvas[ri * h : (ri + 1) * h, fi * w : (fi + 1) * w] = tile.round().astype(np.uint8)
    return canvas


def labelled_sheet(captions: Sequence[str], rows: Sequence[Sequence[np.ndarray]], titles: Sequence[str],
                   cell: int = 96, label_w: int = 150):
    """A PIL RGB image: one row per caption — the caption, then each of its clips ((F, H, W, 4) RGBA, resized to
    ``cell`` px) as a block of frames on a checkerboard, under the column ``titles``."""
    from PIL import Image, ImageDraw

    gap, head = 12, 22
    f = max(c.shape[0] for row in rows for c in row)
    block = f * cell
    sheet = Image.new("RGB", (label_w + len(titles) * (block + gap) - gap, head + len(rows) * cell), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for b, title in enumerate(titles):
        draw.text((label_w + b * (block + gap) + 4, 5), title, fill=(0, 0, 0))
    for r, (caption, clips) in enumerate(zip(captions, rows)):
        y = head + r * cell
        draw.text((4, y + cell // 2 - 6), caption[:24], fill=(0, 0, 0))
        for b, clip in enumerate(clips):
            small = fit_canvas(clip, cell, cell, pad=False)  # (F, cell, cell, 4)
            sheet.paste(Image.fromarray(grid_image([small])), (label_w + b * (block + gap), y))
    return sheet


PREVIEW_FRAMES = 4  # evenly spaced frames a training preview shows of each clip: wide enough to fit the app's panel


def preview_frames(n: int, k: int = PREVIEW_FRAMES) -> list[int]:
    """``k`` evenly spaced frame indices of an ``n``-frame clip, first and last included (repeats if n < k)."""
    return [round(j * (n - 1) / max(k - 1, 1)) for j in range(k)]


def sample_grid(unet, vae, scale, cache, ids, req, path: Path, n: int = 2, steps: int = 10, scheduler: str = "dpm",
                **card_fields) -> Path:
    """Training preview: t2v samples for the first ``n`` validation captions beside the real clips they caption
    (decoded from the run's latent cache), saved as one labelled PNG; drawn the way the finished model will draw
    them (its draft size, its sampler; ``card_fields``: other ModelCard fields, e.g. a style tag)."""
    from rdtf_engine.core.config import ModelCard
    from rdtf_engine.model.autoencoder import decode_latents, tensor_to_rgba
    from rdtf_engine.model.text import get_text_encoder

    device = next(unet.parameters()).device
    card = ModelCard(name="preview", preset=req.preset, size=req.size, num_frames=req.num_frames, latent_scale=scale,
                     draft_size=int(req.draft_size or 0), **card_fields)
    # PyTorch on the CPU: the weights change between previews, an ONNX export per preview would cost more than it saves
    pipe = StickerPipeline(unet, vae, card, get_text_encoder(card.text, device), device, cpu_runtime="torch")
    shown, captions, rows = list(ids)[:n], [], []
    for k, i in enumerate(shown):
        fake = pipe(SampleParams(cache.captions[i], req.num_frames, req.size, steps, seed=k, scheduler=scheduler))
        frames = [cache.offsets[i] + j for j in preview_frames(cache.lengths[i])]
        real = tensor_to_rgba(decode_latents(vae, cache.latents[frames].float(), scale))  # (4, size, size, 4)
        captions.append(cache.captions[i])
        rows.append([real, fake[preview_frames(len(fake))]])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    labelled_sheet(captions, rows, ("real", "drawn now"), cell=min(96, int(req.size))).save(tmp)
    tmp.replace(path)
    unet.train()
    return path
