"""Exact tests of rdtf_engine.data.keyframes: clustering key frames, ping-pong, fill, uniform spacing."""

from __future__ import annotations

import time

import numpy as np
import pytest

from rdtf_engine.core.errors import InputError
from rdtf_engine.data.keyframes import KS, extract_all, extract_keyframes, loop_frames, uniform_keyframes


def clustered(labels: str, dim: int = 16, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    """Features (F, dim): one far-apart centre per letter, plus small noise."""
    rng = np.random.default_rng(seed)
    centres = {c: rng.normal(size=dim) * 20 for c in sorted(set(labels))}
    return np.stack([centres[c] for c in labels]) + rng.normal(size=(len(labels), dim)) * noise


def test_uniform_keyframes():
    assert uniform_keyframes(8, 3) == [0, 4, 7]  # 3.5 rounds half up
    assert uniform_keyframes(48, 8) == [0, 7, 13, 20, 27, 34, 40, 47]
    assert uniform_keyframes(5, 5) == [0, 1, 2, 3, 4]
    assert uniform_keyframes(10, 1) == [0]
    assert uniform_keyframes(10, 2) == [0, 9]
    assert uniform_keyframes(3, 5) == [0, 1, 2, 1, 0]  # shorter than k: ping-pong
    assert uniform_keyframes(2, 4) == [0, 1, 0, 1]
    assert uniform_keyframes(1, 3) == [0, 0, 0]
    for n in range(1, 49):
        for k in range(1, min(n, 8) + 1):
            idx = uniform_keyframes(n, k)
            assert len(idx) == k and idx == sorted(set(idx)) and idx[0] == 0 and (k == 1 or idx[-1] == n - 1)
    for bad in [(0, 3), (3, 0)]:
        with pytest.raises(InputError):
            uniform_keyframes(*bad)


def test_obvious_clusters_give_first_visit_of_each():
    feats = clustered("AABBAACCCBAA")
    assert extract_keyframes(feats, 3) == [0, 2, 6]
    feats4 = clustered("AABBADDCCBAA")
    assert extract_keyframes(feats4, 4) == [0, 2, 5, 7]
    feats8 = clustered("ABCDEFGH" * 3 + "HHH")  # 27 frames, 8 looks, looping
    assert extract_keyframes(feats8, 8) == list(range(8))


def test_sklearn_backend_agrees_with_numpy():
    # the authors' KMeans(random_state=42): same answers on clear clusters, ping-pong and identical frames
    assert extract_keyframes(clustered("AABBADDCCBAA"), 4, backend="sklearn") == [0, 2, 5, 7]
    assert extract_keyframes(clustered("ABC"), 4, backend="sklearn") == [0, 1, 2, 1]
    two_looks = np.repeat(np.eye(2, 4) * 5, 5, axis=0)
    assert extract_keyframes(two_looks, 4, backend="sklearn") == [0, 3, 5, 6]


def test_k_equal_to_frames_keeps_every_frame_and_k1():
    feats = np.random.default_rng(3).normal(size=(6, 8))
    assert extract_keyframes(feats, 6) == [0, 1, 2, 3, 4, 5]
    assert extract_keyframes(feats, 1) == [0]


def test_pingpong_when_clip_is_shorter_than_k():
    three = clustered("ABC")
    assert extract_keyframes(three, 4) == [0, 1, 2, 1]
    assert extract_keyframes(three, 5) == [0, 1, 2, 1, 0]
    assert extract_keyframes(clustered("ABCDE"), 8) == [0, 1, 2, 3, 4, 3, 2, 1]
    assert extract_keyframes(clustered("AB"), 5) == [0, 1, 0, 1, 0]
    assert extract_keyframes(np.zeros((1, 4)), 3) == [0, 0, 0]


def test_identical_frames_are_filled_evenly():
    assert extract_keyframes(np.ones((6, 4)), 3) == [0, 3, 5]  # only one look: uniform_keyframes(6, 3)
    two_looks = np.repeat(np.eye(2, 4) * 5, 5, axis=0)  # frames 0-4 identical, 5-9 identical
    assert extract_keyframes(two_looks, 3) == [0, 5, 9]  # first visits 0, 5; fill from [0, 5, 9]
    assert extract_keyframes(two_looks, 4) == [0, 3, 5, 6]  # fill from uniform [0, 3, 6, 9]: 3 then 6


def test_random_clips_properties_and_determinism():
    rng = np.random.default_rng(7)
    for trial in range(8):
        n = int(rng.integers(8, 49))
        feats = rng.normal(size=(n, 32)).astype(np.float32)
        ks = extract_all(feats, seed=trial)
        assert sorted(ks) == list(KS)
        for k, idx in ks.items():
            assert len(idx) == k and idx == sorted(set(idx)) and idx[0] == 0 and idx[-1] < n
        assert extract_all(feats, seed=trial) == ks


def test_speed_on_48_frames():
    feats = np.random.default_rng(0).normal(size=(48, 256))
    extract_keyframes(feats, 8)
    t0 = time.perf_counter()
    for _ in range(5):
        extract_all(feats)
    per_clip = (time.perf_counter() - t0) / 5
    assert per_clip < 0.5  # ~15-25 ms for all six k on an idle core; loose bound for a shared machine


def test_bad_input():
    for feats, k in [(np.zeros(5), 3), (np.zeros((0, 4)), 3), (np.zeros((5, 4)), 0), (np.full((5, 4), np.nan), 3)]:
        with pytest.raises(InputError):
            extract_keyframes(feats, k)
    with pytest.raises(InputError):
        extract_keyframes(np.zeros((5, 4)), 3, backend="torch")


def test_loop_frames_space_the_seam_like_every_other_step():
    assert loop_frames(72, 8) == [0, 9, 18, 27, 36, 45, 54, 63]  # 63 → 0 is 9 frames on, as every step
    assert uniform_keyframes(72, 8)[-1] == 71  # both ends: 71 → 0 would be a 1-frame "seam"
    assert loop_frames(10, 3) == [0, 3, 6] and loop_frames(5, 5) == [0, 1, 2, 3, 4] and loop_frames(1, 1) == [0]
    assert loop_frames(3, 5) == uniform_keyframes(3, 5)  # fewer frames than asked: ping-pong, as uniform
    with pytest.raises(InputError):
        loop_frames(0, 3)
