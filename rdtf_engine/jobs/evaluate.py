"""``rdtf eval``: one JSON report for a model on held-out data (docs/results.md explains every number).

No pretrained FVD / VQA / CLIP network is available offline, so the report is built from our own data:
- per-task validation denoising loss on the held-out clips (t2v, it2v, interpolation, prediction);
- text→video samples for the held-out captions → motion adherence (a motion classifier trained only on real
  procedural clips), Fréchet distance to the real clips in that classifier's feature space (FVD stand-in),
  alpha quality and temporal flicker;
- image&text→video samples given the held-out clip's first frame → identity (nearest emoji) and the same.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Log, Progress, never_stop, null_event
from rdtf_engine.core.requests import (
    DEFAULT_STRENGTH,
    SCHEDULERS,
    check_strength,
    model_guidance,
    model_image_guidance,
    with_refine_guidance,
)

_BANKS: dict[tuple[str, int], Any] = {}  # (data, size) → IdentityBank or None, see _identity_bank
CLASSIFIER_STEPS = {"cuda": 2000, "cpu": 150}  # CPU: a usable smoke-level classifier in ~a minute


def evaluate_model(model: str, data: str = "builtin:emoji-holdout", num_clips: int = 64, steps: int = 20,
                   seed: int = 0, device: str = "auto", on_event=null_event, should_stop=never_stop,
                   classifier_path: str | None = None, guidance: float | None = None,
                   grid_path: str | None = None, grid_rows: int = 8, grid_size: int | None = None,
                   grid_frames: int | None = None,
                   guidance_image: float | None = None, strength: float = DEFAULT_STRENGTH,
                   tasks: tuple[str, ...] = ("t2v", "it2v"), scheduler: str = "dpm",
                   val_loss: bool = True, refine_guidance: float | None = None) -> dict[str, Any]:
    """``scheduler``: the sampler (``requests.SCHEDULERS``); ``val_loss=False`` skips the held-out denoising
    loss, which does not depend on the sampler (a sampler sweep computes it once at most).
    ``grid_path``: also save a PNG of the first ``grid_rows`` held-out prompts, each as a real clip row
    (8 evenly spaced frames), its text→video sample and its image&text→video sample (the model card's grid);
    ``grid_size``: every clip enlarged to that side first by the export upscaler, as a platform export shows it
    (the model card's 512 px sheet); ``grid_frames``: that many evenly spaced frames per row instead of all;
    ``.jpg`` / ``.webp`` paths are written in that format (a 512 px sheet as PNG is tens of MB).
    ``tasks``: which samples to draw (a sampling-settings sweep on ``builtin:emoji-dev`` may want only it2v);
    a skipped task reports ``None``. ``refine_guidance``: a model with a draft size refines text → video at this
    guidance instead of its card's (``ModelCard.refine_guidance``)."""
    from rdtf_engine.data.latent_cache import build_latent_cache
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.diffusion.pipeline import StickerPipeline
    from rdtf_engine.diffusion.schedule import training_scheduler
    from rdtf_engine.eval.metrics import IdentityBank, evaluate_clips, reference_identity_accuracy
    from rdtf_engine.jobs.api import resolve_or_demo
    from rdtf_engine.training.heldout_loss import validation_loss

    _check_settings(tasks, strength, grid_rows, grid_size, grid_frames, scheduler)
    t0, cpu0 = time.time(), time.process_time()
    model_dir = resolve_or_demo(model, on_event, should_stop)
    pipe = StickerPipeline.from_pretrained(model_dir, device)
    pipe.card = with_refine_guidance(pipe.card, refine_guidance)
    card, dev = pipe.card, pipe.device
    guidance = model_guidance(card, guidance)  # None: the model's own, as generate draws it
    guidance_image = model_image_guidance(card, guidance_image)
    refs_src = open_source(data, card.size, num_clips=num_clips, seed=seed)
    refs = [refs_src[i] for i in range(min(num_clips, len(refs_src)))]
    style = style_tag(card, data)
    on_event(Log("info", f"eval: {len(refs)} held-out clips of {data} at {card.size} px on {dev}"))

    val = None
    if val_loss:
        cache = build_latent_cache(refs, pipe.vae, pipe.scale, dev)
        val = validation_loss(pipe.unet, cache, list(range(len(refs))), pipe.text,
                              training_scheduler(card.diffusion), card.num_frames, dual_mask=True, seed=1234)

    classifier = _classifier(classifier_path, data, dev, on_event)
    n_frames = card.num_frames
    settings = {"steps": steps, "guidance_text": guidance, "scheduler": scheduler}
    t2v, it2v = _draw_samples(pipe, refs, tasks, style, seed, settings,
                              {"guidance_image": guidance_image, "strength": strength}, on_event, should_stop)

    bank = _identity_bank(data, card.size, refs_src, IdentityBank)
    report: dict[str, Any] = {
        "model": str(model_dir), "model_name": card.name, "preset": card.preset, "temporal": card.temporal,
        "dual_mask": card.dual_mask, "curriculum": card.curriculum, "train_steps": card.steps,
        "data": data, "prompt_suffix": style, "clips": len(refs), "sample_steps": steps, "scheduler": scheduler,
        "guidance_text": guidance, "guidance_image": guidance_image, "strength": strength, "seed": seed,
        "refine_guidance": card.refine_guidance if card.draft_size else None,
        "refine_sampler": (card.refine_sampler or None) if card.draft_size else None, "val_loss": val,
        "t2v": evaluate_clips(t2v, refs, classifier, identity_bank=bank) if "t2v" in tasks else None,
        "it2v": evaluate_clips(it2v, refs, classifier, identity_bank=bank, given_first=True)
        if "it2v" in tasks else None,
        "classifier": getattr(classifier, "summary", {}),
        "seconds": round(time.time() - t0, 1),
        "cpu_seconds": round(time.process_time() - cpu0, 1),  # this process's CPU time (all its threads)
    }
    if bank is not None and report["it2v"] is not None:
        report["it2v"]["reference_identity_accuracy"] = reference_identity_accuracy(refs, bank, n_frames)
    if data.startswith("builtin:emoji"):
        name_emoji_misses(report)
    if grid_path and t2v and it2v:
        report["grid"] = _save_grid(grid_path, refs, t2v, it2v, grid_rows, grid_size, grid_frames)
    return report


def _check_settings(tasks, strength, grid_rows, grid_size, grid_frames, scheduler) -> None:
    unknown = set(tasks) - {"t2v", "it2v"}
    if unknown or not tasks:
        raise InputError(f"eval tasks must be t2v and/or it2v, got {', '.join(tasks) or 'none'}")
    check_strength(strength)
    if grid_rows < 1 or (grid_size is not None and not 16 <= grid_size <= 2048) or (grid_frames or 1) < 1:
        raise InputError(f"grid: rows ≥ 1, size 16–2048 px and frames ≥ 1, "
                         f"got {grid_rows}, {grid_size}, {grid_frames}")
    if scheduler not in SCHEDULERS:
        raise InputError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")


def _draw_samples(pipe, refs, tasks, style: str, seed: int, settings: dict, given: dict, on_event,
                  should_stop) -> tuple[list[Clip], list[Clip]]:
    """One text → video and one image & text → video sample per held-out clip (seed + its index), with the
    ``settings`` (steps, text guidance, sampler) both share and the ``given`` frame's (image guidance, strength)."""
    from rdtf_engine.diffusion.pipeline import SampleParams

    card, t2v, it2v = pipe.card, [], []
    n_frames = card.num_frames
    for i, ref in enumerate(refs):
        if should_stop():
            break
        labels = {k: ref.labels[k] for k in ("motion", "object", "emoji", "split") if k in ref.labels}
        if "t2v" in tasks:
            fr = pipe(SampleParams(ref.caption + style, n_frames, card.size, seed=seed + i, **settings))
            t2v.append(Clip(fr, [100] * n_frames, ref.caption, dict(labels)))
        if "it2v" in tasks:
            cond = [ref.frames[0]] + [None] * (n_frames - 1)
            fr = pipe(SampleParams(ref.caption + style, n_frames, card.size, seed=seed + i, cond_frames=cond,
                                   **settings, **given))
            # Only the generated frames: the given frame 0 comes back verbatim and would make identity trivial.
            it2v.append(Clip(fr[1:], [100] * (n_frames - 1), ref.caption, dict(labels)))
        on_event(Progress("eval", i + 1, len(refs)))
    return t2v, it2v


def style_tag(card, data: str) -> str:
    """The caption suffix a model learnt for ``data``'s style: a model trained on ``builtin:mixed`` (its card's
    ``data_summary.fluent_style``) or with style deltas for it (``card.style_tag``) reaches the Fluent look only
    with that tag, so real Fluent clips are prompted with it; everything else as captioned."""
    summary = card.data_summary or {}
    tag = (getattr(card, "style_tag", "") or summary.get("fluent_style")) if data.startswith("builtin:fluent") else None
    return f", {tag}" if tag else ""


def _identity_bank(data: str, size: int, refs_src, bank_cls):
    """The identity bank of a source's sprites, built once per (data, size) in a process: building it renders
    every sprite of the set, which costs more than sampling a few clips (a sampler sweep evaluates many times)."""
    key = (data, int(size))
    if key not in _BANKS:
        bank = None
        if hasattr(refs_src, "identity_sprites"):
            try:
                bank = bank_cls.from_sprites(refs_src.identity_sprites())
            except ValueError:
                bank = None
        _BANKS[key] = bank
    return _BANKS[key]


def name_emoji_misses(report: dict[str, Any]) -> None:
    """Add ``found_name`` to each identity miss of a builtin:emoji report (the bank's ids are hex code points):
    "ram" for a sheep tells a near-twin from a lost identity at a glance."""
    from rdtf_engine.data.emoji import emoji_name

    for part in (report.get("t2v"), report.get("it2v")):
        for miss in (part or {}).get("identity_misses", []):
            miss["found_name"] = emoji_name(int(miss["found"], 16)) if miss["found"] else None


def _save_grid(path: str, refs: list[Clip], t2v: list[Clip], it2v: list[Clip], rows: int,
               size: int | None = None, frames: int | None = None) -> dict[str, Any]:
    """Rows of (real, t2v, it2v) per prompt; it2v shows the given frame first, as the user would see it."""
    import io

    import numpy as np
    from PIL import Image

    from rdtf_engine.core.atomic import write_bytes_atomic
    from rdtf_engine.data.keyframes import uniform_keyframes
    from rdtf_engine.diffusion.sheets import grid_image
    from rdtf_engine.eval.pack_metrics import EXPORT_UPSCALER
    from rdtf_engine.platforms.upscale import resize_frames

    def shown(clip: np.ndarray) -> np.ndarray:  # (F, H, W, 4) → the frames the sheet shows, at the sheet's size
        if frames:
            clip = clip[uniform_keyframes(len(clip), min(frames, len(clip)))]
        if size and clip.shape[1] != size:
            clip = resize_frames(np.ascontiguousarray(clip), size, size, EXPORT_UPSCALER)
        return clip

    n_frames = t2v[0].frames.shape[0]
    clips, captions = [], []
    for ref, a, b in list(zip(refs, t2v, it2v))[:rows]:
        real = ref.frames[uniform_keyframes(ref.num_frames, n_frames)]
        clips += [shown(real), shown(a.frames), shown(np.concatenate([ref.frames[:1], b.frames]))]
        captions.append(ref.caption)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(Path(path).suffix.lower(), "PNG")
    buf = io.BytesIO()
    Image.fromarray(grid_image(clips)).save(buf, format=fmt, **({"quality": 90} if fmt != "PNG" else {}))
    write_bytes_atomic(path, buf.getvalue())
    return {"path": str(path), "rows": "per prompt: real clip, text→video, image&text→video",
            "frames": int(frames or n_frames), "size": int(size or clips[0].shape[1]), "captions": captions}


def _classifier(path: str | None, data: str, dev: torch.device, on_event):
    """Load the motion classifier, or train one on the *training* split of the same family and cache it."""
    from rdtf_engine.core.paths import resources_dir, user_cache_dir
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.eval.classifier import load_classifier, save_classifier, train_motion_classifier

    # Real clips (Fluent, mixed) carry no motion label: the procedural classifier serves as their feature space
    # (Fréchet distance), its motion accuracy is then None.
    family = "builtin:emoji" if data.startswith(("builtin:emoji", "builtin:fluent", "builtin:mixed")) else data
    name = f"motion-classifier-{family.replace(':', '-').replace('/', '_')}"
    folder = Path(path) if path else resources_dir() / "eval" / name  # shipped: the model card's classifier
    if not path and not (folder / "motion_classifier.safetensors").is_file():
        folder = user_cache_dir() / name  # trained on first use, then cached
    if (folder / "motion_classifier.safetensors").is_file():
        return load_classifier(folder, dev)
    steps = CLASSIFIER_STEPS["cuda" if dev.type == "cuda" else "cpu"]
    on_event(Log("info", f"training the motion classifier on real {family} clips ({steps} steps), cached in {folder}"))
    src = open_source(family, 64, num_clips=2048 if dev.type == "cuda" else 128, seed=99)
    small = {} if dev.type == "cuda" else {"input_size": 32, "width": 16}  # CPU: ~10× cheaper per step
    clf = train_motion_classifier(src, steps, dev, max_clips=len(src), **small)
    save_classifier(clf, folder)
    return clf


def summarize(report: dict[str, Any]) -> dict[str, Any]:
    """The handful of numbers docs/results.md tabulates."""
    def g(d, *ks):
        for k in ks:
            d = (d or {}).get(k)
        return d

    return {"val_loss": g(report, "val_loss", "all"), "val_t2v": g(report, "val_loss", "t2v"),
            "val_it2v": g(report, "val_loss", "it2v"), "val_interp": g(report, "val_loss", "interpolation"),
            "val_pred": g(report, "val_loss", "pred_forward"),
            "motion_acc": g(report, "t2v", "motion_accuracy"), "fd": g(report, "t2v", "frechet_distance"),
            "fd_floor": g(report, "t2v", "frechet_distance_reference_halves"),
            "identity_acc": g(report, "it2v", "identity_accuracy"),
            "identity_ref": g(report, "it2v", "reference_identity_accuracy"),
            "alpha_semi": g(report, "t2v", "alpha_semi_share", "generated"),
            "flicker": g(report, "t2v", "background_flicker", "generated")}


__all__ = ["evaluate_model", "summarize"]
