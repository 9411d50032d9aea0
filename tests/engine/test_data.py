"""Procedural data: motion programs (loopable, distinct), builtin:shapes (no font), builtin:emoji splits."""

from __future__ import annotations

import itertools
import multiprocessing as mp
import os
import signal

import numpy as np
import pytest

from rdtf_engine.core.errors import DependencyError, InputError, TrainingError
from rdtf_engine.data import emoji as emoji_mod
from rdtf_engine.data.motion import (
    COMBOS,
    MOTIONS,
    PROGRAMS,
    motion_frames,
    motion_phrase,
    render_motion,
    sample_motion,
)
from rdtf_engine.data.shapes import shape_sprite
from rdtf_engine.data.sources import BUILTINS, RenderPool, open_source, render_many

FRAME_COUNTS = (4, 5, 8, 13, 24)


def has_emoji_font() -> bool:
    return emoji_mod.find_font() is not None


needs_font = pytest.mark.skipif(not has_emoji_font(), reason="Noto Color Emoji (fonts-noto-color-emoji) not installed")


# ---------------------------------------------------------------------------------------------- motions
def test_at_least_twelve_motions_and_combos():
    assert len(PROGRAMS) >= 12 and len(COMBOS) >= 3
    for name in ("wave", "bounce", "jump", "shake", "spin", "pulse", "heartbeat", "nod", "wobble", "slide",
                 "fade", "blink", "squash", "float"):
        assert name in PROGRAMS and len(PROGRAMS[name].phrases) >= 3


@pytest.mark.parametrize("motion", MOTIONS)
def test_motion_params_are_periodic(motion):
    # Loopable: evaluated over two clip periods, both halves agree (the frame after the last is frame 0).
    for seed, f in itertools.product(range(6), FRAME_COUNTS):
        spec = sample_motion(motion, f, np.random.default_rng(seed))
        p = motion_frames(spec, f, t=np.arange(2 * f) / f).stacked()
        turn = np.exp(1j * np.deg2rad(p[:, 2]))  # angles compared as rotations (a spin wraps at ±180°)
        np.testing.assert_allclose(turn[f:], turn[:f], atol=1e-7, err_msg=f"{motion} seed {seed} F={f}")
        p = np.delete(p, 2, axis=1)
        np.testing.assert_allclose(p[f:], p[:f], atol=1e-7, err_msg=f"{motion} seed {seed} F={f}")
        assert np.all(p[:, 4] >= 0) and np.all(p[:, 4] <= 1)  # alpha


@pytest.mark.parametrize("motion", MOTIONS)
def test_rendered_loop_is_continuous(motion):
    # Rendering frame F (= time 1) reproduces frame 0, so last → first is an ordinary step.
    sprite = shape_sprite("star", "blue")
    for seed in range(3):
        f = 12
        spec = sample_motion(motion, f, np.random.default_rng(seed))
        frames = render_motion(sprite, motion_frames(spec, f, t=np.arange(f + 1) / f), 32)
        pm = frames.astype(np.float64)
        pm[..., :3] *= pm[..., 3:] / 255  # premultiplied: colour of near-transparent pixels is noise
        assert np.abs(pm[f] - pm[0]).max() <= 2  # rounding of the resampler only
        moving = np.abs(np.diff(frames.astype(int), axis=0)).sum(axis=(1, 2, 3))
        assert moving.max() > 0, f"{motion} does not move"


def test_motions_are_distinct():
    sprite = shape_sprite("heart", "red")
    f = 16
    clips = {}
    for m in MOTIONS:
        spec = sample_motion(m, f, np.random.default_rng(3))
        clips[m] = render_motion(sprite, motion_frames(spec, f), 32).astype(np.float32)
    for a, b in itertools.combinations(MOTIONS, 2):
        assert np.abs(clips[a] - clips[b]).mean() > 0.5, (a, b)


def test_motion_phrases_and_unknown_motion():
    rng = np.random.default_rng(0)
    assert motion_phrase("bounce", rng) in PROGRAMS["bounce"].phrases
    combo = motion_phrase("bounce+spin", rng)
    first, second = combo.split(" and ", 1)[0], combo.rsplit(" and ", 1)[1]
    assert any(combo.startswith(p) for p in PROGRAMS["bounce"].phrases) and first and second
    with pytest.raises(KeyError):
        sample_motion("moonwalk", 8, rng)


# ---------------------------------------------------------------------------------------------- shapes
def test_shapes_deterministic_and_order_independent():
    a = open_source("builtin:shapes", 32, seed=7)
    b = open_source("builtin:shapes", 32, seed=7)
    later = b[9]  # render another clip first: clip 5 must not depend on it
    assert later.num_frames >= 4
    for i in (0, 5, 200):
        ca, cb = a[i], b[i]
        assert np.array_equal(ca.frames, cb.frames) and ca.durations_ms == cb.durations_ms
        assert ca.caption == cb.caption and ca.labels == cb.labels
    c = open_source("builtin:shapes", 32, seed=8)[5]
    assert c.caption != a[5].caption or not np.array_equal(c.frames, a[5].frames)


def test_shapes_clips_captions_and_frame():
    src = open_source("builtin:shapes", 48, num_clips=40)
    assert len(src) == 40 and src.name == "builtin:shapes"
    for i in range(len(src)):
        c = src[i]
        lab = c.labels
        assert c.frames.shape[1:] == (48, 48, 4) and c.frames.dtype == np.uint8
        assert 4 <= c.num_frames <= 24 and all(40 <= d <= 200 for d in c.durations_ms)
        assert f"{lab['colour']} {lab['shape']}" in c.caption and lab["motion"] in MOTIONS
        assert any(p in c.caption for comp in lab["motion"].split("+") for p in PROGRAMS[comp].phrases)
        if lab["motion"] != "slide":  # everything else stays inside the canvas with a margin
            a = c.frames[..., 3]
            assert a[:, 0].max() == 0 and a[:, -1].max() == 0 and a[:, :, 0].max() == 0 and a[:, :, -1].max() == 0
        assert c.frames[..., 3].max() == 255 or "fade" in lab["motion"]
    with pytest.raises(IndexError):
        src[40]
    assert np.array_equal(src[-1].frames, src[39].frames)


def test_shapes_work_without_the_font(monkeypatch):
    monkeypatch.setattr(emoji_mod, "FONT_CANDIDATES", ("/nonexistent/NotoColorEmoji.ttf",))
    monkeypatch.setenv("RDTF_EMOJI_FONT", "/nonexistent/too.ttf")
    monkeypatch.setattr(emoji_mod, "_FONT", None)
    emoji_mod.available_codepoints.cache_clear()
    try:
        clip = open_source("builtin:shapes", 32)[0]
        assert clip.frames.shape[1:] == (32, 32, 4)
        with pytest.raises(DependencyError, match="fonts-noto-color-emoji"):
            open_source("builtin:emoji", 32)
    finally:
        emoji_mod.available_codepoints.cache_clear()


def test_unknown_builtin_and_bad_args():
    with pytest.raises(InputError) as e:
        open_source("builtin:nope", 32)
    for choice in BUILTINS:
        assert choice in str(e.value)
    with pytest.raises(InputError):
        open_source("builtin:shapes", 4)
    with pytest.raises(InputError):
        open_source("", 32)


def test_path_specs_go_to_the_importer(monkeypatch, tmp_path):
    import rdtf_engine.datasets.dataset as io_pkg

    clips = open_source("builtin:shapes", 16, num_clips=5)
    seen = []

    def fake_load_dataset(path, size):
        seen.append((path, size))
        return [clips[i] for i in range(len(clips))]

    monkeypatch.setattr(io_pkg, "load_dataset", fake_load_dataset, raising=False)
    src = open_source(str(tmp_path / "pack"), 16, num_clips=3)
    assert seen == [(str(tmp_path / "pack"), 16)] and len(src) == 3 and src.name == "pack"
    assert np.array_equal(src[2].frames, clips[2].frames) and set(src.motions) <= set(MOTIONS)
    assert src.describe()["clips"] == 3


def test_where_selects_by_label_without_rendering():
    src = open_source("builtin:shapes", 16, num_clips=200)
    sub = src.where(motion=("spin", "fade"), colour="red")
    assert len(sub) > 0 and sub.motions == ("spin", "fade")
    for i in range(len(sub)):
        lab = sub[i].labels
        assert lab["motion"] in ("spin", "fade") and lab["colour"] == "red"
        assert np.array_equal(sub[i].frames, src[lab["index"]].frames)


def test_render_many_matches_serial_and_describe():
    src = open_source("builtin:shapes", 24, num_clips=24)
    par = render_many(src, range(24), workers=2)
    for i, c in enumerate(par):
        assert np.array_equal(c.frames, src[i].frames) and c.caption == src[i].caption
    d = src.describe()
    assert d["clips"] == 24 and sum(d["motions"].values()) == 24 and sum(d["frame_counts"].values()) == 24
    assert set(d["motions"]) <= set(MOTIONS) and d["objects"] >= 1 and d["name"] == "builtin:shapes"


class _DiesInWorker:
    """A 'source' whose items kill the worker process that renders them (an out-of-memory kill, say)."""

    def __init__(self) -> None:
        self.parent = os.getpid()

    def __len__(self) -> int:
        return 64

    def __getitem__(self, i: int) -> int:
        if os.getpid() != self.parent:
            os.kill(os.getpid(), signal.SIGKILL)
        return i


@pytest.mark.skipif("fork" not in mp.get_all_start_methods(), reason="needs fork")
def test_render_pool_reports_a_killed_worker_instead_of_hanging():
    with pytest.raises(TrainingError, match="worker process died"), RenderPool(_DiesInWorker(), workers=2) as pool:
        pool.submit(range(32)).get()
    with RenderPool(_DiesInWorker(), workers=2) as pool:  # a handful of clips renders in this process
        assert pool.submit(range(4)).get() == [0, 1, 2, 3]
        assert pool.map(abs, [-1, 2]).get() == [1, 2]


# ---------------------------------------------------------------------------------------------- emoji
@needs_font
def test_emoji_splits_are_disjoint_and_fixed():
    train = open_source("builtin:emoji", 32)
    hold = open_source("builtin:emoji-holdout", 32)
    sp = train.splits()
    assert sp["emoji"] >= 300 and 0.06 < sp["heldout_emoji"] / sp["emoji"] < 0.14 and sp["heldout_pairs"] > 50
    held_emoji = {f"{c:x}" for c in train.heldout_emoji}
    held_pairs = {(f"{c:x}", m) for c, m in train.heldout_pairs}
    assert not any(e in held_emoji for e, _ in held_pairs)
    seen = set()
    for i in range(0, len(train), 10):
        lab = train.labels(i)
        assert lab["emoji"] not in held_emoji and (lab["emoji"], lab["motion"]) not in held_pairs
        seen.add(lab["motion"])
    assert seen == set(MOTIONS)
    kinds = set()
    for i in range(len(hold)):
        lab = hold.labels(i)
        assert lab["emoji"] in held_emoji or (lab["emoji"], lab["motion"]) in held_pairs
        kinds.add(lab["split"])
    assert kinds == {"heldout-emoji", "heldout-pair"}
    # The split depends only on code points: another seed holds out the same emoji.
    other = open_source("builtin:emoji", 32, seed=5)
    assert other.heldout_emoji == train.heldout_emoji and other.heldout_pairs == train.heldout_pairs


@needs_font
def test_emoji_clips_deterministic_with_captions():
    a = open_source("builtin:emoji", 48, num_clips=100, seed=1)
    b = open_source("builtin:emoji", 48, num_clips=100, seed=1)
    b[3]
    for i in (0, 7, 99):
        ca, cb = a[i], b[i]
        assert np.array_equal(ca.frames, cb.frames) and ca.caption == cb.caption
        lab = ca.labels
        assert lab["source"] == "emoji" and lab["split"] == "train" and lab["motion"] in MOTIONS
        cp = int(lab["emoji"], 16)
        assert cp in emoji_mod.available_codepoints() or cp in emoji_mod.extra_codepoints()
        assert lab["name"] in ca.caption and ca.caption == ca.caption.lower()
        assert ("recoloured" in ca.caption) == (lab["hue"] > 0)
        assert 4 <= ca.num_frames <= 24 and ca.frames.shape[1:] == (48, 48, 4)
        assert ca.frames[..., 3].max() > 0
    assert emoji_mod.emoji_name(0x1F600) == "grinning face" and emoji_mod.emoji_name(0x2764) == "red heart"
    assert emoji_mod.emoji_sprite(0x1F600).shape[2] == 4


@needs_font
def test_extra_pool_trains_only_and_leaves_the_holdout_unchanged():
    train = open_source("builtin:emoji", 32, num_clips=3000, seed=2)
    hold = open_source("builtin:emoji-holdout", 32)
    curated = set(emoji_mod.available_codepoints())
    extra = set(train.extra_emoji)
    assert len(extra) > 300 and not extra & curated and hold.extra_emoji == []
    assert not any(emoji_mod.is_heldout_emoji(c) for c in extra)
    # The held-out source and the identity bank know only the curated list.
    assert {int(k, 16) for k in hold.identity_sprites()} == curated
    assert hold.heldout_pairs == train.heldout_pairs and hold.heldout_emoji == train.heldout_emoji
    drawn = [int(train.labels(i)["emoji"], 16) for i in range(len(train))]
    share = sum(c in extra for c in drawn) / len(drawn)
    assert abs(share - emoji_mod.EXTRA_P) < 0.04
    assert not any(emoji_mod.is_heldout_emoji(c) for c in drawn)
    for i in range(len(hold)):
        assert "mirror" not in hold.labels(i) and "recoloured" not in hold.plan(i).caption


@needs_font
def test_emoji_dev_split_is_never_trained_and_not_the_test_set():
    dev = open_source("builtin:emoji-dev", 32, num_clips=200, seed=3)
    train = open_source("builtin:emoji", 32)
    assert len(dev) == 200 and len(dev.dev_emoji) > 40 and dev.heldout_pairs == []
    dev_set = set(dev.dev_emoji)
    assert not dev_set & set(train.train_emoji + train.extra_emoji + train.heldout_emoji)
    assert all(emoji_mod.is_heldout_emoji(c) for c in dev_set)
    for i in range(len(dev)):
        lab = dev.labels(i)
        assert int(lab["emoji"], 16) in dev_set and lab["split"] == "dev-emoji" and "mirror" not in lab
    bank = dev.identity_sprites()  # the curated 500 and the dev emoji: a dev clip can be confused with either
    assert {int(k, 16) for k in bank} == set(emoji_mod.available_codepoints()) | dev_set


def test_augment_sprite_mirrors_and_rotates_hue_exactly():
    sprite = np.zeros((2, 3, 4), np.uint8)
    sprite[0, 0] = (255, 0, 0, 255)  # red, top-left
    sprite[1, 2] = (0, 0, 255, 128)  # half-transparent blue, bottom-right
    m = emoji_mod.augment_sprite(sprite, True, 0.0)
    assert np.array_equal(m, sprite[:, ::-1]) and m.flags["C_CONTIGUOUS"]
    assert np.array_equal(emoji_mod.augment_sprite(sprite, False, 0.0), sprite)
    h = emoji_mod.augment_sprite(sprite, False, 120.0)  # red → green, blue → red; alpha kept
    assert tuple(h[0, 0]) == (0, 255, 0, 255) and tuple(h[1, 2, :3]) == (255, 0, 0) and h[1, 2, 3] == 128
    assert np.array_equal(h[..., 3], sprite[..., 3])
    assert emoji_mod.emoji_name(0x1F315) == "full moon"  # " symbol" is dropped from names


def test_composite_sprite_grows_the_canvas_and_puts_the_worn_emoji_on_top():
    base = np.zeros((10, 20, 4), np.uint8)
    base[...] = (255, 0, 0, 255)  # opaque red 20 × 10
    worn = np.zeros((4, 4, 4), np.uint8)
    worn[...] = (0, 0, 255, 255)  # opaque blue square
    # scale 0.5 of the longer side (20) → 10 × 10, centred at (1.0·20, 0.5·10) = (20, 5): half sticks out right
    out = emoji_mod.composite_sprite(base, worn, 0.5, 1.0, 0.5)
    assert out.shape == (10, 25, 4)
    assert tuple(out[5, 2]) == (255, 0, 0, 255) and tuple(out[5, 17]) == (0, 0, 255, 255)
    assert tuple(out[5, 24]) == (0, 0, 255, 255) and out[..., 3].min() == 255
    # centred at the top-left corner: the canvas grows up and left, the base keeps its pixels
    out = emoji_mod.composite_sprite(base, worn, 0.5, 0.0, 0.0)
    assert out.shape == (15, 25, 4)
    assert out[0, 10, 3] == 0 and tuple(out[0, 0]) == (0, 0, 255, 255) and tuple(out[14, 24]) == (255, 0, 0, 255)


def _augmented_plans(label: str, n: int):
    """A training source, its first n plans, and those carrying ``label`` (one augmentation kind)."""
    a = open_source("builtin:emoji", 32, num_clips=n, seed=5)
    plans = [a.plan(i) for i in range(len(a))]
    return a, plans, [p for p in plans if label in p.labels]


def _never_in_eval_sources(label: str) -> None:
    for src in (open_source("builtin:emoji-holdout", 32), open_source("builtin:emoji-dev", 32, num_clips=100)):
        assert not any(label in src.labels(i) for i in range(len(src)))


@needs_font
def test_composite_clips_are_training_only_deterministic_and_captioned():
    a, plans, worn = _augmented_plans("worn", 400)
    assert abs(len(worn) / len(plans) - emoji_mod.COMPOSITE_P) < 0.07
    pool = set(a.train_emoji + a.extra_emoji)
    for p in worn[:20]:
        wname = emoji_mod.emoji_name(int(p.labels["worn"], 16))
        assert int(p.labels["worn"], 16) in pool and " with " in p.caption and wname in p.caption
        assert p.caption.startswith(("a recoloured " if p.labels["hue"] else "") + p.labels["name"])
        lo, hi = emoji_mod.COMPOSITE_SCALE
        assert lo <= p.labels["worn_scale"] <= hi and all(0.15 <= v <= 0.85 for v in p.labels["worn_at"])
    i = plans.index(worn[0])
    clip = a[i]
    assert np.array_equal(clip.frames, open_source("builtin:emoji", 32, num_clips=400, seed=5)[i].frames)
    plain = emoji_mod.augment_sprite(a.sprite(worn[0].obj), bool(worn[0].labels["mirror"]), worn[0].labels["hue"])
    assert a.plan_sprite(worn[0]).shape != plain.shape or not np.array_equal(a.plan_sprite(worn[0]), plain)
    assert a.describe()["augmentation"]["composite_p"] == emoji_mod.COMPOSITE_P
    _never_in_eval_sources("worn")
    assert "augmentation" not in open_source("builtin:emoji-holdout", 32).describe()
    assert "augmentation" not in open_source("builtin:emoji-dev", 32, num_clips=100).describe()


def test_splice_sprite_cuts_across_or_down_exactly():
    first = np.zeros((10, 8, 4), np.uint8)
    first[...] = (255, 0, 0, 255)  # opaque red 8 × 10
    second = np.zeros((5, 4, 4), np.uint8)
    second[...] = (0, 0, 255, 255)  # opaque blue, resized to 8 × 10 beyond the cut
    out = emoji_mod.splice_sprite(first, second, "h", 0.4)  # rows 0…3 red, 4…9 blue
    assert out.shape == (10, 8, 4) and out[..., 3].min() == 255
    assert (out[:4, :, 0] == 255).all() and (out[4:, :, 2] == 255).all() and (out[4:, :, 0] == 0).all()
    out = emoji_mod.splice_sprite(first, second, "v", 0.5)  # columns 0…3 red, 4…7 blue
    assert (out[:, :4, 0] == 255).all() and (out[:, 4:, 2] == 255).all()
    empty = second.copy()
    empty[..., 3] = 0  # an invisible second half: the canvas shrinks to the visible first part
    assert emoji_mod.splice_sprite(first, empty, "h", 0.3).shape == (3, 8, 4)
    with pytest.raises(ValueError):
        emoji_mod.splice_sprite(first, second, "x", 0.5)


@needs_font
def test_splice_clips_are_training_only_and_faces_take_faces():
    a, plans, spliced = _augmented_plans("spliced", 600)
    assert abs(len(spliced) / len(plans) - emoji_mod.SPLICE_P) < 0.07
    assert not any("worn" in p.labels for p in spliced)  # one kind of new identity per clip
    lo, hi = emoji_mod.SPLICE_AT
    for p in spliced[:30]:
        other = emoji_mod.emoji_name(int(p.labels["spliced"], 16))
        assert p.caption.startswith(("a recoloured " if p.labels["hue"] else "") + f"half {p.labels['name']}, "
                                    f"half {other} ")
        assert p.labels["splice_axis"] in ("h", "v") and lo <= p.labels["splice_at"] <= hi
        if emoji_mod._is_face(int(p.obj, 16)):
            assert emoji_mod._is_face(int(p.labels["spliced"], 16))
    assert emoji_mod._is_face(0x1F913) and emoji_mod._is_face(0x1F638)  # nerd face, grinning cat face
    assert not emoji_mod._is_face(0x1F992) and not emoji_mod._is_face(0x1F550)  # giraffe face, clock face one
    assert not emoji_mod._is_face(0x1F64F)  # folded hands: in the block, not a face
    faces = [p for p in spliced if emoji_mod._is_face(int(p.obj, 16))]
    # SPLICE_FACE_P of splices redraw a smiley; the rest hit one by chance (≈ 9 % of training emoji)
    assert abs(len(faces) / len(spliced) - (emoji_mod.SPLICE_FACE_P + 0.09 * (1 - emoji_mod.SPLICE_FACE_P))) < 0.15
    for p in faces:  # a redrawn smiley keeps the split rules: a training emoji, its pair with the motion not held out
        cp = int(p.obj, 16)
        assert p.labels["emoji"] == p.obj and p.labels["name"] == emoji_mod.emoji_name(cp)
        assert not emoji_mod.is_heldout_emoji(cp) and not emoji_mod.is_heldout_pair(cp, p.labels["motion"])
    p = spliced[0]
    first = emoji_mod.augment_sprite(a.sprite(p.obj), False, 0.0)
    assert not np.array_equal(a.plan_sprite(p), emoji_mod.augment_sprite(first, p.labels["mirror"], p.labels["hue"]))
    i = plans.index(p)
    assert np.array_equal(a[i].frames, open_source("builtin:emoji", 32, num_clips=600, seed=5)[i].frames)
    assert a.describe()["augmentation"]["splice_p"] == emoji_mod.SPLICE_P
    assert a.describe()["augmentation"]["splice_face_p"] == emoji_mod.SPLICE_FACE_P
    _never_in_eval_sources("spliced")
