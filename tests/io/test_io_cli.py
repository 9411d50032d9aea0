"""The import / export / check subcommands through a tiny argparse harness (what rdtf_engine/cli/main.py wires)."""

from __future__ import annotations

import argparse
import json

import pytest
from io_corpus import simple_frames

from rdtf_engine.cli.files import add_cli
from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError, RdtfError
from rdtf_engine.platforms.export import write_clip


def run(argv: list[str], capsys) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="rdtf")
    add_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        code = args.func(args)
    except RdtfError as exc:  # what the real CLI does: "error: msg", exit 2
        print(f"error: {exc}")
        code = exc.exit_code
    return code, capsys.readouterr().out


def test_export_then_check_then_import(tmp_path, capsys):
    write_clip(Clip(simple_frames(6), [100] * 6), tmp_path / "in.webp", lossless=True)
    out = tmp_path / "tg.webm"
    code, text = run(["export", str(tmp_path / "in.webp"), "--preset", "telegram", "--out", str(out), "--json",
                      "--recipe", '{"prompt": "cat", "seed": 1}'], capsys)
    report = json.loads(text)
    assert code == 0 and report["path"] == str(out) and report["bytes"] == out.stat().st_size
    code, text = run(["check", str(out), "--preset", "telegram"], capsys)
    assert code == 0 and "OK for telegram" in text and '"prompt": "cat"' in text
    code, text = run(["check", str(out), "--preset", "whatsapp", "--json"], capsys)
    assert code == 1 and json.loads(text)["ok"] is False
    code, text = run(["import", str(tmp_path / "in.webp"), "--out", str(tmp_path / "ds"), "--size", "32"], capsys)
    assert code == 0 and "imported 1 clip(s)" in text


def test_user_errors_exit_2(tmp_path, capsys):
    code, text = run(["export", str(tmp_path / "missing.gif"), "--preset", "gif", "--out", str(tmp_path / "o.gif")],
                     capsys)
    assert code == 2 and text.startswith("error: ")
    write_clip(Clip(simple_frames(2), [100] * 2), tmp_path / "in.gif")
    code, text = run(["export", str(tmp_path / "in.gif"), "--preset", "gif", "--out", str(tmp_path / "o.gif"),
                      "--recipe", "{not json"], capsys)
    assert code == 2 and "--recipe" in text
    with pytest.raises(SystemExit):
        run(["export", "x", "--preset", "myspace", "--out", "y"], capsys)
    assert issubclass(InputError, RdtfError)


def test_plain_preset_options(tmp_path, capsys):
    write_clip(Clip(simple_frames(8, 64, 48), [50] * 8), tmp_path / "in.png")
    code, text = run(["export", str(tmp_path / "in.png"), "--preset", "gif", "--out", str(tmp_path / "o.gif"),
                      "--fps", "10", "--loop", "2", "--size", "32", "--colors", "16", "--json"], capsys)
    info = json.loads(text)["info"]
    assert code == 0 and info["loop"] == 2 and max(info["size"]) == 32 and info["frames"] == 4


def test_wired_into_the_main_cli(tmp_path, capsys):
    cli = pytest.importorskip("rdtf_engine.cli.main")
    write_clip(Clip(simple_frames(4), [100] * 4), tmp_path / "a.gif")
    assert cli.main(["check", str(tmp_path / "a.gif"), "--preset", "gif"]) == 0
    assert "OK for gif" in capsys.readouterr().out
    assert cli.main(["check", str(tmp_path / "missing.gif"), "--preset", "gif"]) == 2
