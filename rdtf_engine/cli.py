"""``python -m rdtf_engine`` / ``rdtf``: everything the GUI does, headless.

Events print as human lines, or as JSON lines with ``--events jsonl``. Any RdtfError → one line
``error: <message>`` on stderr and exit code 2 (no traceback, nothing half-written: writers are atomic).
Ctrl-C / SIGTERM during training asks the loop to stop cooperatively, so a checkpoint is written first.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from . import __version__
from .errors import Cancelled, InputError, RdtfError
from .events import Failed, Finished, event_to_json, format_event
from .requests import DEFAULT_GUIDANCE_IMAGE, DEFAULT_GUIDANCE_TEXT, DEFAULT_STRENGTH, GenerateRequest, TrainRequest


class Reporter:
    """Turns events into output; owns the cooperative stop flag set by SIGINT/SIGTERM."""

    def __init__(self, mode: str, stream=None):
        self.mode = mode
        self.stream = stream  # None = stdout; --json commands send progress to stderr to keep stdout parseable
        self.stop = threading.Event()

    def __call__(self, event) -> None:
        if self.mode == "jsonl":
            print(event_to_json(event), flush=True)
            return
        line = format_event(event)
        if line is not None:
            print(line, file=sys.stderr if isinstance(event, Failed) else (self.stream or sys.stdout), flush=True)

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def install_signals(self) -> None:
        def handler(signum, _frame):
            if self.stop.is_set():
                raise KeyboardInterrupt
            self.stop.set()
            print("stopping after the current step (again to abort)…", file=sys.stderr, flush=True)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated frame numbers, got {text!r}") from exc


def cmd_generate(args, rep: Reporter) -> int:
    from .api import generate, load_frame

    if args.keep and not args.from_clip:
        raise InputError("--keep needs --from CLIP (the clip whose frames are kept)")
    cond: list[Any] = []
    tmp = None
    if args.from_clip:
        from PIL import Image

        from .io import load_clip, resample_clip

        clip = load_clip(args.from_clip)
        if clip.num_frames != args.frames:
            clip = resample_clip(clip, args.frames)
        keep = args.keep if args.keep else list(range(args.frames))
        bad = [k for k in keep if not 0 <= k < args.frames]
        if bad:
            raise InputError(f"--keep frames {bad} are outside 0..{args.frames - 1}")
        tmp = tempfile.TemporaryDirectory(prefix="rdtf-keep-")
        cond = [None] * args.frames
        for k in keep:
            p = Path(tmp.name) / f"{k:03d}.png"
            Image.fromarray(clip.frames[k], "RGBA").save(p)
            cond[k] = str(p)
    if args.init:
        load_frame(args.init, args.size)  # fail early with a clear message
    req = GenerateRequest(prompt=args.prompt, model=args.model, frames=args.frames, size=args.size,
                          steps=args.steps, seed=args.seed, guidance_text=args.guidance,
                          guidance_image=args.image_guidance, strength=args.strength, scheduler=args.scheduler,
                          duration_ms=args.duration, init_image=args.init, cond_frames=cond, out=args.out,
                          device=args.device)
    try:
        res = generate(req, rep, rep.should_stop)
    finally:
        if tmp is not None:
            tmp.cleanup()
    rep(Finished({"out": res.out, "frames": len(res.frames), "seed": res.recipe["seed"], "model": res.recipe["model"]}))
    return 0


def cmd_train(args, rep: Reporter) -> int:
    from .api import train

    if not args.data and not args.resume:
        raise InputError("--data is required (or --resume to continue the run in --out)")
    steps = args.steps if args.steps is not None else (0 if args.resume else 1000)
    base = None
    if args.init_from and not args.resume:  # a fine-tune inherits its model's architecture unless told otherwise
        from .train_setup import init_model

        base = init_model(args.init_from)[1]
    preset = args.preset or (base.preset if base else "tiny")
    size = args.size or (base.size if base else 64)
    temporal = args.temporal or (base.temporal if base else "sti")
    req = TrainRequest(data=args.data or "", out=args.out, preset=preset, steps=steps,
                       batch_size=args.batch_size, lr=args.lr, size=size, seed=args.seed, resume=args.resume,
                       dual_mask=not args.no_dual_mask, curriculum="none" if args.no_curriculum else args.curriculum,
                       temporal=temporal, reference_attention=args.reference_attention, autoencoder=args.autoencoder,
                       ae_steps=args.ae_steps,
                       init_from=args.init_from, continue_curriculum=args.continue_curriculum,
                       grad_accum=args.grad_accum, sample_every=args.sample_every,
                       checkpoint_every=args.checkpoint_every, max_minutes=args.max_minutes,
                       max_clips=args.max_clips, device=args.device, mixed_precision=args.mixed_precision)
    if not args.resume:
        req.validate()
    rep.install_signals()
    res = train(req, rep, rep.should_stop)
    rep(Finished(res))
    return 0


def cmd_train_autoencoder(args, rep: Reporter) -> int:
    from .data.sources import open_source
    from .train_autoencoder import train_autoencoder
    from .train_setup import resolve_device

    device, mp = resolve_device(args.device, "auto")
    source = open_source(args.data, args.size, num_clips=args.max_clips, seed=args.seed)
    rep.install_signals()
    _, scale = train_autoencoder(source, args.out, args.preset, args.steps, device, batch_size=args.batch_size,
                                 lr=args.lr, seed=args.seed, max_frames=args.max_frames, mixed_precision=mp,
                                 on_event=rep, should_stop=rep.should_stop, max_minutes=args.max_minutes)
    rep(Finished({"out": args.out, "latent_scale": scale}))
    return 0


def cmd_models(args, rep: Reporter) -> int:
    from .api import list_models

    models = list_models()
    if args.json or rep.mode == "jsonl":
        print(json.dumps(models, indent=None if rep.mode == "jsonl" else 2))
        return 0
    if not models:
        print("no models installed (train one with `rdtf train`)")
    for m in models:
        tag = "shipped" if m.get("builtin") else ("run" if m.get("run") else "user")
        mb = (m.get("bytes") or 0) / 2**20
        print(f"{m['name']:<24} {tag:<8} preset={m.get('preset')} {m.get('size')}px {m.get('num_frames')}f "
              f"steps={m.get('steps')} data={m.get('data')} {mb:.1f} MB  {m['path']}")
    return 0


def cmd_eval(args, rep: Reporter) -> int:
    from .eval.report import evaluate_model

    if args.json:
        rep.stream = sys.stderr
    report = evaluate_model(args.model, args.data, num_clips=args.clips, steps=args.steps, seed=args.seed,
                            device=args.device, on_event=rep, should_stop=rep.should_stop,
                            classifier_path=args.classifier, grid_path=args.grid,
                            guidance=args.guidance, guidance_image=args.image_guidance, strength=args.strength,
                            tasks=tuple(t for t in args.tasks.split(",") if t))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        rep(Finished(report))
    return 0


def cmd_worker(args, rep: Reporter) -> int:
    from .worker import main as worker_main

    return worker_main([])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rdtf", description="RDTF animated sticker engine (headless)")
    p.add_argument("--version", action="version", version=f"rdtf {__version__}")
    p.add_argument("--events", choices=("human", "jsonl"), default="human", help="how progress is printed")
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="text (+ frames) → animated sticker")
    g.add_argument("--prompt", required=True)
    g.add_argument("--model", default="default", help="default, a model name, a model folder or a run folder")
    g.add_argument("--frames", type=int, default=8)
    g.add_argument("--size", type=int, default=None,
                   help="pixels (default: the model's training size; other sizes are sampled at it and resampled)")
    g.add_argument("--steps", type=int, default=20)
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE_TEXT, help="text guidance scale")
    g.add_argument("--image-guidance", type=float, default=DEFAULT_GUIDANCE_IMAGE,
                   help="image guidance scale (given frames)")
    g.add_argument("--strength", type=float, default=DEFAULT_STRENGTH,
                   help="given frames: share of the steps run from their noised copy (lower keeps more of "
                        "the picture, allows less motion)")
    g.add_argument("--scheduler", choices=("dpm", "ddim"), default="dpm")
    g.add_argument("--duration", type=int, default=100, help="ms per frame")
    g.add_argument("--init", default=None, help="start image (image&text → video)")
    g.add_argument("--keep", type=_int_list, default=None, help="frames of --from to keep, e.g. 0,7")
    g.add_argument("--from", dest="from_clip", default=None, help="clip whose --keep frames are locked")
    g.add_argument("--out", required=True, help=".gif, .png (APNG), .webp, .webm or a folder for PNG frames")
    g.add_argument("--device", default="auto")
    g.set_defaults(func=cmd_generate)

    t = sub.add_parser("train", help="train a DFGN from scratch with dual masks + curriculum")
    t.add_argument("--data", default=None,
                   help="folder/zip of stickers, dataset folder, builtin:shapes, builtin:emoji (not with --resume)")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--preset", default=None, help="tiny | small | paper (default tiny, or --init-from's)")
    t.add_argument("--steps", type=int, default=None, help="total steps (default 1000; with --resume: the run's own)")
    t.add_argument("--batch-size", type=int, default=4)
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--size", type=int, default=None, help="frame size in px (default 64, or --init-from's)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--no-dual-mask", action="store_true", help="ablation: plain text→video on fixed-length clips")
    t.add_argument("--no-curriculum", action="store_true", help="same as --curriculum none")
    t.add_argument("--curriculum", choices=("none", "linear", "adaptive"), default="adaptive")
    t.add_argument("--temporal", choices=("sti", "conv3d"), default=None, help="default sti, or --init-from's")
    t.add_argument("--reference-attention", choices=("on", "off", "all"), default=None,
                   help="every frame's spatial attention also sees the given (or first) frame: keeps an image's "
                        "identity while it moves. on: the attention levels, no extra weights; all: also the levels "
                        "without attention, with a zero-initialised block each (default off, or --init-from's)")
    t.add_argument("--autoencoder", default=None, help="reuse a trained autoencoder folder")
    t.add_argument("--ae-steps", type=int, default=500)
    t.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from this model's weights (a model folder or name, e.g. default): fine-tune it on "
                        "your stickers with its own autoencoder, preset, temporal layer and size")
    t.add_argument("--continue-curriculum", action="store_true",
                   help="with --init-from on the same data: take up the base model's curriculum after its steps "
                        "instead of restarting it at the easy tasks (PAPER.md §4.2)")
    t.add_argument("--grad-accum", type=int, default=1)
    t.add_argument("--sample-every", type=int, default=0)
    t.add_argument("--checkpoint-every", type=int, default=100)
    t.add_argument("--max-minutes", type=float, default=0.0, help="stop cleanly after this long (chunked runs)")
    t.add_argument("--max-clips", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--mixed-precision", default="auto")
    t.set_defaults(func=cmd_train)

    a = sub.add_parser("train-autoencoder", help="train the RGBA autoencoder alone")
    a.add_argument("--data", required=True)
    a.add_argument("--out", required=True)
    a.add_argument("--preset", default="tiny")
    a.add_argument("--steps", type=int, default=1000)
    a.add_argument("--batch-size", type=int, default=16)
    a.add_argument("--lr", type=float, default=4e-4)
    a.add_argument("--size", type=int, default=64)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--max-frames", type=int, default=20000)
    a.add_argument("--max-clips", type=int, default=0)
    a.add_argument("--max-minutes", type=float, default=0.0, help="stop (and save) after this long")
    a.add_argument("--device", default="auto")
    a.set_defaults(func=cmd_train_autoencoder)

    m = sub.add_parser("models", help="list installed models")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=cmd_models)

    e = sub.add_parser("eval", help="evaluate a model on held-out data (metrics of docs/results.md)")
    e.add_argument("--model", default="default")
    e.add_argument("--data", default="builtin:emoji-holdout")
    e.add_argument("--clips", type=int, default=64)
    e.add_argument("--steps", type=int, default=20)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--classifier", default=None, help="motion classifier folder (trained if missing)")
    e.add_argument("--device", default="auto")
    e.add_argument("--grid", default=None, help="also save a PNG grid of real / t2v / it2v held-out samples")
    e.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE_TEXT, help="text guidance scale")
    e.add_argument("--image-guidance", type=float, default=DEFAULT_GUIDANCE_IMAGE, help="image guidance scale")
    e.add_argument("--strength", type=float, default=DEFAULT_STRENGTH, help="it2v img2img strength (0, 1]")
    e.add_argument("--tasks", default="t2v,it2v", help="which samples to draw: t2v, it2v or both (default)")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    w = sub.add_parser("worker", help="JSON-lines worker process for the app (docs/protocol.md)")
    w.set_defaults(func=cmd_worker)

    try:
        from .io.cli import add_cli
    except ImportError:  # pragma: no cover - io package always ships; keep the CLI usable if it breaks
        add_cli = None
    if add_cli is not None:
        add_cli(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    rep = Reporter(args.events)
    try:
        if getattr(args, "command", None) == "generate" and args.size is None:
            args.size = _model_size(args.model)
        return int(args.func(args, rep) or 0)
    except Cancelled as exc:
        rep(Failed("Cancelled", str(exc)))
        return exc.exit_code
    except RdtfError as exc:
        if rep.mode == "jsonl":
            rep(Failed(type(exc).__name__, str(exc)))
        else:
            print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130


def _model_size(model: str) -> int:
    """The model's own training size is the best default output size; 256 if it cannot be read yet."""
    try:
        from .model_store import resolve_model, validate_model_folder

        return int(validate_model_folder(resolve_model(model)).size)
    except RdtfError:
        return 256 if model == "default" and _has_default() else 64


def _has_default() -> bool:
    from .paths import builtin_models_dir

    return (builtin_models_dir() / "default" / "config.json").is_file()


if __name__ == "__main__":
    sys.exit(main())
