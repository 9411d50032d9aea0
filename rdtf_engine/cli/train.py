"""``rdtf train`` and ``rdtf train-autoencoder``."""

from __future__ import annotations

from rdtf_engine.cli.reporter import Reporter
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Finished
from rdtf_engine.core.requests import TrainRequest


def cmd_train(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.api import train

    if not args.data and not args.resume:
        raise InputError("--data is required (or --resume to continue the run in --out)")
    steps = args.steps if args.steps is not None else (0 if args.resume else 1000)
    base = None
    if args.init_from and not args.resume:  # a fine-tune inherits its model's architecture unless told otherwise
        from rdtf_engine.training.setup import init_model

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
                       max_clips=args.max_clips, device=args.device, mixed_precision=args.mixed_precision,
                       pack_windows=args.pack_windows, pack_style=args.pack_style)
    if not args.resume:
        req.validate()
    rep.install_signals()
    res = train(req, rep, rep.should_stop)
    rep(Finished(res))
    return 0


def cmd_train_autoencoder(args, rep: Reporter) -> int:
    from rdtf_engine.core.device import resolve_device
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.training.autoencoder import train_autoencoder

    device, mp = resolve_device(args.device, "auto")
    source = open_source(args.data, args.size, num_clips=args.max_clips, seed=args.seed)
    rep.install_signals()
    _, scale = train_autoencoder(source, args.out, args.preset, args.steps, device, batch_size=args.batch_size,
                                 lr=args.lr, seed=args.seed, max_frames=args.max_frames, mixed_precision=mp,
                                 on_event=rep, should_stop=rep.should_stop, max_minutes=args.max_minutes)
    rep(Finished({"out": args.out, "latent_scale": scale}))
    return 0


def add_train_parsers(sub) -> None:
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
                        "instead of restarting it at the easy tasks (docs/method.md §5)")
    t.add_argument("--grad-accum", type=int, default=1)
    t.add_argument("--sample-every", type=int, default=0)
    t.add_argument("--checkpoint-every", type=int, default=100)
    t.add_argument("--max-minutes", type=float, default=0.0, help="stop cleanly after this long (chunked runs)")
    t.add_argument("--max-clips", type=int, default=0)
    t.add_argument("--device", default="auto")
    t.add_argument("--mixed-precision", default="auto")
    t.add_argument("--pack-windows", choices=("auto", "on", "off"), default="auto",
                   help="a folder/zip of 4-200 stickers trains on every frame window of every sticker, with flips "
                        "and small colour/scale jitter (auto: for packs up to 200 stickers; on: insist; off: one "
                        "clip per sticker)")
    t.add_argument("--pack-style", default=None, metavar="TEXT",
                   help="suffix added to a pack's captions while training, so prompts ending with it reach the "
                        "pack's look (default: ', in the style of my pack'; '' for none)")
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
