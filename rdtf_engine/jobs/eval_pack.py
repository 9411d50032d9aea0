"""``rdtf eval-pack``: does a model draw *my* stickers? One JSON report (and a sample sheet) for a model on a pack.

For every sticker of the pack, its caption (captions.csv, else its file name, as the importer derives it) plus
the pack style token the model was fine-tuned with is drawn twice: text → video, and image & text → video
from the sticker's first frame. The samples are scored against the pack's real stickers with the metrics of
``eval/pack_metrics.py`` (identity top-1/top-3 against chance, motion, loop seam, frozen / flicker counts,
sharpness at export size, colour distance), each beside the real pack's own value or spread, plus the
identity controls that show the descriptor works on this pack (real stickers moved: 100 %; blobs: chance).
docs/results.md ("Your pack: evaluation") explains every number.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np

from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Log, Progress, never_stop, null_event
from rdtf_engine.core.requests import (
    DEFAULT_STRENGTH,
    check_strength,
    model_guidance,
    model_image_guidance,
    with_refine_guidance,
)
from rdtf_engine.diffusion.pipeline import SampleParams

SHEET_CELL = 96


def style_token(card, style: str) -> str:
    """"auto": the token the model's pack fine-tune used (its card's data summary), else none."""
    if style != "auto":
        return style
    return str((card.data_summary or {}).get("style_token") or "")


def evaluate_pack_model(model: str, pack: str, steps: int = 20, seed: int = 0, device: str = "auto",
                        style: str = "auto", stickers: int = 0, sheet_path: str | None = None,
                        guidance: float | None = None, guidance_image: float | None = None,
                        strength: float = DEFAULT_STRENGTH, size: int = 0, on_event=null_event,
                        should_stop=never_stop, refine_guidance: float | None = None) -> dict[str, Any]:
    """``stickers`` > 0 draws samples for the first that many stickers only (a quicker CPU run); identity is
    still ranked against the whole pack. ``size``: 0 = the model's own; a model with a draft size may be asked for
    that one, and then draws with its draft network alone (what a fine-tune that did not keep the base's native
    size would make), compared with the real stickers at that size. ``refine_guidance``: text → video's refinement
    guidance instead of the card's (``ModelCard.refine_guidance``)."""
    from rdtf_engine.data.keyframes import loop_frames
    from rdtf_engine.data.pack_windows import load_pack_clips
    from rdtf_engine.diffusion.pipeline import StickerPipeline
    from rdtf_engine.eval.pack_metrics import evaluate_pack, identity_controls
    from rdtf_engine.jobs.api import resolve_or_demo

    if int(steps) < 1 or int(stickers) < 0:
        raise InputError("steps must be at least 1 and stickers at least 0")
    check_strength(strength)
    t0 = time.time()
    model_dir = resolve_or_demo(model, on_event, should_stop)
    pipe = StickerPipeline.from_pretrained(model_dir, device)
    pipe.card = with_refine_guidance(pipe.card, refine_guidance)
    card, n_frames = pipe.card, pipe.card.num_frames
    guidance = model_guidance(card, guidance)  # None: the model's own, as generate draws it
    guidance_image = model_image_guidance(card, guidance_image)
    size = int(size) or int(card.size)
    if size != int(card.size):
        if size != int(card.draft_size or 0):
            raise InputError(f"size must be 0, the model's own ({card.size}) or its draft size"
                             f"{f' ({card.draft_size})' if card.draft_size else ' (it has none)'}, got {size}")
        # the pipeline draws at its card's size: at the draft size, with no draft stage, the network is the
        # draft network exactly (size deltas act only off the draft-size grid)
        pipe.card = card = dataclasses.replace(card, size=size, draft_size=0)
    clips = load_pack_clips(pack, size)
    token = style_token(card, style)
    chosen = list(range(len(clips)))[: stickers or None]
    on_event(Log("info", f"eval-pack: {len(chosen)} of {len(clips)} stickers at {size} px on {pipe.device}, "
                         f"prompts end with {token!r}" if token else "eval-pack: no style token"))
    # (F, S, S, 4) each: F frames over one period of the sticker's loop, so that the real loop seam (last → first)
    # spans as many frames as every other step (with both ends kept it would be a 1-frame step, not a seam)
    real = [c.frames[loop_frames(c.num_frames, n_frames)] for c in clips]
    t2v, it2v = [], []
    for k, i in enumerate(chosen):
        if should_stop():
            break
        prompt = clips[i].caption + token
        t2v.append(pipe(SampleParams(prompt, n_frames, size, steps, seed=seed + i, guidance_text=guidance)))
        cond = [clips[i].frames[0]] + [None] * (n_frames - 1)
        it2v.append(pipe(SampleParams(prompt, n_frames, size, steps, seed=seed + i, guidance_text=guidance,
                                      guidance_image=guidance_image, cond_frames=cond, strength=strength)))
        on_event(Progress("eval-pack", k + 1, len(chosen), clips[i].caption))
    done = chosen[: len(t2v)]
    captions = [c.caption for c in clips]
    report: dict[str, Any] = {
        "model": card.name, "base_model": card.base_model or None, "train_steps": card.steps,
        "pack": _pack_name(pack), "stickers": len(clips), "sampled": len(done), "size": size,
        "frames": n_frames, "sample_steps": steps, "seed": seed, "guidance_text": guidance,
        "guidance_image": guidance_image, "strength": strength, "style_token": token,
        "refine_guidance": card.refine_guidance if card.draft_size else None,
        "refine_sampler": (card.refine_sampler or None) if card.draft_size else None,
        "prompts": [captions[i] + token for i in done],
        "controls": {"descriptor": identity_controls(real), "shape": identity_controls(real, shape_only=True)},
        "t2v": evaluate_pack(real, t2v, done, captions) if done else None,
        # identity from the generated frames only: the given frame 0 comes back verbatim
        "it2v": evaluate_pack(real, it2v, done, captions, identity_frames=slice(1, None)) if done else None,
    }
    if sheet_path and done:
        report["sheet"] = save_sheet(sheet_path, [real[i] for i in done], t2v, it2v, [captions[i] for i in done])
    report["seconds"] = round(time.time() - t0, 1)
    return report


def _pack_name(pack: str) -> str:
    """The pack's folder or zip name (no local path: reports get shared)."""
    from pathlib import Path

    return Path(pack).name or str(pack)


def save_sheet(path: str, real: list[np.ndarray], t2v: list[np.ndarray], it2v: list[np.ndarray],
               captions: list[str], cell: int = SHEET_CELL) -> dict[str, Any]:
    """One row per sticker: its caption, then real | text→video | image&text→video frames at ``cell`` px on a
    checkerboard, written atomically as a PNG."""
    import io

    from rdtf_engine.core.atomic import write_bytes_atomic
    from rdtf_engine.diffusion.sheets import labelled_sheet

    titles = ("real sticker", "text -> video", "image & text -> video")  # (the default font has no arrow)
    sheet = labelled_sheet(captions, list(zip(real, t2v, it2v)), titles, cell)
    buf = io.BytesIO()
    sheet.save(buf, format="PNG", optimize=True)
    write_bytes_atomic(path, buf.getvalue())
    return {"path": str(path), "rows": len(real), "cell_px": cell,
            "columns": "real sticker (evenly spaced frames) | text→video | image&text→video (given frame first)"}


__all__ = ["evaluate_pack_model", "save_sheet", "style_token"]
