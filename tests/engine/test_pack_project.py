"""The pack project file: round trip, and every hostile pack.json a typed error."""

import json

import pytest

from rdtf_engine.core.errors import InputError
from rdtf_engine.packs.project import (
    PackProject,
    PackSticker,
    inside,
    is_emoji,
    load_pack,
    save_pack,
    sticker_id,
)


def _project() -> PackProject:
    return PackProject(title="Cat pack", author="me", character_prompt="a cat",
                       stickers=(PackSticker(id="waving", motion="waving", emoji=("👋", "🐱")),
                                 PackSticker(id="heart-eyes", motion="heart eyes", seed=42, locked=True,
                                             file="stickers/heart-eyes.png")))


def test_round_trip(tmp_path):
    p = _project()
    save_pack(tmp_path, p)
    assert load_pack(tmp_path) == p
    assert str(tmp_path) not in (tmp_path / "pack.json").read_text()  # no local paths
    q = p.with_sticker(PackSticker(id="waving", motion="waving hello", seed=3))
    assert q.sticker("waving").seed == 3 and [s.id for s in q.stickers] == ["waving", "heart-eyes"]
    assert [s.id for s in p.with_sticker(PackSticker(id="new", motion="x")).stickers][-1] == "new"


def test_sticker_ids():
    assert sticker_id("Heart eyes!") == "heart-eyes"
    assert sticker_id("waving", {"waving", "waving-2"}) == "waving-3"
    assert sticker_id("😀") == "sticker"


def test_emoji():
    assert is_emoji("👋") and is_emoji("👋🏽") and is_emoji("❤️") and is_emoji("👨‍👩‍👧") and is_emoji("1\ufe0f\u20e3")
    assert not is_emoji("a") and not is_emoji("") and not is_emoji("=cmd|x") and not is_emoji("1")


@pytest.mark.parametrize("patch", [
    {"format": "zip"}, {"version": 2}, {"title": ""}, {"title": 5}, {"title": "x" * 200},
    {"stickers": {}}, {"stickers": [1]}, {"stickers": [{"id": "../x", "motion": "m"}]},
    {"stickers": [{"id": "a", "motion": "m", "file": "../../etc/passwd"}]},
    {"stickers": [{"id": "a", "motion": "m", "file": "/abs.png"}]},
    {"stickers": [{"id": "a", "motion": "m", "seed": -1}]},
    {"stickers": [{"id": "a", "motion": "m", "seed": True}]},
    {"stickers": [{"id": "a", "motion": "m", "emoji": ["a"]}]},
    {"stickers": [{"id": "a", "motion": "m", "emoji": ["👋"] * 4}]},
    {"stickers": [{"id": "a", "motion": "m"}, {"id": "a", "motion": "n"}]},
    {"stickers": [{"id": "a", "motion": ""}]}, {"character": "C:\\x.png"}, {"model": "/home/me/m"},
    {"title": "a\u202eb"},
])
def test_hostile_pack_json(tmp_path, patch):
    d = _project().to_dict()
    d.update(patch)
    (tmp_path / "pack.json").write_text(json.dumps(d))
    with pytest.raises(InputError):
        load_pack(tmp_path)


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"[1, 2]", b'{"format": NaN}', b"{" * 10])
def test_unreadable_pack_json(tmp_path, raw):
    (tmp_path / "pack.json").write_bytes(raw)
    with pytest.raises(InputError):
        load_pack(tmp_path)


def test_missing_and_oversized(tmp_path):
    with pytest.raises(InputError, match="not a sticker pack"):
        load_pack(tmp_path)
    (tmp_path / "pack.json").write_bytes(b" " * (2 << 20))
    with pytest.raises(InputError, match="larger"):
        load_pack(tmp_path)


def test_symlink_out_is_refused(tmp_path):
    (tmp_path / "stickers").symlink_to(tmp_path.parent)
    with pytest.raises(InputError):
        inside(tmp_path, "stickers/x.png")
    assert inside(tmp_path, "character.png") == (tmp_path / "character.png").resolve()
