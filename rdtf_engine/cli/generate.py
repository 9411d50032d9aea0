"""``rdtf generate``: text (+ given frames) → animated sticker."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from rdtf_engine.cli.reporter import Reporter
from rdtf_engine.core.errors import InputError, RdtfError
from rdtf_engine.core.events import Finished
from rdtf_engine.core.requests import (
    DEFAULT_GUIDANCE_IMAGE,
    DEFAULT_GUIDANCE_TEXT,
    DEFAULT_STRENGTH,
    SCHEDULERS,
    GenerateRequest,
    PrepareRequest,
)

GUIDANCE_HELP = (f"text guidance scale (default: the model's own, saved by its training recipe; else "
                 f"{DEFAULT_GUIDANCE_TEXT:g})")
IMAGE_GUIDANCE_HELP = (f"image guidance scale for given frames (default: the model's own, saved by its training run; "
                       f"else {DEFAULT_GUIDANCE_IMAGE:g})")


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame numbers, got {text!r}") from exc


def cmd_generate(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.api import generate, load_frame

    if args.keep and not args.from_clip:
        raise InputError("--keep needs --from CLIP (the clip whose frames are kept)")
    req = GenerateRequest(prompt=args.prompt, model=args.model, frames=args.frames, size=args.size,
                          steps=args.steps, seed=args.seed, guidance_text=args.guidance,
                          guidance_image=args.image_guidance, strength=args.strength, scheduler=args.scheduler,
                          duration_ms=args.duration, init_image=args.init, out=args.out, device=args.device)
    req.validate()  # every value checked before any file is decoded or a model loaded
    with tempfile.TemporaryDirectory(prefix="rdtf-keep-") as tmp:
        req.cond_frames = _kept_frames(args, Path(tmp)) if args.from_clip else []
        if args.init:
            load_frame(args.init, args.size)  # fail early with a clear message
        res = generate(req, rep, rep.should_stop)
    rep(Finished({"out": res.out, "frames": len(res.frames), "seed": res.recipe["seed"], "model": res.recipe["model"]}))
    return 0


def _kept_frames(args, folder: Path) -> list[Any]:
    """--from CLIP --keep i,j → condition slots: the kept frames saved as PNGs in ``folder``, None elsewhere."""
    from PIL import Image

    from rdtf_engine.formats.loader import load_clip
    from rdtf_engine.formats.timing import resample_clip

    clip = load_clip(args.from_clip)
    if clip.num_frames != args.frames:
        clip = resample_clip(clip, args.frames)
    frames = clip.frames
    if len(frames) != args.frames:  # resample_clip only drops frames: a shorter clip is stretched by repeats
        frames = frames[[k * len(frames) // args.frames for k in range(args.frames)]]
    keep = args.keep if args.keep else list(range(args.frames))
    bad = [k for k in keep if not 0 <= k < args.frames]
    if bad:
        raise InputError(f"--keep frames {bad} are outside 0..{args.frames - 1}")
    cond: list[Any] = [None] * args.frames
    for k in keep:
        p = folder / f"{k:03d}.png"
        Image.fromarray(frames[k], "RGBA").save(p)
        cond[k] = str(p)
    return cond


def add_generate_parser(sub) -> None:
    g = sub.add_parser("generate", help="text (+ frames) → animated sticker")
    g.add_argument("--prompt", required=True)
    g.add_argument("--model", default="default", help="default, a model name, a model folder or a run folder")
    g.add_argument("--frames", type=int, default=8)
    g.add_argument("--size", type=int, default=None,
                   help="pixels (default: the model's training size; other sizes are sampled at it and resampled)")
    g.add_argument("--steps", type=int, default=None,
                   help="denoising steps (default: 10 for text alone with UniPC, else 20)")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--guidance", type=float, default=None, help=GUIDANCE_HELP)
    g.add_argument("--image-guidance", type=float, default=None, help=IMAGE_GUIDANCE_HELP)
    g.add_argument("--strength", type=float, default=DEFAULT_STRENGTH,
                   help="given frames: share of the steps run from their noised copy (lower keeps more of "
                        "the picture, allows less motion)")
    g.add_argument("--scheduler", "--sampler", dest="scheduler", choices=SCHEDULERS, default=None,
                   help="the sampler: dpm (DPM-Solver++ 2M), unipc (UniPC), ddim (the paper's, η = 1) or lcm (a "
                        "model distilled with rdtf train --objective consistency: its few unguided steps); default: "
                        "unipc for text alone, dpm with a start image or kept frames")
    g.add_argument("--duration", type=int, default=100, help="ms per frame")
    g.add_argument("--init", default=None, help="start image (image&text → video)")
    g.add_argument("--keep", type=_int_list, default=None, help="frames of --from to keep, e.g. 0,7")
    g.add_argument("--from", dest="from_clip", default=None, help="clip whose --keep frames are locked")
    g.add_argument("--out", required=True, help=".gif, .png (APNG), .webp, .webm or a folder for PNG frames")
    g.add_argument("--device", default="auto")
    g.set_defaults(func=cmd_generate)


def cmd_prepare(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.api import prepare

    req = PrepareRequest(model=args.model, frames=args.frames, size=args.size or _model_size(args.model),
                         given=args.given, scheduler=args.scheduler, device=args.device)
    req.validate()
    rep(Finished(prepare(req, rep, rep.should_stop)))
    return 0


def add_prepare_parser(sub) -> None:
    p = sub.add_parser("prepare", help="load a model and build what its stickers are drawn with at these shapes "
                                       "(the CPU runtime's exported and compiled graphs are cached for later runs)")
    p.add_argument("--model", default="default", help="default, a model name, a model folder or a run folder")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=None, help="pixels (default: the model's training size)")
    p.add_argument("--given", action="store_true", help="for stickers drawn from a given start image or kept frames")
    p.add_argument("--sampler", dest="scheduler", choices=SCHEDULERS, default=None,
                   help="the sampler the stickers will use (default: the task's)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_prepare)


def _model_size(model: str) -> int:
    """The model's own training size is the best default output size; 256 if it cannot be read yet."""
    try:
        from rdtf_engine.core.model_folder import resolve_model, validate_model_folder  # (torch-free)

        return int(validate_model_folder(resolve_model(model)).size)
    except RdtfError:
        return 256 if model == "default" and _has_default() else 64


def start_prefetch(args) -> int:
    """On a CPU, begin compiling the OpenVINO graphs this same request compiled last time while the engine imports
    (``diffusion/graph_prefetch``: ≈ 0.8 s a graph off a cold command) → how many; never fails the command."""
    from rdtf_engine.diffusion.graph_prefetch import start_for_request

    return start_for_request(args.model, args.frames, args.size, bool(args.init or args.from_clip), args.device)


def _has_default() -> bool:
    from rdtf_engine.core.paths import builtin_models_dir

    return (builtin_models_dir() / "default" / "config.json").is_file()
