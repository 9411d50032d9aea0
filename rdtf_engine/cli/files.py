"""CLI subcommands ``import``, ``export`` and ``check``; ``rdtf_engine/cli/main.py`` calls ``add_cli(subparsers)``.

Handlers are ``func(args, rep=None) -> int``: the main CLI passes its ``Reporter`` (event printing per
``--events``, Ctrl-C as a cooperative stop); called with ``args`` alone they print progress to stderr. They
return an exit code (0 ok, 1 a check that failed) and raise ``RdtfError`` for user errors, which the main CLI
prints as ``error: <message>`` with exit code 2. ``--json`` puts exactly one JSON report on stdout (progress
then goes to stderr), so scripts can pipe it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rdtf_engine.core.events import Log, format_event
from rdtf_engine.core.requests import CheckRequest, ExportRequest, ImportRequest, PackExportRequest
from rdtf_engine.jobs.backend import EngineBackend
from rdtf_engine.packs.pack_presets import PACK_PRESETS
from rdtf_engine.packs.project import PACK_FILE
from rdtf_engine.platforms.presets import PRESETS


def add_cli(subparsers: Any) -> None:
    names = ", ".join(PRESETS)
    p = subparsers.add_parser("import", help="import a folder / zip / file of stickers as a training dataset")
    p.add_argument("path", help="folder, .zip or single sticker file (GIF, APNG, WebP, WebM, MP4, TGS)")
    p.add_argument("--out", required=True, help="dataset folder to create (or an earlier import to replace)")
    p.add_argument("--size", type=int, default=256, help="frame size in pixels (default 256)")
    p.add_argument("--max-frames", type=int, default=48, help="frame budget per clip (default 48)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_import)

    packs = ", ".join(PACK_PRESETS)
    p = subparsers.add_parser("export", help="export a clip (or a whole sticker pack) for a platform, squeezed "
                                             "under its byte caps")
    p.add_argument("input", help="animated file, a folder of PNG frames (+ durations.json), or a sticker pack "
                                 "folder (with pack.json) for a *-pack preset")
    p.add_argument("--preset", required=True, choices=[*PRESETS, *PACK_PRESETS], metavar="PRESET",
                   help=f"one of: {names}; for a pack folder: {packs}")
    p.add_argument("--out", help="output file (or an existing folder); a pack: NAME.wastickers, NAME.zip or a "
                                 "folder, as the preset allows")
    p.add_argument("--check", action="store_true",
                   help="pack presets: list every rule the pack breaks, write nothing (exit 1 if any)")
    p.add_argument("--fps", type=float, help="frame rate to resample to")
    p.add_argument("--loop", type=int, help="plays (0 = forever)")
    p.add_argument("--size", type=int, help="canvas size (plain presets and signal)")
    p.add_argument("--quality", type=int, help="WebP/WebM quality 1-100")
    p.add_argument("--colors", type=int, help="GIF/APNG palette colours 2-256")
    p.add_argument("--max-kb", type=float, help="extra byte cap in KB (1000 B)")
    p.add_argument("--upscaler", choices=("learned", "lanczos"),
                   help="how a clip enlarged 2x or more (the model's 128 px to 512 px) is upscaled: learned (default: "
                        "the shipped small network, sharper outlines; Lanczos where torch is missing) or lanczos "
                        "(premultiplied Lanczos, the classic filter)")
    p.add_argument("--recipe", help="JSON object to embed (prompt, seed, model, ...)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("check", help="check a file against a platform preset; exit 1 if a rule fails")
    p.add_argument("file")
    p.add_argument("--preset", required=True, choices=list(PRESETS), metavar="PRESET", help=f"one of: {names}")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_check)


def _stderr_events(event: Any) -> None:
    line = format_event(event)
    if line and not (isinstance(event, Log) and event.level == "info"):
        print(line, file=sys.stderr)


def _callbacks(args: argparse.Namespace, rep: Any) -> tuple[Callable, Callable[[], bool] | None]:
    """(on_event, should_stop): the main CLI's reporter unless stdout is reserved for the --json report."""
    if rep is None:
        return _stderr_events, None
    if hasattr(rep, "install_signals"):
        rep.install_signals()  # first Ctrl-C stops after the current file / encode; nothing half-written
    return (_stderr_events if args.json else rep), getattr(rep, "should_stop", None)


def cmd_import(args: argparse.Namespace, rep: Any = None) -> int:
    req = ImportRequest(path=args.path, out=args.out, size=args.size, max_frames=args.max_frames)
    req.validate()
    on_event, should_stop = _callbacks(args, rep)
    report = EngineBackend().import_pack(req, on_event, should_stop)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, default=str))
        return 0
    print(f"imported {len(report['imported'])} clip(s) into {report['out']}")
    for s in report["skipped"]:
        print(f"  skipped {s['name']}: {s['error_type']}: {s['message']}")
    print(f"captions: {report['out']}/captions.csv (edit it before training)")
    return 0


def cmd_export(args: argparse.Namespace, rep: Any = None) -> int:
    from rdtf_engine.core.errors import InputError

    if args.preset in PACK_PRESETS or (Path(args.input) / PACK_FILE).is_file():
        return _export_pack(args, rep)
    if args.check:
        raise InputError(f"--check is for pack presets ({', '.join(PACK_PRESETS)}); check a file with "
                         "`rdtf check FILE --preset PRESET`")
    if not args.out:
        raise InputError("export needs --out (the file to write, or an existing folder)")
    options = {k: getattr(args, k) for k in ("fps", "loop", "size", "quality", "colors", "max_kb", "upscaler")
               if getattr(args, k) is not None}
    recipe: dict = {}
    if args.recipe:
        try:
            recipe = json.loads(args.recipe, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise InputError(f"--recipe is not standard JSON: {exc}") from None
        if not isinstance(recipe, dict):
            raise InputError(f"--recipe must be a JSON object, got {type(recipe).__name__}")
    req = ExportRequest(input=args.input, preset=args.preset, out=args.out, options=options, recipe=recipe)
    req.validate()
    on_event, should_stop = _callbacks(args, rep)
    report = EngineBackend().export(req, on_event, should_stop)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, default=str))
        return 0
    print(f"wrote {report['path']} ({report['bytes']:,} B) for {report['preset']}")
    for t in report["trades"]:
        print(f"  traded {t}")
    for n in report["notes"]:
        print(f"  note: {n}")
    print(f"  checks: {sum(r['ok'] for r in report['checks'])}/{len(report['checks'])} passed")
    return 0


def _export_pack(args: argparse.Namespace, rep: Any) -> int:
    """A pack folder with a pack preset: every rule checked first; ``--check`` writes nothing."""
    from rdtf_engine.core.errors import InputError

    if args.preset not in PACK_PRESETS:
        raise InputError(f"{Path(args.input).name} is a sticker pack; export it with a pack preset: "
                         f"{', '.join(PACK_PRESETS)}")
    if not (Path(args.input) / PACK_FILE).is_file():
        raise InputError(f"{args.preset} exports a sticker pack folder (with {PACK_FILE}); "
                         f"{Path(args.input).name or args.input} is not one")
    extra = [f"--{k.replace('_', '-')}" for k in ("fps", "loop", "size", "quality", "colors", "max_kb", "upscaler",
                                                      "recipe")
             if getattr(args, k) is not None]
    if extra:
        raise InputError(f"{', '.join(extra)} apply to single stickers; a pack preset fixes every setting")
    req = PackExportRequest(folder=args.input, preset=args.preset, out=args.out or "", check_only=args.check)
    req.validate()
    on_event, should_stop = _callbacks(args, rep)
    report = EngineBackend().export_pack(req, on_event, should_stop)
    if args.json:
        print(json.dumps(report, ensure_ascii=False, default=str))
    else:
        _print_pack(report)
    return 0 if report["ok"] else 1


def _print_pack(report: dict) -> None:
    n = len(report["stickers"])
    if report["out"]:
        print(f"wrote {report['out']} ({report['bytes']:,} B): {n} sticker(s) for {report['preset']}")
    else:
        print(f"{report['title']}: {'OK' if report['ok'] else 'FAILS'} for {report['preset']}")
    for s in report["stickers"]:
        dur = s["duration_ms"] or 0
        print(f"  {s['file']} {s['id']}: {s['bytes']:,} B, {s['size'][0]}x{s['size'][1]}, {s['frames']} frames, "
              f"{dur / 1000:.2f} s {''.join(s['emoji'])}")
    for im in report["images"]:
        print(f"  {im['name']} ({im['what']}): {im['bytes']:,} B, {im['size'][0]}x{im['size'][1]}")
    for note in report["notes"]:
        print(f"  note: {note}")
    for p in report["problems"]:
        print(f"  [FAIL] {p['text']}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")  # NaN / Infinity: other readers of the recipe reject them


def cmd_check(args: argparse.Namespace, rep: Any = None) -> int:
    """Exit 0 when the file meets the preset, 1 when a rule fails; a file that cannot be read at all is a typed
    error (exit 2, one line) like every other bad input, not a failed check."""
    from rdtf_engine.core.errors import FormatError

    req = CheckRequest(path=args.file, preset=args.preset)
    req.validate()
    report = EngineBackend().check(req, _stderr_events, lambda: False)
    unreadable = [r for r in report["rules"] if r["name"] == "readable" and not r["ok"]]
    if unreadable:
        detail = str(unreadable[0]["detail"])
        raise FormatError(f"{args.file}: {detail.split(': ', 1)[-1] if 'Error: ' in detail else detail}")
    if args.json:
        print(json.dumps(report, ensure_ascii=False, default=str))
        return 0 if report["ok"] else 1
    info = report["info"]
    print(f"{args.file}: {info.get('format')} {info.get('size')} {info.get('frames')} frame(s), "
          f"{info.get('bytes'):,} B — {'OK' if report['ok'] else 'FAILS'} for {report['preset']}")
    for r in report["rules"]:
        print(f"  [{'pass' if r['ok'] else 'FAIL'}] {r['name']}: {r['detail']}")
    if report["recipe"]:
        print(f"  recipe: {json.dumps(report['recipe'], ensure_ascii=False)}")
    return 0 if report["ok"] else 1
