"""Pack evaluation and small-pack training data: metrics on synthetic clips, the pack windows source, the pack
limits, and ``rdtf eval-pack`` end to end on a tiny model and a 4-sticker synthetic pack."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from rdtf_engine.cli.main import main
from rdtf_engine.core.clip import Clip
from rdtf_engine.data import pack_windows as pw
from rdtf_engine.data.clip_source import ListSource
from rdtf_engine.data.sources import open_source
from rdtf_engine.eval import pack_metrics as pm

COLOURS = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 180, 30), (150, 50, 170), (30, 170, 180)]
SHAPES = ["ellipse", "rectangle", "triangle", "cross", "ring", "diamond"]


def sprite_frame(shape: str, colour, size: int = 64, dx: int = 0, dy: int = 0) -> np.ndarray:
    """(size, size, 4) straight RGBA of one anti-aliased shape (drawn at 4× and box-reduced)."""
    s = size * 4
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    c, r = s // 2, s * 3 // 10
    box = (c - r, c - r, c + r, c + r)
    fill = (*colour, 255)
    if shape == "ellipse":
        d.ellipse(box, fill=fill)
    elif shape == "rectangle":
        d.rectangle((c - r, c - r // 2, c + r, c + r // 2), fill=fill)
    elif shape == "triangle":
        d.polygon([(c, c - r), (c + r, c + r), (c - r, c + r)], fill=fill)
    elif shape == "cross":
        d.rectangle((c - r, c - r // 4, c + r, c + r // 4), fill=fill)
        d.rectangle((c - r // 4, c - r, c + r // 4, c + r), fill=fill)
    elif shape == "ring":
        d.ellipse(box, fill=fill)
        d.ellipse((c - r // 2, c - r // 2, c + r // 2, c + r // 2), fill=(0, 0, 0, 0))
    else:
        d.polygon([(c, c - r), (c + r, c), (c, c + r), (c - r, c)], fill=fill)
    img = img.transform(img.size, Image.AFFINE, (1, 0, -dx * 4, 0, 1, -dy * 4))
    return np.asarray(img.convert("RGBa").resize((size, size), Image.BOX).convert("RGBA"), np.uint8)


def sticker(k: int, frames: int = 8, size: int = 64) -> np.ndarray:
    """Sticker k: its shape and colour, gliding a few px left and right (a smooth loop)."""
    xs = np.round(3 * np.sin(np.linspace(0, 2 * np.pi, frames, endpoint=False))).astype(int)
    return np.stack([sprite_frame(SHAPES[k], COLOURS[k], size, int(x), 0) for x in xs])


@pytest.fixture(scope="module")
def pack6():
    return [sticker(k) for k in range(6)]


def write_pack(folder, n: int = 4, frames: int = 12, size: int = 48, captions=None) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    names = captions or [f"{c} {s}" for c, s in zip(("red", "green", "blue", "yellow", "purple", "teal"), SHAPES)][:n]
    rows = ["file,caption"]
    for k, cap in enumerate(names):
        clip = sticker(k % 6, frames, size)
        ims = [Image.fromarray(f, "RGBA") for f in clip]
        fn = f"s{k}.webp"
        ims[0].save(folder / fn, save_all=True, append_images=ims[1:], duration=80, loop=0, lossless=True)
        rows.append(f"{fn},{cap}")
    (folder / "captions.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return names


# ---------------------------------------------------------------------------------------------- metrics
def test_identity_identical_pack_is_top1_and_shuffled_captions_are_not(pack6):
    res = pm.evaluate_pack(pack6, pack6, list(range(6)))
    assert res["identity"]["top1"] == 1.0 and res["identity_shape"]["top1"] == 1.0
    assert res["identity"]["chance_top1"] == pytest.approx(1 / 6)
    shuffled = pm.evaluate_pack(pack6, pack6, [1, 2, 3, 4, 5, 0])  # every caption names another sticker
    assert shuffled["identity"]["top1"] == 0.0 and shuffled["identity_shape"]["top1"] == 0.0


def test_identity_controls_shifted_real_passes_blobs_do_not(pack6):
    for shape_only in (False, True):
        c = pm.identity_controls(pack6, shape_only=shape_only)
        assert c["real_shifted"]["top1"] == 1.0
        assert c["blob_pack_colour"]["top1"] <= 1 / 6  # one disc for all: at most one "hit"
    assert pm.identity_controls(pack6, shape_only=True)["blob_own_colour"]["top1"] <= 1 / 6


def test_frozen_and_flicker_are_flagged():
    moving = sticker(0, 8)
    frozen = np.repeat(moving[:1], 8, axis=0)
    a, b = sticker(0, 2)[0], sprite_frame("rectangle", COLOURS[1])
    flicker = np.stack([a, b] * 4)
    m, f, fl = pm.motion_stats(moving), pm.motion_stats(frozen), pm.motion_stats(flicker)
    assert not m["frozen"] and not m["flicker"] and m["flicker_ratio"] < 0.3
    assert f["frozen"] and not f["flicker"] and f["change"] == 0
    assert fl["flicker"] and fl["flicker_ratio"] > 0.9
    res = pm.evaluate_pack([moving], [moving, frozen, flicker], [0, 0, 0])
    assert res["motion"]["frozen"] == {"real": 0, "generated": 1}
    assert res["motion"]["flicker"] == {"real": 0, "generated": 1}


def test_blur_lowers_sharpness_and_colour_distance_orders():
    clip = sticker(3, 2)
    blurred = np.stack([np.asarray(Image.fromarray(f, "RGBA").filter(ImageFilter.GaussianBlur(2))) for f in clip])
    assert pm.sharpness(blurred) < 0.7 * pm.sharpness(clip)
    # as exported: the learned upscaler keeps a blur a blur, and enlarges a small sticker's edges more crisply
    # than bicubic resizing does
    assert pm.sharpness(blurred, upscaler="learned") < 0.7 * pm.sharpness(clip, upscaler="learned")
    assert pm.sharpness(clip, upscaler="learned") > pm.sharpness(clip)
    h = pm.colour_histogram
    assert pm.colour_chi2(h(clip), h(clip)) == 0
    assert pm.colour_chi2(h(clip), h(sticker(0, 2))) > 0.9  # yellow vs red: nearly disjoint bins


# ---------------------------------------------------------------------------------------------- pack windows
def clips_of(n: int, frames: int = 30, caption: str = "thing") -> list[Clip]:
    return [Clip(sticker(k % 6, frames, 32), [40] * frames, f"{caption} {k}", {"source": f"s{k}.webp"})
            for k in range(n)]


def test_window_source_counts_determinism_and_style():
    clips = clips_of(4)
    src = pw.PackWindowsSource(clips, "p", 32, windows_per_clip=5, seed=3)
    assert len(src) == 20
    # item 0 of a sticker: the whole clip, untouched; the others: WINDOW frames of a (stride, start) window
    assert src[0].num_frames == 30 and np.array_equal(src[0].frames, clips[0].frames)
    plans = [src.plan(i) for i in range(1, 5)]
    assert all(p["stride"] in pw.STRIDES for p in plans) and len({(p["stride"], p["start"]) for p in plans}) == 4
    assert all(src[i].num_frames == pw.WINDOW for i in range(1, 5))
    assert src[7].caption == "thing 1, in the style of my pack"
    again = pw.PackWindowsSource(clips, "p", 32, windows_per_clip=5, seed=3)
    assert all(np.array_equal(src[i].frames, again[i].frames) for i in (1, 8, 19))
    other = pw.PackWindowsSource(clips, "p", 32, windows_per_clip=5, seed=4)
    assert any(src.plan(i) != other.plan(i) for i in range(20))
    assert pw.PackWindowsSource(clips, "p", 32, style="")[1].caption == "thing 0"
    d = src.describe()
    assert d["stickers"] == 4 and d["clips"] == 20 and d["style_token"] == ", in the style of my pack"
    # a 30-frame clip has windows of 8 frames at strides 2, 4, 6 starting at 0..15, 0..1 and none
    assert len(pw.window_plans(30)) == 16 + 2 + 0 and pw.window_plans(5) == []


def test_no_flip_for_side_words():
    clips = clips_of(4, caption="left arrow")
    src = pw.PackWindowsSource(clips, "p", 32, windows_per_clip=40, seed=0)
    assert not any(src.plan(i)["flip"] for i in range(len(src)))
    plain = pw.PackWindowsSource(clips_of(4), "p", 32, windows_per_clip=40, seed=0)
    assert any(plain.plan(i)["flip"] for i in range(len(plain)))
    assert pw.has_side_word("right-facing fist") and not pw.has_side_word("bright star")


def test_mirror_twins_keep_their_side():
    """A left- and a right-facing copy of one shape are twins (flipped, each would become the other); symmetric
    stickers and a lone asymmetric one keep their flips."""
    tri = sticker(2, 8, 32)  # the triangle, symmetric about the vertical axis: sheared into a left-leaning one
    lean = np.stack([np.asarray(Image.fromarray(f, "RGBA").transform((32, 32), Image.AFFINE, (1, 0.6, -10, 0, 1, 0)))
                     for f in tri])
    clips = clips_of(4) + [Clip(lean, [40] * 8, "leaning left", {}), Clip(lean[:, :, ::-1].copy(), [40] * 8,
                                                                          "leaning other", {})]
    assert not np.array_equal(lean, lean[:, :, ::-1])
    assert pw.mirror_twins(clips) == {4, 5}
    assert pw.mirror_twins(clips[:5]) == set()  # without its twin the leaning shape may be flipped
    src = pw.PackWindowsSource(clips, "p", 32, windows_per_clip=40, seed=0)
    flipped = {src.plan(i)["sticker"] for i in range(len(src)) if src.plan(i)["flip"]}
    assert flipped == {0, 1, 2, 3} and src.describe()["not_flipped"] == ["4", "5"]
    assert pw.PackWindowsSource(clips, "p", 32, augment=False).no_flip == set()


def test_jitter_keeps_alpha_valid():
    clip = np.stack([sprite_frame("ellipse", (255, 0, 0), 64)])  # red disc, anti-aliased edge
    for scale in (0.9, 1.1):
        out = pw.jitter_frames(clip, flip=True, hue_deg=0.0, scale=scale)
        assert out.shape == clip.shape and out.dtype == np.uint8
        a = out[..., 3]
        assert a[0, 0, 0] == 0 and a[0, 32, 32] == 255
        edge = (a > 8) & (a < 250)
        assert edge.any()
        # premultiplied resampling: the edge stays red (a straight-alpha resize would pull in black)
        assert out[..., 0][edge].min() >= 240 and out[..., 1][edge].max() <= 16
    hue = pw.jitter_frames(clip, flip=False, hue_deg=8.0, scale=1.0)
    assert np.array_equal(hue[..., 3], clip[..., 3]) and not np.array_equal(hue[..., :3], clip[..., :3])


def test_open_source_reads_a_small_pack_as_windows(tmp_path):
    write_pack(tmp_path / "pack", n=4)
    src = open_source(str(tmp_path / "pack"), 32, training=True, seed=1)
    assert isinstance(src, pw.PackWindowsSource) and len(src) == 4 * pw.WINDOWS_PER_CLIP
    assert src[0].caption == "red ellipse, in the style of my pack"
    assert isinstance(open_source(str(tmp_path / "pack"), 32), ListSource)  # evaluation: the stickers as they are
    assert isinstance(open_source(str(tmp_path / "pack"), 32, training=True, pack_windows="off"), ListSource)
    mine = open_source(str(tmp_path / "pack"), 32, training=True, pack_style=", by me")
    assert mine[0].caption == "red ellipse, by me"


def test_pack_limits_are_typed_errors(tmp_path, monkeypatch):
    write_pack(tmp_path / "small", n=3)
    (tmp_path / "small" / "broken.webp").write_bytes(b"RIFF\x00\x00\x00\x00WEBPnope")
    with pytest.raises(pw.PackError, match=r"3 readable stickers.*at least 4.*broken\.webp"):
        open_source(str(tmp_path / "small"), 32, training=True)
    write_pack(tmp_path / "big", n=5)
    monkeypatch.setattr(pw, "MAX_STICKERS", 4)
    with pytest.raises(pw.PackTooBigError, match="over the 4-sticker pack cap"):
        open_source(str(tmp_path / "big"), 32, training=True, pack_windows="on")
    assert isinstance(open_source(str(tmp_path / "big"), 32, training=True), ListSource)  # auto: a dataset


# ---------------------------------------------------------------------------------------------- eval-pack
def test_eval_pack_end_to_end(tiny_run, tmp_path, capsys):
    names = write_pack(tmp_path / "pack", n=4, size=32)
    sheet = tmp_path / "sheet.png"
    rc = main(["eval-pack", "--model", str(tiny_run[0]), "--pack", str(tmp_path / "pack"), "--steps", "2",
               "--json", "--sheet", str(sheet), "--style", ", in the style of my pack"])
    assert rc == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["stickers"] == rep["sampled"] == 4 and rep["pack"] == "pack"
    assert rep["prompts"][0] == names[0] + ", in the style of my pack"
    assert rep["controls"]["shape"]["real_shifted"]["top1"] == 1.0
    for task in ("t2v", "it2v"):
        part = rep[task]
        assert part["identity"]["clips"] == 4 and 0 <= part["identity"]["top1"] <= 1
        assert part["identity"]["chance_top1"] == 0.25
        assert part["motion"]["change"]["real"]["mean"] > 0
        assert set(part["sharpness"]) >= {"real", "generated"} and "real_pairs" in part["colour_chi2"]
    with Image.open(sheet) as im:
        assert im.format == "PNG" and im.height == 22 + 4 * 96
    assert str(tmp_path) not in json.dumps({k: v for k, v in rep.items() if k != "sheet"})


def test_eval_pack_too_small_is_one_line_error(tiny_run, tmp_path, capsys):
    write_pack(tmp_path / "pack", n=2, size=32)
    rc = main(["eval-pack", "--model", str(tiny_run[0]), "--pack", str(tmp_path / "pack"), "--steps", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1 and "at least 4" in err


def test_eval_pack_at_the_draft_size_draws_with_the_draft_network_alone(tiny_run, tmp_path, capsys):
    """A model with a draft size, evaluated at it, is its draft network exactly: the tiny 32 px model relabelled
    as a 64 px model drafting at 32 px scores at --size 32 what the 32 px model scores at its own size."""
    import shutil

    write_pack(tmp_path / "pack", n=4, size=32)
    two = tmp_path / "two-stage"
    shutil.copytree(tiny_run[0] / "model", two)
    cfg = json.loads((two / "config.json").read_text())
    (two / "config.json").write_text(json.dumps({**cfg, "size": 64, "draft_size": 32}))

    def report(model, *extra):
        rc = main(["eval-pack", "--model", str(model), "--pack", str(tmp_path / "pack"), "--steps", "2", "--json",
                   *extra])
        out = capsys.readouterr()
        return rc, (json.loads(out.out) if rc == 0 else out.err)

    _, own = report(tiny_run[0] / "model")
    _, draft = report(two, "--size", "32")
    assert own["size"] == draft["size"] == 32
    for task in ("t2v", "it2v"):
        assert draft[task] == own[task]
    _, native = report(two)
    assert native["size"] == 64 and native["t2v"] != own["t2v"]
    rc, err = report(two, "--size", "48")
    assert rc == 2 and "draft size (32)" in err
