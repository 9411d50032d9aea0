"""``rdtf models``, ``rdtf eval`` and ``rdtf eval-pack``."""

from __future__ import annotations

import json
import sys

from rdtf_engine.cli.generate import GUIDANCE_HELP, IMAGE_GUIDANCE_HELP
from rdtf_engine.cli.reporter import Reporter
from rdtf_engine.core.events import Finished
from rdtf_engine.core.requests import DEFAULT_STRENGTH, SCHEDULERS


def cmd_models(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.api import list_models

    models = list_models()
    if args.json or rep.mode == "jsonl":
        print(json.dumps(models, indent=None if rep.mode == "jsonl" else 2))
        return 0
    bad = [m for m in models if m.get("error")]
    models = [m for m in models if not m.get("error")]
    for m in bad:  # one line each, on stderr: the good models stay listed and parseable on stdout
        print(f"skipped {m['path']}: {m['error']}", file=sys.stderr)
    if not models:
        print("no models installed (train one with `rdtf train`)")
    for m in models:
        tag = "shipped" if m.get("builtin") else ("run" if m.get("run") else "user")
        mb = (m.get("bytes") or 0) / 2**20
        print(f"{m['name']:<24} {tag:<8} preset={m.get('preset')} {m.get('size')}px {m.get('num_frames')}f "
              f"steps={m.get('steps')} data={m.get('data')} {mb:.1f} MB  {m['path']}")
    return 0


def cmd_eval(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.evaluate import evaluate_model

    if args.pack_project:  # identity across a pack made with `rdtf pack new` (the same as `rdtf pack eval`)
        from rdtf_engine.jobs.pack_identity import evaluate_packs

        pack, text = evaluate_packs(args.pack_project, args.device, args.classifier, Reporter(rep.mode, sys.stderr))
        print(json.dumps(pack, ensure_ascii=False, indent=2) if args.json else text)
        return 0
    if args.json:
        rep.stream = sys.stderr
    report = evaluate_model(args.model, args.data, num_clips=args.clips, steps=args.steps, seed=args.seed,
                            device=args.device, on_event=rep, should_stop=rep.should_stop,
                            classifier_path=args.classifier, grid_path=args.grid, grid_rows=args.grid_rows,
                            grid_size=args.grid_size, grid_frames=args.grid_frames,
                            guidance=args.guidance, guidance_image=args.image_guidance, strength=args.strength,
                            tasks=tuple(t for t in args.tasks.split(",") if t), scheduler=args.scheduler,
                            refine_guidance=args.refine_guidance)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        rep(Finished(report))
    return 0


def cmd_eval_pack(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.eval_pack import evaluate_pack_model

    if args.json:
        rep.stream = sys.stderr
    report = evaluate_pack_model(args.model, args.pack, steps=args.steps, seed=args.seed, device=args.device,
                                 style=args.style, stickers=args.stickers, sheet_path=args.sheet,
                                 guidance=args.guidance, guidance_image=args.image_guidance,
                                 strength=args.strength, size=args.size, on_event=rep, should_stop=rep.should_stop,
                                 refine_guidance=args.refine_guidance)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        rep(Finished(report))
    return 0


def _sampling_args(p) -> None:
    """The guidance and strength flags that ``eval`` and ``eval-pack`` share."""
    p.add_argument("--guidance", type=float, default=None, help=GUIDANCE_HELP)
    p.add_argument("--image-guidance", type=float, default=None, help=IMAGE_GUIDANCE_HELP)
    p.add_argument("--strength", type=float, default=DEFAULT_STRENGTH, help="it2v img2img strength (0, 1]")
    p.add_argument("--refine-guidance", type=float, default=None, metavar="G",
                   help="a model with a draft size: the text guidance of text → video's refinement (0 = the "
                        "sample's own; default: the model's card)")


def add_model_parsers(sub) -> None:
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
    e.add_argument("--grid", default=None, help="also save a PNG grid of real / t2v / it2v held-out samples "
                   "(.jpg / .webp: that format)")
    e.add_argument("--grid-rows", type=int, default=8, help="held-out prompts in the grid")
    e.add_argument("--grid-size", type=int, default=None,
                   help="enlarge every clip to this side with the export upscaler first (512: as exported)")
    e.add_argument("--grid-frames", type=int, default=None, help="evenly spaced frames per row (default: all)")
    _sampling_args(e)
    e.add_argument("--tasks", default="t2v,it2v", help="which samples to draw: t2v, it2v or both (default)")
    e.add_argument("--pack-project", default=None, nargs="+", metavar="DIR",
                   help="instead: identity and motion agreement across pack folders (rdtf pack eval)")
    e.add_argument("--scheduler", "--sampler", dest="scheduler", choices=SCHEDULERS, default="dpm",
                   help="the sampler the samples are drawn with")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval)

    p = sub.add_parser("eval-pack", help="how well a model draws a sticker pack's own stickers (identity, motion, "
                                         "sharpness, colour; docs/results.md)")
    p.add_argument("--model", default="default", help="model folder or name, or a training run")
    p.add_argument("--pack", required=True, help="folder or zip of 4-200 stickers (captions.csv or file names)")
    p.add_argument("--steps", type=int, default=20, help="sampling steps per sticker")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", default="auto",
                   help="suffix of every prompt (auto: the style token the model was fine-tuned with, if any)")
    p.add_argument("--stickers", type=int, default=0, help="draw only the first N stickers (0 = all)")
    p.add_argument("--sheet", default=None, help="also save a PNG sheet: real | text→video | image&text→video")
    p.add_argument("--device", default="auto")
    p.add_argument("--size", type=int, default=0,
                   help="draw and compare at this size: 0 = the model's own (default), or its draft size (its "
                        "draft network alone)")
    _sampling_args(p)
    p.add_argument("--json", action="store_true", help="print the whole report as JSON on stdout")
    p.set_defaults(func=cmd_eval_pack)
