"""``rdtf eval-upscale`` (measure the export's upscalers) and ``rdtf train-upscaler`` (make the learned one)."""

from __future__ import annotations

import json

from rdtf_engine.cli.reporter import Reporter
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Finished, Log


def cmd_eval_upscale(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.eval_upscale import evaluate_upscalers
    from rdtf_engine.platforms.upscale import CANDIDATES

    cands = [c.strip() for c in args.candidates.split(",") if c.strip()]
    bad = sorted(set(cands) - set(CANDIDATES))
    if bad or not cands:
        raise InputError(f"unknown upscaler(s) {', '.join(bad) or '(none)'}; choices: {', '.join(CANDIDATES)}")
    if not 1 <= args.files <= 2000 or not 1 <= args.frames_per_file <= 32:
        raise InputError("eval-upscale needs 1 ≤ --files ≤ 2000 and 1 ≤ --frames-per-file ≤ 32")
    report = evaluate_upscalers(args.data, args.files, args.frames_per_file, cands, weights=args.weights,
                                seed=args.seed, sheet=args.sheet, tune_unsharp=args.tune_unsharp)
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    if "unsharp_tuning" in report:
        print(f"unsharp on validation frames: best {report['unsharp_tuning']['best']}")
    r = report["real"]
    print(f"{report['frames']} frames, {report['factor']}× back to {report['size']} px; real acutance "
          f"{r['acutance']:.4f}, real at {report['export_factor']}× size (Lanczos) {r['acutance_export']:.4f}")
    for name, c in report["candidates"].items():
        print(f"{name}: PSNR {c['psnr_db']:.2f} dB, alpha IoU {c['alpha_iou']:.4f}, acutance {c['acutance']:.4f}, "
              f"at {report['export_factor']}× {c['acutance_export']:.4f}")
    return 0


def cmd_train_upscaler(args, rep: Reporter) -> int:
    import torch

    from rdtf_engine.training.upscaler import train_upscaler

    if not 0 < args.max_minutes <= 600 or not 1 <= args.steps <= 10**7 or not 1 <= args.batch_size <= 1024:
        raise InputError("train-upscaler needs 0 < --max-minutes ≤ 600, 1 ≤ --steps, 1 ≤ --batch-size ≤ 1024")
    if args.threads:
        torch.set_num_threads(args.threads)
    summary = train_upscaler(args.out, minutes=args.max_minutes, max_steps=args.steps, batch=args.batch_size,
                             fluent_files=args.files, noto_clips=args.noto_clips, seed=args.seed,
                             on_step=lambda s, loss: rep(Log("info", f"step {s}: L1 {loss:.5f}"))
                             if s % 500 == 0 else None)
    rep(Finished({"out": args.out, **summary}))
    return 0


def add_upscale_parsers(sub) -> None:
    e = sub.add_parser("eval-upscale", help="measure the export's upscalers on held-out real frames: each enlarges "
                                            "half-size frames back (PSNR, alpha IoU, edge acutance)")
    e.add_argument("--data", default="builtin:fluent-holdout",
                   help="real frames to measure on, 256 px (default: the held-out Fluent files)")
    e.add_argument("--files", type=int, default=64, help="files (or clips) to take frames from")
    e.add_argument("--frames-per-file", type=int, default=2)
    e.add_argument("--candidates", default="lanczos,bicubic,unsharp,learned",
                   help="comma-separated: lanczos, bicubic, unsharp, learned")
    e.add_argument("--weights", default=None, metavar="FOLDER",
                   help="a learned upscaler folder from train-upscaler (default: the shipped one)")
    e.add_argument("--tune-unsharp", action="store_true",
                   help="first choose the unsharp setting on validation files of the Fluent training split")
    e.add_argument("--sheet", default=None,
                   help="write a PNG: crops at 512 px of real | lanczos | unsharp | learned")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval_upscale)

    t = sub.add_parser("train-upscaler", help="train the small learned 2× upscaler on Fluent training frames "
                                              "(and a share of Noto emoji) on CPU")
    t.add_argument("--out", required=True, help="folder for upscaler.safetensors + upscaler.json")
    t.add_argument("--max-minutes", type=float, default=17.0, help="stop (and save) after this long")
    t.add_argument("--steps", type=int, default=100_000, help="stop after this many steps")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--files", type=int, default=400, help="Fluent training files to take frames from")
    t.add_argument("--noto-clips", type=int, default=400, help="builtin:emoji clips to take frames from")
    t.add_argument("--threads", type=int, default=1, help="CPU threads (0: torch's default)")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(func=cmd_train_upscaler)
