"""``rdtf train`` and ``rdtf train-autoencoder``."""

from __future__ import annotations

from rdtf_engine.cli.reporter import Reporter
from rdtf_engine.core.config import CURRICULA, DEFAULT_FEW_STEP_RANK, OBJECTIVES, TRAINABLE
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Finished
from rdtf_engine.core.recipes import RECIPES
from rdtf_engine.core.requests import TrainRequest


def cmd_train(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.api import train

    if not args.data and not args.resume:
        raise InputError("--data is required (or --resume to continue the run in --out)")
    if args.resume:  # the run's own request wins (training.run_setup); these may change between chunks
        req = TrainRequest.of(out=args.out, resume=True, steps=args.steps or 0, max_minutes=args.max_minutes,
                              device=args.device, sample_every=args.sample_every or 0)
    else:
        req = request_from_args(args)
        req.validate()
    rep.install_signals()
    res = train(req, rep, rep.should_stop)
    rep(Finished(res))
    return 0


# flag → (request part, field) for the flags that override a recipe's value when given
_OVERRIDES = {"preset": ("model", "preset"), "size": ("model", "size"), "temporal": ("model", "temporal"),
              "reference_attention": ("model", "reference_attention"),
              "draft_size": ("model", "draft_size"), "draft_every": ("train", "draft_every"),
              "steps": ("train", "steps"),
              "size_delta_rank": ("model", "size_delta_rank"), "style_delta_rank": ("model", "style_delta_rank"),
              "style_tag": ("train", "style_tag"), "few_step_rank": ("model", "few_step_rank"),
              "objective": ("train", "objective"),
              "batch_size": ("train", "batch_size"), "lr": ("train", "lr"), "seed": ("train", "seed"),
              "autoencoder": ("train", "autoencoder"), "ae_steps": ("train", "ae_steps"),
              "decoder_steps": ("train", "decoder_steps"),
              "grad_accum": ("train", "grad_accum"), "max_clips": ("train", "max_clips"),
              "curriculum": ("train", "curriculum"), "trainable": ("train", "trainable"),
              "pack_windows": ("train", "pack_windows"), "pack_style": ("train", "pack_style"),
              "word_dropout": ("train", "word_dropout"), "anchor": ("train", "anchor"),
              "anchor_weight": ("train", "anchor_weight"), "motion_weight": ("train", "motion_weight"),
              "guidance_text": ("train", "guidance_text"), "guidance_image": ("train", "guidance_image"),
              "sample_every": ("run", "sample_every"), "checkpoint_every": ("run", "checkpoint_every"),
              "mixed_precision": ("run", "mixed_precision")}


def request_from_args(args) -> TrainRequest:
    """The recipe (``--recipe``; without it: ``custom`` when --preset or --init-from is given, as before
    recipes existed, else ``pack``) with every given flag on top."""
    import dataclasses

    from rdtf_engine.core.device import resolve_device
    from rdtf_engine.core.recipes import DEFAULT_RECIPE, recipe

    name = args.recipe or ("custom" if args.preset or args.init_from else DEFAULT_RECIPE)
    req = recipe(name, resolve_device(args.device, "auto")[0].type).request(args.data, args.out, device=args.device)
    given = {k: v for k, v in vars(args).items() if k in _OVERRIDES and v is not None}
    if args.no_curriculum:
        given["curriculum"] = "none"
    if given.get("objective") == "consistency":  # distillation trains the few-step deltas: say so once, not thrice
        given.setdefault("trainable", "few-step")
        given.setdefault("few_step_rank", DEFAULT_FEW_STEP_RANK)
        given.setdefault("curriculum", "sampling")
    parts = {part: {f: given[k] for k, (p, f) in _OVERRIDES.items() if p == part and k in given}
             for part in ("model", "train", "run")}
    train = dataclasses.replace(req.train, dual_mask=not args.no_dual_mask,
                                continue_curriculum=args.continue_curriculum or req.train.continue_curriculum,
                                draft_only=args.draft_only or req.train.draft_only, **parts["train"])
    minutes = {"max_minutes": args.max_minutes} if args.max_minutes else {}
    return dataclasses.replace(req, model=dataclasses.replace(req.model, **parts["model"]), train=train,
                               run=dataclasses.replace(req.run, **parts["run"], **minutes),
                               init_from=args.init_from or req.init_from)


def cmd_train_autoencoder(args, rep: Reporter) -> int:
    from rdtf_engine.core.device import resolve_device
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.training.autoencoder import train_autoencoder

    device, mp = resolve_device(args.device, "auto")
    init, preset = None, args.preset
    if args.init_from:
        from rdtf_engine.training.autoencoder import load_autoencoder
        from rdtf_engine.training.finetune import init_model

        folder, card = init_model(args.init_from)
        init, preset = load_autoencoder(folder, device)[0], card.preset
    elif args.decoder_only:
        raise InputError("--decoder-only fine-tunes a model's autoencoder: give --init-from MODEL")
    source = open_source(args.data, args.size, num_clips=args.max_clips, seed=args.seed)
    draft = None
    if args.draft_size:
        if not 16 <= args.draft_size < args.size:
            raise InputError(f"--draft-size must be at least 16 and below --size ({args.size}), got {args.draft_size}")
        draft = open_source(args.data, args.draft_size, num_clips=args.max_clips, seed=args.seed)
    rep.install_signals()
    _, scale = train_autoencoder(source, args.out, preset, args.steps, device, batch_size=args.batch_size,
                                 lr=args.lr, seed=args.seed, max_frames=args.max_frames, mixed_precision=mp,
                                 on_event=rep, should_stop=rep.should_stop, max_minutes=args.max_minutes,
                                 init_vae=init, decoder_only=args.decoder_only, draft_source=draft)
    rep(Finished({"out": args.out, "latent_scale": scale}))
    return 0


def cmd_eval_autoencoder(args, rep: Reporter) -> int:
    import json

    from rdtf_engine.core.device import resolve_device
    from rdtf_engine.jobs.eval_autoencoder import evaluate_autoencoders

    if not 1 <= args.clips <= 1000 or not 16 <= args.size <= 1024:
        raise InputError("eval-autoencoder needs 1 ≤ --clips ≤ 1000 and 16 ≤ --size ≤ 1024")
    device, _ = resolve_device(args.device, "auto")
    report = evaluate_autoencoders(args.autoencoder, args.data, args.size, args.clips, device, seed=args.seed,
                                   sheet=args.sheet)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        for name, r in report["autoencoders"].items():
            print(f"{name}: PSNR {r['psnr_db']:.2f} dB, alpha IoU {r['alpha_iou']:.4f}, sharpness "
                  f"{r['sharpness']:.4f} (real {r['sharpness_real']:.4f}) over {r['frames']} frames")
    return 0


def _data_args(t) -> None:
    t.add_argument("--data", default=None,
                   help="folder/zip of stickers, dataset folder, builtin:shapes, builtin:emoji (not with --resume)")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--recipe", choices=RECIPES, default=None,
                   help="pack: fine-tune the shipped default model on your pack (its autoencoder, size and text "
                        "encoder; on CUDA batch 256 in bf16 for about 10 minutes, on CPU batch 2 for at most 55 "
                        "minutes); quick | standard | long: from scratch (advanced: a new model "
                        "needs thousands of clips and GPU hours before it draws more than blobs); custom: the flags "
                        "alone. Default: custom when --preset or --init-from is given, else pack. Flags given "
                        "override the recipe's values")
    t.add_argument("--pack-windows", choices=("auto", "on", "off"), default=None,
                   help="a folder/zip of 4-200 stickers trains on every frame window of every sticker, with flips "
                        "(not for mirror-image pairs) and small colour/scale jitter (auto, the default: for packs "
                        "up to 200 stickers; on: insist; off: one clip per sticker)")
    t.add_argument("--pack-style", default=None, metavar="TEXT",
                   help="suffix added to a pack's captions while training, so prompts ending with it reach the "
                        "pack's look (default: ', in the style of my pack'; '' for none)")
    t.add_argument("--word-dropout", type=float, default=None, metavar="P",
                   help="each caption word is replaced by '#' with probability P while training (default the "
                        "recipe's; the paper's 0.2)")
    t.add_argument("--max-clips", type=int, default=None)


def _base_args(t) -> None:
    t.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from this model's weights (a model folder or name, e.g. default): fine-tune it on "
                        "your stickers with its own autoencoder, preset, temporal layer and size")
    t.add_argument("--continue-curriculum", action="store_true",
                   help="with --init-from: take up the base model's curriculum after its steps (its late, "
                        "generation-heavy task mix) instead of restarting it at the easy tasks; the CPU pack recipe "
                        "does this (docs/curriculum.md)")
    t.add_argument("--draft-only", action="store_true",
                   help="with --init-from a model that drafts at a smaller size with size deltas (the 256 px "
                        "default): train its draft network alone, every step at the draft size, and keep the base's "
                        "native size and deltas as they are (default: the fine-tune becomes a draft-size model)")
    t.add_argument("--preset", default=None, help="tiny | small | medium | paper (default tiny, or --init-from's)")
    t.add_argument("--temporal", choices=("sti", "conv3d"), default=None, help="default sti, or --init-from's")
    t.add_argument("--reference-attention", choices=("on", "off", "all"), default=None,
                   help="every frame's spatial attention also sees the given (or first) frame: keeps an image's "
                        "identity while it moves. on: the attention levels, no extra weights; all: also the levels "
                        "without attention, with a zero-initialised block each (default off, or --init-from's)")
    t.add_argument("--autoencoder", default=None, help="reuse a trained autoencoder folder")
    t.add_argument("--ae-steps", type=int, default=None, help="default the recipe's (custom: 500)")
    t.add_argument("--decoder-steps", type=int, default=None, metavar="N",
                   help="a fine-tune first tunes its autoencoder's decoder on your stickers for N steps (the "
                        "encoder and latent space stay the base's): your colours and textures instead of the "
                        "base's (default the recipe's: pack tunes it; custom: 0 = keep the base's decoder)")


def _size_args(t) -> None:
    t.add_argument("--size", type=int, default=None, help="frame size in px (default 64, or --init-from's)")
    t.add_argument("--draft-size", type=int, default=None,
                   help="also train at this smaller size, one step in --draft-every (0 = off; default --init-from's): "
                        "text → video then drafts at it, where the layout comes out right, and refines at --size")
    t.add_argument("--draft-every", type=int, default=None,
                   help="with a draft size: every N-th step trains at it (default 2: every other step)")
    t.add_argument("--size-delta-rank", type=int, default=None, metavar="R",
                   help="with a draft size: give every layer a rank-R companion that acts only off the draft size "
                        "(0 = none; default --init-from's); with --trainable deltas only those train, so the "
                        "draft-size network stays the base's exactly while the larger size learns")
    t.add_argument("--style-delta-rank", type=int, default=None, metavar="R",
                   help="with a draft size: give every layer a rank-R companion that acts only at the draft size and "
                        "only for prompts carrying --style-tag (0 = none; default --init-from's); with --trainable "
                        "style only those train, so every other prompt draws exactly as the base does")
    t.add_argument("--style-tag", default=None, metavar="TEXT",
                   help="with --trainable style: the prompt ending that switches the style deltas on, e.g. "
                        "\"in 3d style\"; appended to every training caption that lacks it, saved in the card")
    t.add_argument("--few-step-rank", type=int, default=None, metavar="R",
                   help="give every layer a rank-R companion that the few-step sampler switches on (0 = none)")
    t.add_argument("--trainable", choices=TRAINABLE, default=None,
                   help="all weights; attention: only the attention and temporal layers; text: only the text "
                        "projection and the text cross-attention's keys and values; deltas: only the size "
                        "deltas (--size-delta-rank); style: only the style deltas (--style-delta-rank, "
                        "--style-tag), at the draft size; few-step: only the few-step deltas (--objective "
                        "consistency) (default all)")


def _objective_args(t) -> None:
    t.add_argument("--objective", choices=OBJECTIVES, default=None,
                   help="noise: the paper's denoising loss (default); consistency: distil --init-from into few-step "
                        f"deltas (--few-step-rank, default {DEFAULT_FEW_STEP_RANK}; only they train), so its stickers "
                        "draw in 4 unguided steps (--sampler lcm) as well as in 10-20 guided ones")
    t.add_argument("--anchor", default=None, metavar="MODEL",
                   help="hold the run to this model's predictions (usually the --init-from model, e.g. default) on "
                        "the batches at its own size, for the procedural clips it learnt from: keeps its drawing "
                        "there while the run learns a new size or real clips (its encoder must be this run's)")
    t.add_argument("--anchor-weight", type=float, default=None, metavar="W",
                   help="weight of the anchor's term beside the denoising loss (default 1)")
    t.add_argument("--motion-weight", type=float, default=None, metavar="W",
                   help="also fit the frame-to-frame differences of the predicted noise, with this weight beside "
                        "the denoising loss (default 0 = off): for a model that draws real clips nearly still")
    t.add_argument("--no-dual-mask", action="store_true", help="ablation: plain text→video on fixed-length clips")
    t.add_argument("--no-curriculum", action="store_true", help="same as --curriculum none")
    t.add_argument("--curriculum", choices=CURRICULA, default=None,
                   help="default adaptive; sampling: tasks weighted by how generation uses them (the default of "
                        "--objective consistency)")
    t.add_argument("--text-guidance", dest="guidance_text", type=float, default=None, metavar="G",
                   help="the trained model's own text guidance, saved in its card (default: an --init-from base's, "
                        "else the engine's)")
    t.add_argument("--image-guidance", dest="guidance_image", type=float, default=None, metavar="G",
                   help="the trained model's own image guidance for given frames, saved in its card (default: as for "
                        "--text-guidance): a base that learnt real clips moves them more at a weaker pull to the frame")


def _schedule_args(t) -> None:
    t.add_argument("--steps", type=int, default=None,
                   help="total steps (default the recipe's, 1000 for custom; with --resume: the run's own)")
    t.add_argument("--batch-size", type=int, default=None, help="default the recipe's (custom: 4)")
    t.add_argument("--lr", type=float, default=None, help="default the recipe's (custom: 2e-4)")
    t.add_argument("--grad-accum", type=int, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    t.add_argument("--sample-every", type=int, default=None)
    t.add_argument("--checkpoint-every", type=int, default=None)
    t.add_argument("--max-minutes", type=float, default=0.0, help="stop cleanly after this long (chunked runs)")
    t.add_argument("--device", default="auto")
    t.add_argument("--mixed-precision", default=None, help="auto | no | bf16 | fp16 (default the recipe's: auto)")


def add_train_parsers(sub) -> None:
    t = sub.add_parser("train", help="train on your stickers: fine-tune the shipped model (default) or train from "
                                      "scratch with dual masks + curriculum")
    # grouped in --help: each group its own function, the flags as they always were
    for add, title, description in ((_data_args, "your stickers", "what to train on, and the pack's handling"),
                                    (_base_args, "base model", "fine-tune a model, or build one from scratch"),
                                    (_size_args, "sizes and deltas", "draft size, low-rank companions, what trains"),
                                    (_objective_args, "objective", "loss, masks, curriculum and the card's guidance"),
                                    (_schedule_args, "schedule and device", "steps, batch, precision, checkpoints")):
        add(t.add_argument_group(title, description))
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
    a.add_argument("--draft-size", type=int, default=0, metavar="PX",
                   help="also train on the same data at this smaller size, every other step: for a model that "
                        "drafts at it (rdtf train --draft-size), whose drafts this decoder must decode too")
    a.add_argument("--max-clips", type=int, default=0)
    a.add_argument("--max-minutes", type=float, default=0.0, help="stop (and save) after this long")
    a.add_argument("--device", default="auto")
    a.add_argument("--init-from", default=None, metavar="MODEL",
                   help="start from this model's autoencoder (a model folder or name, e.g. default)")
    a.add_argument("--decoder-only", action="store_true",
                   help="with --init-from: train the decoder alone, so the latent space (and every network "
                        "trained on it) stays the model's")
    a.set_defaults(func=cmd_train_autoencoder)

    e = sub.add_parser("eval-autoencoder", help="reconstruction of held-out clips (PSNR, alpha IoU, sharpness)")
    e.add_argument("autoencoder", nargs="+", help="autoencoder folders, model folders or model names")
    e.add_argument("--data", default="builtin:fluent-holdout")
    e.add_argument("--size", type=int, default=256)
    e.add_argument("--clips", type=int, default=32)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--sheet", default=None, help="write a PNG: real | each autoencoder, one row per clip")
    e.add_argument("--device", default="auto")
    e.add_argument("--json", action="store_true")
    e.set_defaults(func=cmd_eval_autoencoder)
