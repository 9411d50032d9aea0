"""``rdtf pack …``: one character, a whole consistent sticker set (docs/packs.md)."""

from __future__ import annotations

import argparse
import json
import sys

from rdtf_engine.cli.reporter import Reporter
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Finished
from rdtf_engine.core.requests import PackRequest


def _run(req: PackRequest, rep: Reporter) -> int:
    from rdtf_engine.jobs.pack_mode import run_pack

    req.validate()
    rep.install_signals()  # Ctrl-C stops after the current sticker; pack.json already lists what was made
    result = run_pack(req, rep, rep.should_stop)
    rep(Finished({"folder": result["folder"], "made": len(result["made"]), "missing": len(result["missing"]),
                  "stickers": result["stickers"]}))
    return 0


def cmd_new(args, rep: Reporter) -> int:
    from rdtf_engine.packs.moods import parse_motions

    return _run(PackRequest("new", args.out, character=args.character, motions=parse_motions(args.motions),
                            title=args.title or "", author=args.author or "", model=args.model, seed=args.seed,
                            frames=args.frames, steps=args.steps, size=args.size, device=args.device), rep)


def cmd_regen(args, rep: Reporter) -> int:
    if bool(args.all) == bool(args.sticker):
        raise InputError("name one sticker to regenerate, or use --all")
    if args.all and args.seed is not None:
        raise InputError("--seed is for one sticker; --all --reroll gives every sticker a new seed")
    return _run(PackRequest("regen", args.dir, ids=[args.sticker] if args.sticker else [], seed=args.seed,
                            reroll=args.reroll, model=args.model or "", size=args.size, device=args.device), rep)


def cmd_fill(args, rep: Reporter) -> int:
    return _run(PackRequest("fill", args.dir, model=args.model or "", size=args.size, device=args.device), rep)


def _edit(folder: str, change) -> None:
    from rdtf_engine.packs.project import load_pack, save_pack

    save_pack(folder, change(load_pack(folder)))


def cmd_set(args, rep: Reporter) -> int:
    from rdtf_engine.packs.edit import set_sticker

    locked = True if args.lock else (False if args.unlock else None)
    _edit(args.dir, lambda p: set_sticker(p, args.sticker, name=args.name, emoji=args.emoji, locked=locked,
                                          motion=args.motion))
    print(f"{args.sticker}: saved" + (" (its motion changed: `rdtf pack fill` remakes it)" if args.motion else ""))
    return 0


def cmd_add(args, rep: Reporter) -> int:
    from rdtf_engine.packs.edit import add_motions
    from rdtf_engine.packs.moods import parse_motions

    _edit(args.dir, lambda p: add_motions(p, parse_motions(args.motions)))
    if args.no_generate:
        return 0
    return _run(PackRequest("fill", args.dir, model=args.model or "", size=args.size, device=args.device), rep)


def cmd_remove(args, rep: Reporter) -> int:
    from rdtf_engine.packs.edit import remove_sticker

    _edit(args.dir, lambda p: remove_sticker(p, args.sticker, args.dir))
    print(f"removed {args.sticker}")
    return 0


def cmd_move(args, rep: Reporter) -> int:
    from rdtf_engine.packs.edit import move_sticker

    _edit(args.dir, lambda p: move_sticker(p, args.sticker, args.to))
    print(f"{args.sticker} is now sticker {args.to}")
    return 0


def cmd_info(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.pack_mode import is_made
    from rdtf_engine.packs.project import load_pack

    project = load_pack(args.dir)
    if args.json:
        d = project.to_dict()
        for s, row in zip(project.stickers, d["stickers"]):
            row["made"] = is_made(args.dir, s)
        print(json.dumps(d, ensure_ascii=False, indent=2))
        return 0
    made = sum(is_made(args.dir, s) for s in project.stickers)
    who = f" by {project.author}" if project.author else ""
    print(f"{project.title}{who}: {len(project.stickers)} stickers, {made} made; model {project.model}, "
          f"seed {project.seed}, {project.frames} frames, {project.steps} steps")
    print("character: " + (f"drawn from {project.character_prompt!r}" if project.character_prompt
                           else project.character))
    for i, s in enumerate(project.stickers, 1):
        flags = ("made" if is_made(args.dir, s) else "missing") + (", locked" if s.locked else "")
        print(f"{i:>3}. {s.id:<24} {''.join(s.emoji) or '(no emoji)':<10} {s.title:<24} seed {s.seed}  [{flags}]")
    return 0


def cmd_eval(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.pack_identity import evaluate_packs

    report, text = evaluate_packs(args.dirs, args.device, args.classifier, Reporter(rep.mode, sys.stderr))
    print(json.dumps(report, ensure_ascii=False, indent=2) if args.json else text)
    return 0


def cmd_sheet(args, rep: Reporter) -> int:
    from rdtf_engine.jobs.pack_sheet import save_pack_sheet

    info = save_pack_sheet(args.dir, args.out, frames=args.frames, cell=args.cell)
    print(f"wrote {args.out}: the character and {info['stickers']} stickers, {info['frames']} frames each "
          f"({info['bytes'] / 1024:.0f} KB)")
    return 0


def _gen_options(p: argparse.ArgumentParser, new: bool = False) -> None:
    p.add_argument("--model", default="default" if new else None,
                   help="model name or folder" + ("" if new else " (default: the pack's own model)"))
    p.add_argument("--size", type=int, default=0, help="pixels (default: the model's own size)")
    p.add_argument("--device", default="auto")


def add_pack_parsers(sub) -> None:
    pk = sub.add_parser("pack", help="make a whole sticker pack of one character (docs/packs.md)")
    ps = pk.add_subparsers(dest="pack_command", required=True)

    n = ps.add_parser("new", help="a new pack from a character picture or prompt; rerun to fill in what is missing")
    n.add_argument("--character", required=True, help="an image/animation file (its first frame) or a prompt")
    n.add_argument("--motions", required=True, help='comma-separated moods, e.g. "waving, laughing, crying"')
    n.add_argument("--out", required=True, help="the pack folder (new or empty; an existing pack is resumed)")
    n.add_argument("--title", default=None, help="pack title (default: the prompt or the picture's name)")
    n.add_argument("--author", default=None)
    n.add_argument("--seed", type=int, default=None, help="base seed; each sticker's seed derives from it and its id")
    n.add_argument("--frames", type=int, default=8)
    n.add_argument("--steps", type=int, default=20)
    _gen_options(n, new=True)
    n.set_defaults(func=cmd_new)

    r = ps.add_parser("regen", help="remake one sticker (same seed, --seed N or --reroll) or --all unlocked ones")
    r.add_argument("dir")
    r.add_argument("sticker", nargs="?", default=None)
    r.add_argument("--all", action="store_true", help="every sticker that is not locked")
    seed = r.add_mutually_exclusive_group()
    seed.add_argument("--seed", type=int, default=None)
    seed.add_argument("--reroll", action="store_true", help="a fresh random seed (stored in pack.json)")
    _gen_options(r)
    r.set_defaults(func=cmd_regen)

    f = ps.add_parser("fill", help="make every sticker not made yet")
    f.add_argument("dir")
    _gen_options(f)
    f.set_defaults(func=cmd_fill)

    s = ps.add_parser("set", help="rename a sticker, set its emoji, lock or unlock it, change its motion")
    s.add_argument("dir")
    s.add_argument("sticker")
    s.add_argument("--emoji", default=None, help='1-3 emoji, e.g. "👋🐱" ("" clears them)')
    s.add_argument("--name", default=None)
    s.add_argument("--motion", default=None, help="new motion words (the sticker is then remade by `pack fill`)")
    lock = s.add_mutually_exclusive_group()
    lock.add_argument("--lock", action="store_true", help="never regenerated by `regen --all`")
    lock.add_argument("--unlock", action="store_true")
    s.set_defaults(func=cmd_set)

    a = ps.add_parser("add", help="add stickers (and make them)")
    a.add_argument("dir")
    a.add_argument("--motions", required=True)
    a.add_argument("--no-generate", action="store_true", help="only list them in pack.json")
    _gen_options(a)
    a.set_defaults(func=cmd_add)

    rm = ps.add_parser("remove", help="remove a sticker and its file")
    rm.add_argument("dir")
    rm.add_argument("sticker")
    rm.set_defaults(func=cmd_remove)

    mv = ps.add_parser("move", help="move a sticker to position N (1 = first)")
    mv.add_argument("dir")
    mv.add_argument("sticker")
    mv.add_argument("--to", type=int, required=True)
    mv.set_defaults(func=cmd_move)

    i = ps.add_parser("info", help="the pack's stickers, emoji, seeds and what is made")
    i.add_argument("dir")
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=cmd_info)

    sh = ps.add_parser("sheet", help="the whole pack on one PNG: the character, then each sticker's frames, "
                                     "labelled with its name and emoji")
    sh.add_argument("dir")
    sh.add_argument("--out", required=True, help="the PNG to write")
    sh.add_argument("--frames", type=int, default=4, help="evenly spaced frames per sticker (1-16)")
    sh.add_argument("--cell", type=int, default=96, help="pixels per frame (32-256)")
    sh.set_defaults(func=cmd_sheet)

    e = ps.add_parser("eval", help="identity of every sticker to the character, and motion agreement; several "
                                   "packs: identity accuracy among their characters")
    e.add_argument("dirs", nargs="+", metavar="DIR",
                   help="a pack folder; with two or more (one character each), also whether each sticker looks "
                        "most like its own pack's character")
    e.add_argument("--json", action="store_true")
    e.add_argument("--classifier", default=None, help="motion classifier folder (default: the shipped one)")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_eval)
