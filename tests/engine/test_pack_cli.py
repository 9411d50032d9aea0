"""``rdtf pack …`` on the tiny model: every subcommand, exit codes, and one-line typed errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rdtf_engine.cli.main import main
from rdtf_engine.packs.project import load_pack


@pytest.fixture(scope="module")
def pack_dir(tiny_run, tmp_path_factory):
    """A 3-sticker pack drawn from a prompt with the tiny model (built once for this module)."""
    folder = tmp_path_factory.mktemp("packs") / "cat"
    rc = main(["pack", "new", "--character", "a red circle", "--motions", "waving, laughing, climbing",
               "--out", str(folder), "--model", str(tiny_run[0]), "--seed", "3", "--frames", "4", "--steps", "2",
               "--title", "Circles", "--author", "Me"])
    assert rc == 0
    return folder


def test_new_info_and_json(pack_dir, capsys):
    assert main(["pack", "info", str(pack_dir)]) == 0
    out = capsys.readouterr().out
    assert "Circles by Me: 3 stickers, 3 made" in out and "👋" in out and "(no emoji)" in out
    assert main(["pack", "info", str(pack_dir), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [s["id"] for s in d["stickers"]] == ["waving", "laughing", "climbing"] and all(
        s["made"] for s in d["stickers"])
    assert d["character_prompt"] == "a red circle" and str(pack_dir) not in json.dumps(d)


def test_set_move_add_remove(pack_dir, tiny_run, capsys):
    assert main(["pack", "set", str(pack_dir), "climbing", "--emoji", "🧗", "--name", "Up!", "--lock"]) == 0
    s = load_pack(pack_dir).sticker("climbing")
    assert (s.emoji, s.name, s.locked) == (("🧗",), "Up!", True)
    assert main(["pack", "move", str(pack_dir), "climbing", "--to", "1"]) == 0
    assert load_pack(pack_dir).stickers[0].id == "climbing"
    assert main(["pack", "add", str(pack_dir), "--motions", "sleeping", "--model", str(tiny_run[0])]) == 0
    assert (pack_dir / "stickers" / "sleeping.png").is_file()
    assert main(["pack", "remove", str(pack_dir), "sleeping"]) == 0
    assert not (pack_dir / "stickers" / "sleeping.png").exists()
    assert "sleeping" not in [s.id for s in load_pack(pack_dir).stickers]


def test_regen_one_all_and_eval(pack_dir, tiny_run, capsys):
    model = ["--model", str(tiny_run[0])]
    main(["pack", "set", str(pack_dir), "climbing", "--lock"])
    locked = (pack_dir / "stickers" / "climbing.png").read_bytes()
    assert main(["pack", "regen", str(pack_dir), "waving", "--seed", "42", *model]) == 0
    assert load_pack(pack_dir).sticker("waving").seed == 42
    assert main(["pack", "regen", str(pack_dir), "--all", "--reroll", *model]) == 0
    assert load_pack(pack_dir).sticker("waving").seed != 42
    assert (pack_dir / "stickers" / "climbing.png").read_bytes() == locked
    capsys.readouterr()
    assert main(["pack", "eval", str(pack_dir), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["made"] == 3 and len(report["stickers"]) == 3 and report["motion_checked"] == 2
    assert main(["eval", "--pack-project", str(pack_dir)]) == 0
    assert "identity mean" in capsys.readouterr().out


def test_eval_across_packs(pack_dir, tmp_path, capsys):
    import shutil

    twin = tmp_path / "twin"
    shutil.copytree(pack_dir, twin)  # the same character twice: its pictures tie, so the ceiling is chance
    assert main(["pack", "eval", str(pack_dir), str(twin), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["characters"] == ["Circles (cat)", "Circles (twin)"] and r["stickers"] == 6 and len(r["packs"]) == 2
    assert r["chance"] == 0.5 and r["identity_ceiling"] == 0.5 and r["identity_accuracy"] <= 0.5
    assert set(r["identity_accuracy_per_sticker"]) == {"waving", "laughing", "climbing"}
    assert main(["eval", "--pack-project", str(pack_dir), str(twin)]) == 0
    assert "identity accuracy among 2 characters" in capsys.readouterr().out
    assert main(["pack", "eval", str(pack_dir), str(pack_dir)]) == 2
    assert "given twice" in capsys.readouterr().err


def test_sheet(pack_dir, tmp_path, capsys):
    from PIL import Image

    from rdtf_engine.jobs.pack_sheet import LABEL_W

    out = tmp_path / "sheet.png"
    assert main(["pack", "sheet", str(pack_dir), "--out", str(out), "--frames", "3", "--cell", "40"]) == 0
    assert "the character and 3 stickers, 3 frames each" in capsys.readouterr().out
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width == LABEL_W + 3 * 40 + 6
        assert str(tmp_path).encode() not in out.read_bytes()
    for bad in (["--out", str(tmp_path / "s.gif")], ["--out", str(out), "--frames", "0"]):
        assert main(["pack", "sheet", str(pack_dir), *bad]) == 2
        assert capsys.readouterr().err.startswith("error:")


HOSTILE = {"format": "rdtf-pack", "version": 1, "title": "x", "character": "../../etc/passwd",
           "stickers": [{"id": "a", "motion": "m"}]}


@pytest.mark.parametrize("args, needle", [
    (["pack", "info", "{tmp}/nowhere"], "not a sticker pack folder"),
    (["pack", "regen", "{pack}", "nope"], "has no sticker 'nope'"),
    (["pack", "set", "{pack}", "nope", "--lock"], "has no sticker 'nope'"),
    (["pack", "move", "{pack}", "waving", "--to", "99"], "position must be between"),
    (["pack", "set", "{pack}", "waving", "--emoji", "abc"], "is not an emoji"),
    (["pack", "regen", "{pack}"], "name one sticker"),
    (["pack", "regen", "{pack}", "climbing"], "locked"),
    (["pack", "info", "{hostile}"], "must stay inside the pack folder"),
    (["pack", "eval", "{hostile}"], "must stay inside the pack folder"),
    (["pack", "new", "--character", "{tmp}/missing.png", "--motions", "a", "--out", "{tmp}/n"], "not found"),
    (["pack", "new", "--character", "cat", "--motions", " , ", "--out", "{tmp}/n2"], "needs motions"),
])
def test_bad_input_is_one_line_exit_2(args, needle, pack_dir, tmp_path, capsys):
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "pack.json").write_text(json.dumps(HOSTILE))
    main(["pack", "set", str(pack_dir), "climbing", "--lock"])
    capsys.readouterr()
    filled = [a.format(tmp=tmp_path, pack=pack_dir, hostile=hostile) for a in args]
    assert main(filled) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], err


def test_help_and_a_subprocess_error():
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, "-m", "rdtf_engine", "pack", "--help"], capture_output=True, text=True,
                       env=env, timeout=120, check=False)
    for cmd in ("new", "regen", "fill", "set", "add", "remove", "move", "info", "eval"):
        assert cmd in r.stdout
    r = subprocess.run([sys.executable, "-m", "rdtf_engine", "pack", "info", "/nonexistent/pack"],
                       capture_output=True, text=True, env=env, timeout=120, check=False)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
