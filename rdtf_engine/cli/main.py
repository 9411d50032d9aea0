"""``python -m rdtf_engine`` / ``rdtf``: everything the GUI does, headless.

Events print as human lines, or as JSON lines with ``--events jsonl``. Any RdtfError → one line
``error: <message>`` on stderr and exit code 2 (no traceback, nothing half-written: writers are atomic).
Ctrl-C / SIGTERM during training asks the loop to stop cooperatively, so a checkpoint is written first.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from rdtf_engine import __version__
from rdtf_engine.cli.data import add_data_parsers
from rdtf_engine.cli.files import add_cli as add_file_parsers
from rdtf_engine.cli.generate import _model_size, add_generate_parser, add_prepare_parser, start_prefetch
from rdtf_engine.cli.models import add_model_parsers
from rdtf_engine.cli.packs import add_pack_parsers
from rdtf_engine.cli.process_exit import exit_process
from rdtf_engine.cli.reporter import Reporter
from rdtf_engine.cli.train import add_train_parsers
from rdtf_engine.cli.upscale import add_upscale_parsers
from rdtf_engine.core.errors import Cancelled, LimitError, RdtfError, StorageError
from rdtf_engine.core.events import Failed


def cmd_worker(args, rep: Reporter) -> int:
    from rdtf_engine.worker import main as worker_main

    return worker_main([])


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rdtf", description="RDTF animated sticker engine (headless)")
    p.add_argument("--version", action="version", version=f"rdtf {__version__}")
    p.add_argument("--events", choices=("human", "jsonl"), default="human", help="how progress is printed")
    sub = p.add_subparsers(dest="command", required=True)
    add_generate_parser(sub)
    add_prepare_parser(sub)
    add_train_parsers(sub)
    add_model_parsers(sub)
    w = sub.add_parser("worker", help="JSON-lines worker process for the app (docs/protocol.md)")
    w.set_defaults(func=cmd_worker)
    add_file_parsers(sub)
    add_data_parsers(sub)
    add_pack_parsers(sub)
    add_upscale_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    _refuse_double_dash_values(parser, sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    rep = Reporter(args.events)
    try:
        if getattr(args, "command", None) == "generate":
            if args.size is None:
                args.size = _model_size(args.model)
            start_prefetch(args)
        return int(args.func(args, rep) or 0)
    except Cancelled as exc:
        rep(Failed("Cancelled", str(exc)))
        return exc.exit_code
    except RdtfError as exc:
        return _report(rep, exc)
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    except OSError as exc:  # the environment, not a bug: a full disk, a vanished folder, no permission
        return _report(rep, StorageError(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else "")))
    except (MemoryError, RecursionError) as exc:
        return _report(rep, LimitError("the input needs more memory than is available"
                                       if isinstance(exc, MemoryError) else "the input is nested too deeply"))


def run(argv: list[str] | None = None) -> NoReturn:
    """The ``rdtf`` command as a process (its console script and ``python -m rdtf_engine``): :func:`main`, then
    an exit that skips the interpreter's teardown once everything is written (``process_exit``: ≈ 0.7 s of a cold
    ``rdtf generate``)."""
    exit_process(main(argv))


def _refuse_double_dash_values(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """argparse (3.11) turns ``--to=--`` into ``[]``, skipping the option's type (and its own checks), so a
    later step fails with a TypeError: an option given the value ``--`` this way is a usage error (exit 2, as
    argparse's own)."""
    for token in argv:
        if token == "--":
            return  # what follows the separator is positional
        if token.startswith("--") and token.endswith("=--"):
            parser.error(f"argument {token[:-3]}: expected one value")


def _report(rep: Reporter, exc: RdtfError) -> int:
    if rep.mode == "jsonl":
        rep(Failed(type(exc).__name__, str(exc)))
    else:
        print(f"error: {exc}", file=sys.stderr)
    return exc.exit_code


if __name__ == "__main__":
    run()
