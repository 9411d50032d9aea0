"""Packs → datasets: captions, layout, re-import, cancellation, load_dataset for training."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from io_corpus import GifFrame, build_gif, simple_frames, tgs_bytes, zip_bytes
from PIL import Image

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import Cancelled, InputError
from rdtf_engine.core.events import Progress
from rdtf_engine.datasets.dataset import import_pack, load_dataset
from rdtf_engine.datasets.pack import iter_pack
from rdtf_engine.formats.captions import caption_for, emoji_words, parse_captions_csv, words_from_name
from rdtf_engine.platforms.export import write_clip

PAL = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)


def gif(n: int = 3, w: int = 16, h: int = 8) -> bytes:
    return build_gif(w, h, PAL, [GifFrame(0, 0, np.full((h, w), 1 + i % 2, np.uint8), delay_cs=5) for i in range(n)])


def whatsapp_webp(emojis: list[str]) -> bytes:
    meta = json.dumps({"sticker-pack-id": "x", "emojis": emojis}).encode()
    exif = b"II*\x00\x08\x00\x00\x00\x01\x00\x41\x57\x07\x00" + len(meta).to_bytes(4, "little") + b"\x16\0\0\0" + meta
    buf = io.BytesIO()
    frames = [Image.fromarray(f) for f in simple_frames(2)]
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], exif=exif, lossless=True)
    return buf.getvalue()


def test_caption_rules():
    assert words_from_name("cat_waving.gif") == "cat waving"
    assert words_from_name("001-HappyDog.webp") == "happy dog"
    assert emoji_words("😀👋🏽") == "grinning face waving hand sign"
    assert emoji_words("🇯🇵") == "flag jp"
    assert caption_for("sticker_07.webp", "😺") == "smiling cat face with open mouth"
    assert caption_for("a9f3c2d1e7.gif") == "sticker"
    assert caption_for("x/cat.gif", table={"cat": "a cat that waves"}) == "a cat that waves"
    table = parse_captions_csv(b"file,caption\ncat.gif,\"cat, waving\"\n")
    assert table["cat.gif"] == "cat, waving"


def make_pack(folder):
    folder.mkdir()
    (folder / "cat_waving.gif").write_bytes(gif())
    (folder / "😀.gif").write_bytes(gif(4))
    (folder / "sticker_01.webp").write_bytes(whatsapp_webp(["🐶"]))
    (folder / "sub").mkdir()
    (folder / "sub" / "dance.tgs").write_bytes(tgs_bytes(frames=60, fps=60, size=32))
    (folder / "broken.gif").write_bytes(gif()[:30])
    (folder / ".DS_Store").write_bytes(b"junk")
    (folder / "captions.csv").write_text("file,caption\ncat_waving.gif,a cat waving hello\n")
    return folder


def test_iter_pack_captions_from_csv_names_emoji_and_exif(tmp_path):
    results = dict(iter_pack(make_pack(tmp_path / "pack")))
    assert set(results) == {"cat_waving.gif", "😀.gif", "sticker_01.webp", "sub/dance.tgs", "broken.gif"}
    assert results["cat_waving.gif"].caption == "a cat waving hello"
    assert results["😀.gif"].caption == "grinning face"
    assert results["sticker_01.webp"].caption == "dog face"
    assert results["sub/dance.tgs"].caption == "dance"
    assert type(results["broken.gif"]).__name__ == "FormatError"


def test_iter_pack_zip_and_emoji_sidecar(tmp_path):
    data = zip_bytes([("pack/001.gif", gif()), ("pack/emoji.txt", json.dumps({"001": "🔥"}).encode()),
                      ("__MACOSX/pack/._001.gif", b"junk")])
    (tmp_path / "p.zip").write_bytes(data)
    ((name, clip),) = list(iter_pack(tmp_path / "p.zip"))
    assert name == "pack/001.gif" and clip.caption == "fire"


def test_import_pack_layout_report_and_user_captions(tmp_path):
    pack = make_pack(tmp_path / "pack")
    events = []
    report = import_pack(pack, tmp_path / "ds", size=32, on_event=events.append, max_frames=8)
    assert sorted(report["imported"]) == sorted(["cat_waving.gif", "😀.gif", "sticker_01.webp", "sub/dance.tgs"])
    assert [s["name"] for s in report["skipped"]] == ["broken.gif"]
    assert report["skipped"][0]["error_type"] == "FormatError"
    assert any(isinstance(e, Progress) for e in events)
    ds = tmp_path / "ds"
    manifest = json.loads((ds / "manifest.json").read_text())
    tgs = next(c for c in manifest["clips"] if c["source"] == "sub/dance.tgs")
    assert tgs["frames"] == 8 and tgs["original_frames"] == 60 and sum(tgs["durations_ms"]) == pytest.approx(1000, 2)
    frame = Image.open(ds / manifest["clips_dir"] / tgs["id"] / "000.png")
    assert frame.size == (32, 32) and frame.mode == "RGBA"
    # A 16x8 GIF is padded (transparent) to 32x32 with its aspect kept.
    cat = next(c for c in manifest["clips"] if c["source"] == "cat_waving.gif")
    arr = np.asarray(Image.open(ds / manifest["clips_dir"] / cat["id"] / "000.png"))
    assert arr[0, 0, 3] == 0 and arr[16, 16, 3] == 255
    # The user edits captions.csv; load_dataset must use the edit.
    rows = list(csv.reader((ds / "captions.csv").open()))
    assert rows[0] == ["id", "caption"]
    rows = [rows[0]] + [[r[0], "EDITED " + r[1]] for r in rows[1:]]
    with (ds / "captions.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    clips = load_dataset(ds, size=16)
    assert len(clips) == 4 and all(c.caption.startswith("EDITED ") for c in clips)
    assert all(c.frames.shape[1:] == (16, 16, 4) for c in clips)


def test_reimport_replaces_dataset_and_cancel_keeps_previous(tmp_path):
    pack = make_pack(tmp_path / "pack")
    ds = tmp_path / "ds"
    import_pack(pack, ds, size=32)
    first = json.loads((ds / "manifest.json").read_text())
    (pack / "new_one.gif").write_bytes(gif())
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] > 2

    with pytest.raises(Cancelled):
        import_pack(pack, ds, size=32, should_stop=stop_after_two)
    assert json.loads((ds / "manifest.json").read_text()) == first
    assert [p.name for p in ds.glob("clips-*")] == [first["clips_dir"]]
    assert len(load_dataset(ds, size=32)) == len(first["clips"])
    import_pack(pack, ds, size=32)
    second = json.loads((ds / "manifest.json").read_text())
    assert len(second["clips"]) == len(first["clips"]) + 1
    assert [p.name for p in ds.glob("clips-*")] == [second["clips_dir"]]


def test_load_dataset_from_raw_folder_and_zip(tmp_path):
    pack = make_pack(tmp_path / "pack")
    clips = load_dataset(pack, size=24)
    assert len(clips) == 4 and all(c.frames.shape[1:3] == (24, 24) for c in clips)
    (tmp_path / "p.zip").write_bytes(zip_bytes([("a.gif", gif()), ("b.gif", gif(5))]))
    assert [c.num_frames for c in load_dataset(tmp_path / "p.zip", size=24)] == [3, 5]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        load_dataset(tmp_path / "empty", size=24)


def test_manifest_ids_cannot_point_outside(tmp_path):
    ds = tmp_path / "ds"
    import_pack(make_pack(tmp_path / "pack"), ds, size=32)
    manifest = json.loads((ds / "manifest.json").read_text())
    manifest["clips"][0]["id"] = "../../etc"
    (ds / "manifest.json").write_text(json.dumps(manifest))
    assert len(load_dataset(ds, size=32)) == len(manifest["clips"]) - 1


def test_write_clip_frames_folder_round_trip(tmp_path):
    clip = Clip(simple_frames(4), [30, 60, 90, 120], "x")
    write_clip(clip, tmp_path / "frames")
    from rdtf_engine.formats.loader import load_clip

    back = load_clip(tmp_path / "frames")
    np.testing.assert_array_equal(back.frames, clip.frames)
    assert back.durations_ms == clip.durations_ms
