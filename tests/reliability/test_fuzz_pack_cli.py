"""Property-based fuzzing of ``rdtf pack …``: random argv for every pack subcommand, on a fresh small pack each
time. Whatever the arguments: no traceback; exit 0, or 2 with exactly one ``error:`` line (``test_fuzz_cli``'s
rule). Nothing ever generates: every model is one that does not exist (the pack's own, too), so ``new``,
``regen``, ``fill`` and ``add`` are refused once their edits are checked.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from test_fuzz_cli import FUZZ, NASTY, _value, run_cli

from rdtf_engine.packs.edit import new_project
from rdtf_engine.packs.project import save_pack

NO_MODEL = "no-such-model"
IDS = ["waving", "laughing", "climbing-a-ladder"]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A pack of three stickers, one made (a motion no classifier knows: eval never loads one), a hostile pack
    whose character points outside its folder, and junk."""
    root = tmp_path_factory.mktemp("fuzz-pack")
    pack = root / "pack"
    (pack / "stickers").mkdir(parents=True)
    body = np.zeros((32, 32, 4), np.uint8)
    body[6:26, 8:24] = (220, 60, 40, 255)
    Image.fromarray(body, "RGBA").save(pack / "character.png")
    frames = [Image.fromarray(np.roll(body, i, axis=1), "RGBA") for i in range(3)]
    frames[0].save(pack / "stickers" / "climbing-a-ladder.png", save_all=True, append_images=frames[1:],
                   duration=100, loop=0)
    project = new_project("Robo", ["waving", "laughing", "climbing a ladder"], seed=1, model=NO_MODEL)
    made = replace(project.stickers[2], file="stickers/climbing-a-ladder.png")
    save_pack(pack, replace(project, stickers=(*project.stickers[:2], made)))
    shutil.copytree(pack, root / "pack2")  # a second pack: `pack eval A B` measures identity across both
    hostile = root / "hostile"
    hostile.mkdir()
    (hostile / "pack.json").write_text('{"format": "rdtf-pack", "version": 1, "title": "x", "character": '
                                       '"../../etc/passwd", "stickers": [{"id": "a", "motion": "m"}]}')
    (root / "junk.txt").write_text("not a pack")
    return root


@pytest.fixture
def pool(template, tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz-pack-run")
    return {"template": template, "root": root}


def fresh(pool) -> dict[str, str]:
    """A copy of the template per example: edits of one example never reach the next."""
    work = pool["root"] / "work"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pool["template"], work)
    return {"pack": str(work / "pack"), "pack2": str(work / "pack2"), "hostile": str(work / "hostile"), "junk": str(work / "junk.txt"),
            "missing": str(work / "nowhere"), "sheet": str(work / "out" / "s.png"), "new": str(work / "new-pack"), "character": str(work / "pack" /
                                                                                                "character.png")}


GEN = {"--model": "nomodel", "--size": "int", "--device": "device"}
SPECS: dict[str, dict[str, str]] = {
    "new": {"--character": "character", "--motions": "motions", "--out": "dir", "--title": "str", "--author": "str",
            "--seed": "int", "--frames": "int", "--steps": "int", **GEN},
    "regen": {"_dir": "dir", "_sticker": "sticker", "--all": "flag", "--seed": "int", "--reroll": "flag", **GEN},
    "fill": {"_dir": "dir", **GEN},
    "set": {"_dir": "dir", "_sticker": "sticker", "--emoji": "emoji", "--name": "str", "--motion": "motions",
            "--lock": "flag", "--unlock": "flag"},
    "add": {"_dir": "dir", "--motions": "motions", "--no-generate": "flag", **GEN},
    "remove": {"_dir": "dir", "_sticker": "sticker"},
    "move": {"_dir": "dir", "_sticker": "sticker", "--to": "int"},
    "info": {"_dir": "dir", "--json": "flag"},
    "eval": {"_dir": "dir", "_dir2": "dir", "--json": "flag", "--device": "device"},
    "sheet": {"_dir": "dir", "--out": "png", "--frames": "int", "--cell": "int"},
}
REQUIRED = {"new": ("--character", "--motions", "--out", "--model"), "regen": ("_dir", "--model"),
            "fill": ("_dir", "--model"), "set": ("_dir", "_sticker"), "add": ("_dir", "--motions", "--model"),
            "remove": ("_dir", "_sticker"), "move": ("_dir", "_sticker", "--to"), "info": ("_dir",),
            "eval": ("_dir",), "sheet": ("_dir", "--out")}


def _pack_value(kind: str, paths: dict[str, str]):
    if kind == "dir":
        return st.sampled_from([paths["pack"]] * 3 + [paths["pack2"], paths["new"], paths["hostile"], paths["junk"],
                                paths["missing"], "", "/"])
    if kind == "nomodel":  # never a real model, and never "" (which means the shipped one)
        return st.sampled_from([NO_MODEL, paths["junk"], paths["missing"], "../x"])
    if kind == "png":
        return st.sampled_from([paths["sheet"], paths["sheet"], paths["junk"], paths["sheet"][:-4] + ".gif", "", "/",
                                paths["pack"]])
    if kind == "sticker":
        return st.one_of(st.sampled_from(IDS * 2), st.sampled_from(NASTY))
    if kind == "character":
        return st.sampled_from([paths["character"], paths["junk"], paths["missing"] + ".png", "a red robot", ""])
    if kind == "motions":
        return st.one_of(st.sampled_from(["waving, sleeping", "waving", "party, party", ",,", "x" * 300]),
                         st.text(max_size=40).filter(lambda t: "\x00" not in t))
    if kind == "emoji":
        return st.sampled_from(["👋", "😂🐱", "", "abc", "😀😀😀😀", "👍🏽", "\u202e", "1", "🇩🇪"])
    return _value(kind, {})


@st.composite
def pack_argv(draw, command: str, paths: dict[str, str]) -> list[str]:
    spec = SPECS[command]
    chosen = set(REQUIRED[command]) if draw(st.integers(0, 7)) else set()
    chosen |= set(draw(st.lists(st.sampled_from(sorted(spec)), max_size=5)))
    if command in ("new", "regen", "fill", "add"):
        chosen.add("--model")  # whatever else is drawn: nothing may start a real generation
    positional, options = [], []
    for opt in sorted(chosen):
        kind = spec[opt]
        if kind == "flag":
            options.append(opt)
            continue
        value = draw(_pack_value(kind, paths))
        if opt.startswith("_"):
            positional.append(value if not value.startswith("-") else "./" + value)
        else:
            options += [opt, value] if not value.startswith("-") else [f"{opt}={value}"]
    return ["pack", command, *positional, *options]


@pytest.mark.parametrize("command", sorted(SPECS))
def test_fuzz_pack_subcommand(command, pool, capsys):
    @settings(FUZZ, max_examples=25)
    @given(data=st.data())
    def run(data):
        paths = fresh(pool)
        run_cli(data.draw(pack_argv(command, paths)), capsys)
        assert not Path(paths["new"]).exists()  # a refused `pack new` leaves no folder behind

    run()
