"""Offline metrics: motion classifier (quick training, save/load), Fréchet distance, identity, alpha metrics."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import ModelError
from rdtf_engine.data.keyframes import uniform_keyframes
from rdtf_engine.data.motion import motion_frames, render_motion, sample_motion
from rdtf_engine.data.shapes import shape_sprite
from rdtf_engine.data.sources import open_source
from rdtf_engine.eval import (
    IdentityBank,
    alpha_semi_share,
    background_flicker,
    evaluate_clips,
    frechet_distance,
    load_classifier,
    loop_seam,
    reference_identity_accuracy,
    save_classifier,
    train_motion_classifier,
)

QUICK_MOTIONS = ("bounce", "spin", "pulse", "shake", "slide", "fade")
STEPS = 120


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # these tiny nets are overhead-bound: one thread is fastest, above all on a busy host
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def quick():
    """A classifier trained for a few seconds on 32 px shapes with six motions, and held-out clips."""
    train = open_source("builtin:shapes", 32, num_clips=1000, seed=0).where(motion=QUICK_MOTIONS)
    val_src = open_source("builtin:shapes", 32, num_clips=300, seed=99).where(motion=QUICK_MOTIONS)
    t0 = time.time()
    model = train_motion_classifier(train, STEPS, batch_size=16, max_clips=300, input_size=32, width=8,
                                    feature_dim=32, lr=8e-3, workers=1)
    train_s = time.time() - t0
    val = [val_src[i] for i in range(min(90, len(val_src)))]
    return model, val, train_s


def test_quick_classifier_is_accurate(quick):
    model, val, train_s = quick
    assert sorted(model.classes) == sorted(QUICK_MOTIONS)
    acc = model.accuracy(val)
    assert acc >= 0.85, (acc, model.summary)
    assert model.summary["steps"] == STEPS and train_s < 120


def test_classifier_save_load_round_trip(quick, tmp_path):
    model, val, _ = quick
    save_classifier(model, tmp_path / "clf")
    loaded = load_classifier(tmp_path / "clf")
    fa, pa = model.embed(val[:10])
    fb, pb = loaded.embed(val[:10])
    assert pa == pb and np.allclose(fa, fb, atol=1e-5) and loaded.classes == model.classes
    cfg = json.loads((tmp_path / "clf" / "motion_classifier.json").read_text())
    assert cfg["input_size"] == 32 and cfg["summary"]["steps"] == STEPS
    with pytest.raises(ModelError):
        load_classifier(tmp_path / "missing")
    (tmp_path / "clf" / "motion_classifier.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError):
        load_classifier(tmp_path / "clf")


def _frozen(c: Clip) -> Clip:
    return Clip(np.repeat(c.frames[:1], c.num_frames, axis=0), c.durations_ms, c.caption, dict(c.labels))


def test_frechet_identical_zero_and_wrong_motion_larger(quick):
    model, val, _ = quick
    other_src = open_source("builtin:shapes", 32, num_clips=300, seed=7).where(motion=QUICK_MOTIONS)
    other = [other_src[i] for i in range(len(val))]
    fv, _ = model.embed(val)
    fo, _ = model.embed(other)  # the same distribution, other samples: the noise floor
    ff, _ = model.embed([_frozen(c) for c in other])
    spin_src = open_source("builtin:shapes", 32, num_clips=1000, seed=7).where(motion="spin")
    fspin, _ = model.embed([spin_src[i] for i in range(min(len(val), len(spin_src)))])
    fresh = frechet_distance(fv, fo)
    assert frechet_distance(fv, fv) < 1e-6 * max(1.0, fresh)
    assert frechet_distance(fv, ff) > 2 * fresh  # no motion at all (a frozen first frame)
    assert frechet_distance(fv, fspin) > 2 * fresh  # one motion for every prompt (mode collapse)


def test_frechet_matches_the_textbook_formula():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 6))
    b = rng.normal(size=(150, 6)) @ rng.normal(size=(6, 6)) + 0.5
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy_linalg.sqrtm(s1 @ s2).real)
    assert frechet_distance(a, b) == pytest.approx(ref, rel=1e-8)


def test_motion_accuracy_drops_when_motions_are_swapped(quick):
    model, val, _ = quick
    swap = dict(zip(QUICK_MOTIONS, QUICK_MOTIONS[1:] + QUICK_MOTIONS[:1]))
    wrong = [Clip(c.frames, c.durations_ms, c.caption, {**c.labels, "motion": swap[c.labels["motion"]]})
             for c in val]
    res = evaluate_clips(wrong[:40], val[:40], model, export_sharpness=False)
    assert res["motion_accuracy"] < 0.2 and res["reference_motion_accuracy"] >= 0.8
    same = evaluate_clips(val[:40], val[:40], model, export_sharpness=False)
    assert same["sharpness"] is None and same["coherence"]["frozen"] == {"generated": 0, "real": 0}
    # coherence: real clips are seen through as many frames as the generated ones have (here all 4 of them)
    four = [Clip(c.frames[:4], c.durations_ms[:4], c.caption, c.labels) for c in val[:8] if c.num_frames >= 4]
    change = evaluate_clips(four, four, model, export_sharpness=False)["coherence"]["change"]
    assert change["generated"]["mean"] > 0 and change["generated"] == change["real"]
    assert same["motion_accuracy"] == same["reference_motion_accuracy"]
    assert same["frechet_distance"] < 1e-6 and same["identity_accuracy"] == 1.0
    assert same["alpha_semi_share"]["generated"] == same["alpha_semi_share"]["reference"]
    assert same["background_flicker"]["generated"] < 1e-4
    assert set(same["motion_accuracy_per_class"]) <= set(QUICK_MOTIONS)
    assert "identity_accuracy_by_split" not in same  # no split labels on these clips
    by_motion = same["identity_accuracy_by_motion"]  # every clip's motion, each all hits
    assert sum(v["clips"] for v in by_motion.values()) == 40 and all(v["accuracy"] == 1.0 for v in by_motion.values())
    assert same["identity_misses"] == []
    for r in (res, same):  # one record per miss (the real clips' own misses are the classifier's)
        assert len(r["motion_misses"]) == round((1 - r["motion_accuracy"]) * 40)
    assert all(m["wanted"] != m["found"] and m["found"] in QUICK_MOTIONS for m in res["motion_misses"])


def test_identity_accuracy_is_reported_by_split(quick):
    """Held-out emoji vs held-out (emoji, motion) pairs: the split label of each asked-for clip, exact counts."""
    model, val, _ = quick
    clips = [Clip(c.frames, c.durations_ms, c.caption, {**c.labels, "split": "a" if i % 3 else "b"})
             for i, c in enumerate(val[:12])]
    wrong = [Clip(c.frames, c.durations_ms, c.caption, {**c.labels, "object": "nothing"}) if i < 4 else c
             for i, c in enumerate(clips)]  # clips 0…3 ask for an object that is not there: misses
    res = evaluate_clips(wrong, clips, model, export_sharpness=False)
    assert res["identity_accuracy"] == pytest.approx(8 / 12)
    assert res["identity_accuracy_by_split"] == {"a": {"accuracy": pytest.approx(6 / 8), "clips": 8},
                                                 "b": {"accuracy": pytest.approx(2 / 4), "clips": 4}}
    per_motion: dict[str, list[bool]] = {}
    for i, c in enumerate(clips):
        per_motion.setdefault(c.labels["motion"], []).append(i >= 4)
    assert res["identity_accuracy_by_motion"] == {m: {"accuracy": pytest.approx(np.mean(v)), "clips": len(v)}
                                                  for m, v in per_motion.items()}
    # each miss names what was asked for and what the bank found instead (the clip's real object)
    assert res["identity_misses"] == [{"caption": c.caption, "wanted": "nothing", "found": c.labels["object"],
                                       "split": "a" if i % 3 else "b"} for i, c in enumerate(clips[:4])]


def test_identity_bank_recognises_shapes():
    src = open_source("builtin:shapes", 48, num_clips=40, seed=3)
    bank = IdentityBank.from_sprites(src.identity_sprites())
    clips = [src[i] for i in range(len(src))]
    acc = np.mean([bank.identify(c) == c.labels["object"] for c in clips])
    assert acc >= 0.9
    empty = Clip(np.zeros((2, 48, 48, 4), np.uint8), [100, 100])
    assert bank.identify(empty) is None


def test_reference_identity_accuracy_is_the_rule_on_real_clips():
    src = open_source("builtin:shapes", 48, num_clips=30, seed=4)
    bank = IdentityBank.from_sprites(src.identity_sprites())
    clips = [src[i] for i in range(len(src))]
    base = reference_identity_accuracy(clips, bank, 8)
    views = [c.frames[uniform_keyframes(c.num_frames, 8)[1:]] for c in clips]  # what a sample is scored on
    hits = [bank.identify(Clip(v, [100] * len(v))) == c.labels["object"] for v, c in zip(views, clips)]
    assert base == pytest.approx(np.mean(hits)) and base >= 0.8
    first = hits.index(True)  # relabel one recognised clip: exactly one hit fewer
    wrong = [Clip(c.frames, c.durations_ms, c.caption, {**c.labels, "object": "nothing"}) if i == first else c
             for i, c in enumerate(clips)]
    assert reference_identity_accuracy(wrong, bank, 8) == pytest.approx(base - 1 / len(clips))
    assert reference_identity_accuracy([Clip(c.frames, c.durations_ms) for c in clips], bank, 8) is None


def test_identity_feature_ignores_faint_specks():
    """Decoder haze (α ≈ 20 far from the object) must not stretch the crop box: same feature, exactly."""
    from rdtf_engine.eval.metrics import identity_feature

    f = np.zeros((64, 64, 4), np.uint8)
    f[20:40, 24:36] = (250, 200, 40, 255)
    hazy = f.copy()
    hazy[0, 0, 3] = hazy[63, 63, 3] = 20
    assert np.array_equal(identity_feature(hazy), identity_feature(f))
    faded = f.copy()
    faded[..., 3] //= 4  # a whole object fading out (α 63) is still found
    assert identity_feature(faded) is not None


# ---------------------------------------------------------------------------------------------- alpha (exact)
def _square(alpha_value: int = 255) -> np.ndarray:
    f = np.zeros((32, 32, 4), np.uint8)
    f[4:14, 4:14] = (200, 30, 30, alpha_value)  # 10 × 10 opaque square
    return f


def test_alpha_semi_share_exact():
    clean = _square()[None]
    assert alpha_semi_share(clean) == 0.0
    soft = _square()
    soft[3, 3:15, 3] = soft[14, 3:15, 3] = soft[3:15, 3, 3] = soft[3:15, 14, 3] = 64  # 1-px soft edge
    soft[3, 3:15, :3] = soft[14, 3:15, :3] = soft[3:15, 3, :3] = soft[3:15, 14, :3] = 200
    assert alpha_semi_share(soft[None]) == 0.0
    haze = _square()
    haze[24:28, 24:28] = (255, 255, 255, 100)  # 4 × 4 semi-transparent patch far from the edge band
    # edge band = 14×14 dilation − 6×6 erosion; visible pixels off the band: 6×6 interior + 16 haze
    assert alpha_semi_share(haze[None]) == pytest.approx(16 / (36 + 16))
    assert alpha_semi_share(np.stack([haze, clean[0]])) == pytest.approx(16 / (2 * 36 + 16))


def test_background_flicker_and_loop_seam_exact():
    a, b = _square(), _square()
    assert background_flicker(np.stack([a, b])) == 0.0
    a[30, 30, 3] = 100  # a speck in frame 0 only, far from the square
    background = 32 * 32 - 14 * 14  # everything beyond 2 px of α > 127
    assert background_flicker(np.stack([a, b])) == pytest.approx(2 * 100 / (2 * background) / 255)
    grey = [np.full((4, 4, 4), (v, v, v, 255), np.uint8) for v in (0, 50, 100)]
    assert loop_seam(np.stack(grey)) == pytest.approx(2.0)  # the wrap jumps twice as far as any step
    assert loop_seam(np.stack(grey + [grey[1]])) == pytest.approx(1.0)
    assert loop_seam(np.stack([grey[0], grey[0]])) == 0.0


def test_real_procedural_clips_are_clean():
    sprite = shape_sprite("circle", "green")
    for m in ("bounce", "spin", "shake", "slide", "blink"):
        spec = sample_motion(m, 12, np.random.default_rng(0))
        frames = render_motion(sprite, motion_frames(spec, 12), 48)
        assert background_flicker(frames) < 1e-4  # only faint anti-aliased tips can reach the background
        assert alpha_semi_share(frames) < 0.02
        assert loop_seam(frames) <= 1.0 + 1e-6, m


def test_classifier_input_resampling_by_time():
    from rdtf_engine.eval.classifier import clip_tensor, sample_frame_indices

    assert sample_frame_indices([100] * 4, 8).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert sample_frame_indices([300, 100], 4).tolist() == [0, 0, 0, 1]
    frames = np.zeros((2, 16, 16, 4), np.uint8)
    frames[1, ..., 3] = 255
    frames[1, ..., 0] = 255
    x = clip_tensor(Clip(frames, [100, 100]), 8, 4)
    assert x.shape == (4, 4, 8, 8)  # (RGBA, T, S, S): frames 0, 0, 1, 1 by time
    assert torch.all(x[0, 2:] == 1) and torch.all(x[3, 2:] == 1) and torch.all(x[1:3, 2:] == 0)
    assert float(x[:, :2].abs().sum()) == 0.0
