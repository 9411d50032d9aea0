"""Pack mode on the tiny real model: a pack from a picture or a prompt, resume after a stop, regen, eval."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image

from rdtf_engine.core.errors import Cancelled, InputError
from rdtf_engine.core.events import Preview, Progress
from rdtf_engine.core.requests import PackRequest, from_wire, to_wire
from rdtf_engine.data.pack_prompts import motion_class, sticker_prompt
from rdtf_engine.eval.pack_identity import character_features, colour_floor, pack_identity, sticker_identity
from rdtf_engine.jobs.pack_mode import CHARACTER_FILL, frame_character, is_made, picture_character, run_pack
from rdtf_engine.packs.edit import add_motions, move_sticker, new_project, remove_sticker, set_sticker, split_emoji
from rdtf_engine.packs.moods import DEFAULT_MOODS, derive_seed, guess_emoji, parse_motions
from rdtf_engine.packs.project import load_pack

FAST = {"frames": 4, "steps": 2}


def character_png(path, colour=(220, 60, 40)) -> str:
    img = np.zeros((48, 40, 4), np.uint8)
    img[8:40, 6:34] = (*colour, 255)
    img[14:20, 12:18] = (255, 255, 255, 255)  # an eye: the character is not a plain block
    Image.fromarray(img, "RGBA").save(path)
    return str(path)


# ---------------------------------------------------------------------------------------------- text only
def test_the_character_is_framed_as_training_frames_are(tmp_path):
    """A picture that fills its canvas (or sits off-centre in a big one) becomes the training framing: the visible
    pixels centred, their longer side CHARACTER_FILL of the square; colours and alpha kept; never enlarged."""
    img = np.zeros((300, 200, 4), np.uint8)
    img[10:70, 150:190] = (200, 30, 40, 255)  # 60 × 40 visible, in a corner of a large canvas
    out = frame_character(img)
    side = math.ceil(60 / CHARACTER_FILL)
    assert out.shape == (side, side, 4)
    ys, xs = np.nonzero(out[..., 3])
    assert (ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) == (60, 40)  # same size: never enlarged or shrunk
    assert abs((ys.min() + ys.max()) / 2 - (side - 1) / 2) <= 1 and abs((xs.min() + xs.max()) / 2 - (side - 1) / 2) <= 1
    assert (out[out[..., 3] > 0][:, :3] == (200, 30, 40)).all()
    big = np.full((1600, 1000, 4), 255, np.uint8)  # fills the whole frame, larger than the kept side
    framed = frame_character(big, max_side=512)
    assert framed.shape == (512, 512, 4)
    ys, xs = np.nonzero(framed[..., 3])
    assert ys.max() - ys.min() + 1 == int(512 * CHARACTER_FILL) and not framed[0].any() and not framed[:, 0].any()
    with pytest.raises(InputError, match="transparent"):
        frame_character(np.zeros((8, 8, 4), np.uint8))
    path = character_png(tmp_path / "c.png")  # 32 × 28 visible in a 48 × 40 picture
    assert picture_character(tmp_path / "c.png").shape[0] == math.ceil(32 / CHARACTER_FILL) and path


def test_sticker_prompt_reads_like_a_training_caption():
    assert sticker_prompt("a cat", "waving") == "a cat waving"
    assert sticker_prompt("a cat", "laughing") == "a cat laughing, bouncing"
    assert sticker_prompt("a cat", "heart eyes") == "a cat with heart eyes, beating"
    assert sticker_prompt("a cat", "thumbs up") == "a cat giving a thumbs up, nodding"
    assert sticker_prompt(" the red  robot. ", "spinning around") == "the red robot spinning around"
    assert sticker_prompt("", "climbing a ladder") == "a character climbing a ladder"
    assert motion_class("heart eyes") == "heartbeat" and motion_class("climbing a ladder") is None
    assert all(motion_class(m) for m in DEFAULT_MOODS)  # every default mood moves in a way the model knows


def test_moods_emoji_seeds_and_motion_lists():
    assert parse_motions("waving, laughing;crying\n waving ,, ") == ["waving", "laughing", "crying"]
    assert guess_emoji("Waving hello") == ("👋",) and guess_emoji("heart eyes") == ("😍",)
    assert guess_emoji("climbing a ladder") == ()
    assert derive_seed(7, "waving") == derive_seed(7, "waving") != derive_seed(7, "laughing")
    assert derive_seed(7, "waving") != derive_seed(8, "waving")
    with pytest.raises(InputError):
        parse_motions("x" * 201)


def test_project_edits():
    p = new_project("Cat", ["waving", "laughing", "waving!"], seed=5)
    assert [s.id for s in p.stickers] == ["waving", "laughing", "waving-2"]
    assert p.sticker("laughing").seed == derive_seed(5, "laughing") and p.sticker("waving").emoji == ("👋",)
    p = move_sticker(p, "waving-2", 1)
    assert p.stickers[0].id == "waving-2"
    p = set_sticker(p, "laughing", name="LOL", emoji="😂🐱", locked=True)
    s = p.sticker("laughing")
    assert (s.name, s.emoji, s.locked) == ("LOL", ("😂", "🐱"), True)
    p = remove_sticker(add_motions(p, ["sleeping"]), "waving")
    assert [s.id for s in p.stickers] == ["waving-2", "laughing", "sleeping"]
    assert split_emoji("👍🏽 1️⃣🇩🇪") == ("👍🏽", "1️⃣", "🇩🇪")
    for bad, call in (("no", lambda: split_emoji("ab")), ("4", lambda: split_emoji("😀😀😀😀")),
                      ("pos", lambda: move_sticker(p, "laughing", 9)), ("id", lambda: set_sticker(p, "nope"))):
        with pytest.raises(InputError):
            call()


def test_pack_request_wire_and_validation():
    req = PackRequest("new", "/tmp/p", character="a cat", motions=["waving"], seed=3)
    op, params = to_wire(req)
    assert op == "pack" and from_wire(op, params) == req
    req.validate()
    for bad in (PackRequest("explode", "/tmp/p"), PackRequest("new", "/tmp/p"), PackRequest("fill", ""),
                PackRequest("regen", "/tmp/p", ids=["a", "b"], seed=1), PackRequest("fill", "/tmp/p", size=33),
                PackRequest("new", "/tmp/p", character="x", motions=[""])):
        with pytest.raises(InputError):
            bad.validate()


def test_identity_measure_orders_the_right_things():
    ch = np.asarray(Image.open(character_png_array := _tmp_char()))
    feats = character_features(ch)
    same = np.stack([ch, np.rot90(ch).copy(), ch])  # frame 0 is skipped: a rotated copy still scores high
    other = np.zeros_like(ch)
    other[10:20, 2:46] = (40, 200, 90, 255)
    moved = np.stack([ch, other, other])
    assert sticker_identity(same, feats) > 0.95
    floor = colour_floor(ch, feats)
    assert sticker_identity(moved, feats) < floor < 0.99
    r = pack_identity(ch, [same, moved])
    assert r["kept"] == [True, False] and r["kept_share"] == 0.5
    character_png_array.unlink()


def _tmp_char():
    import tempfile
    from pathlib import Path

    p = Path(tempfile.mkdtemp()) / "c.png"
    img = np.zeros((48, 48, 4), np.uint8)
    img[8:40, 10:38] = (220, 60, 40, 255)
    img[14:22, 14:20] = (255, 255, 255, 255)
    Image.fromarray(img, "RGBA").save(p)
    return p


# ---------------------------------------------------------------------------------------------- tiny model
def test_pack_from_a_picture_stop_resume_regen_and_eval(tiny_run, tmp_path):
    run = str(tiny_run[0])
    folder = tmp_path / "pack"
    req = PackRequest("new", str(folder), character=character_png(tmp_path / "robo.png"),
                      motions=["waving", "laughing", "climbing"], model=run, seed=11, **FAST)
    req.validate()
    events: list = []
    made = []

    def stop_after_first() -> bool:
        return bool(made)

    def on_event(e):
        events.append(e)
        if isinstance(e, Preview):
            made.append(e.caption)

    with pytest.raises(Cancelled):
        run_pack(req, on_event, stop_after_first)
    project = load_pack(folder)
    assert [is_made(folder, s) for s in project.stickers] == [True, False, False]  # the killed run kept one
    assert project.title == "robo" and project.character_prompt is None and project.seed == 11
    assert [s.seed for s in project.stickers] == [derive_seed(11, s.id) for s in project.stickers]
    first = (folder / "stickers" / "waving.png").read_bytes()

    result = run_pack(req, events.append)  # rerun: only the missing ones
    assert result["made"] == ["laughing", "climbing"] and result["missing"] == []
    assert (folder / "stickers" / "waving.png").read_bytes() == first
    assert any(isinstance(e, Progress) and e.stage == "pack" for e in events)
    with Image.open(folder / "stickers" / "laughing.png") as im:
        assert im.format == "PNG" and im.n_frames == 4
        recipe = json.loads(im.info["rdtf-recipe"]) if "rdtf-recipe" in im.info else None
    text = (folder / "stickers" / "laughing.png").read_bytes()
    assert b"robo laughing, bouncing" in text and str(tmp_path).encode() not in text  # recipe, no local paths
    assert recipe is None or recipe["seed"] == derive_seed(11, "laughing")

    # regen: a locked sticker is refused by name and skipped by "all"; --reroll stores a new seed
    from rdtf_engine.packs.project import save_pack

    save_pack(folder, set_sticker(load_pack(folder), "waving", locked=True))
    with pytest.raises(InputError, match="locked"):
        run_pack(PackRequest("regen", str(folder), ids=["waving"], model=run))
    old = load_pack(folder).sticker("climbing").seed
    out = run_pack(PackRequest("regen", str(folder), ids=["climbing"], reroll=True, model=run))
    assert out["made"] == ["climbing"] and load_pack(folder).sticker("climbing").seed != old
    out = run_pack(PackRequest("regen", str(folder), model=run))
    assert out["made"] == ["laughing", "climbing"]
    assert (folder / "stickers" / "waving.png").read_bytes() == first

    from rdtf_engine.jobs.pack_identity import evaluate_pack_project, format_report

    report = evaluate_pack_project(folder)
    assert report["made"] == 3 and 0 <= report["identity_mean"] <= 1 and report["motion_checked"] == 2
    assert [s["motion_class"] for s in report["stickers"]] == ["wave", "bounce", None]
    assert "identity mean" in format_report(report)


def test_pack_from_a_prompt_draws_the_character_once(tiny_run, tmp_path):
    folder = tmp_path / "p"
    run_pack(PackRequest("new", str(folder), character="a red circle", motions=["spinning"], model=str(tiny_run[0]),
                         seed=2, **FAST))
    project = load_pack(folder)
    assert project.character_prompt == "a red circle" and project.title == "a red circle"
    assert (folder / "character.png").is_file() and is_made(folder, project.sticker("spinning"))
    before = (folder / "character.png").read_bytes()
    run_pack(PackRequest("new", str(folder), character="a blue square", motions=["spinning", "nodding"],
                         model=str(tiny_run[0]), **FAST))  # resume: adds the new motion, keeps the character
    assert (folder / "character.png").read_bytes() == before
    assert [s.id for s in load_pack(folder).stickers] == ["spinning", "nodding"]


def test_new_pack_refuses_a_missing_picture_and_a_foreign_folder(tiny_run, tmp_path):
    with pytest.raises(InputError, match="not found"):
        run_pack(PackRequest("new", str(tmp_path / "a"), character="nothere.png", motions=["x"],
                             model=str(tiny_run[0])))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a pack folder"):
        run_pack(PackRequest("new", str(tmp_path / "b"), character="a cat", motions=["x"], model=str(tiny_run[0])))


# ---------------------------------------------------------------------------------------------- across packs
def _shape(kind: str, colour=(220, 60, 40)) -> np.ndarray:
    from PIL import ImageDraw

    img = Image.new("RGBA", (48, 48))
    draw = ImageDraw.Draw(img)
    {"disc": lambda: draw.ellipse((6, 6, 42, 42), fill=colour),
     "bar": lambda: draw.rectangle((4, 18, 44, 30), fill=colour),
     "cross": lambda: (draw.rectangle((20, 4, 28, 44), fill=colour), draw.rectangle((4, 20, 44, 28), fill=colour)),
     }[kind]()
    return np.asarray(img)


def test_identity_accuracy_counts_the_nearest_character():
    from rdtf_engine.eval.pack_identity import identity_accuracy

    chars = {k: _shape(k) for k in ("disc", "bar", "cross")}  # one colour: only the shape tells them apart

    def sticker(k: str, dx: int = 0) -> np.ndarray:  # frame 0 the character, then shifted copies
        img = chars[k]
        return np.stack([img, np.roll(img, dx, axis=1), np.roll(img, -dx, axis=0)])

    r = identity_accuracy(chars, [(k, sticker(k, 3)) for k in chars for _ in range(2)])
    assert r["accuracy"] == 1.0 and r["chance"] == pytest.approx(1 / 3) and r["misses"] == []
    assert r["ceiling"] == 1.0 and r["colour_only"] <= 1 / 3 + 1e-9  # one colour: a disc is only the disc's
    # a bar sticker listed under "disc" misses, and says what it looks like; frame 0 (the given picture) is ignored
    r = identity_accuracy(chars, [("disc", np.stack([chars["disc"], chars["bar"]])), ("bar", sticker("bar"))])
    assert r["accuracy"] == 0.5 and r["per_character"] == {"disc": 0.0, "bar": 1.0, "cross": None}
    assert r["misses"] == [{"index": 0, "wanted": "disc", "found": ["bar"]}]
    # identical characters: every sticker ties among all K and earns 1/K, exactly chance
    same = {k: chars["disc"] for k in ("a", "b", "c", "d")}
    r = identity_accuracy(same, [(k, sticker("disc", 2)) for k in same])
    assert r["accuracy"] == pytest.approx(0.25) and r["ceiling"] == pytest.approx(0.25)
    assert r["misses"][0]["found"] == ["a", "b", "c", "d"]
    with pytest.raises(ValueError):
        identity_accuracy({"disc": chars["disc"]}, [])
