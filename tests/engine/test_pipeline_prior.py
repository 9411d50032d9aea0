"""The starting point of image-conditioned sampling: a prior clip built from the given frames (exact values)."""

from __future__ import annotations

import torch

from rdtf_engine.diffusion.pipeline import condition_prior


def _clip(values):  # (W, 1, 1, 1) latents with one value per frame
    return torch.tensor(values, dtype=torch.float32)[:, None, None, None]


def test_prior_blends_between_given_frames_and_copies_outside_them():
    cond = _clip([0.0, 0.0, 0.0, 3.0, 0.0, 0.0])  # frames 0 and 3 given (the others are masked to zero)
    prior = condition_prior(cond, [True, False, False, True, False, False])
    assert prior.flatten().tolist() == [0.0, 1.0, 2.0, 3.0, 3.0, 3.0]


def test_prior_of_one_given_frame_is_that_frame_everywhere():
    cond = _clip([0.0, 5.0, 0.0, 0.0])
    assert condition_prior(cond, [False, True, False, False]).flatten().tolist() == [5.0] * 4


def test_prior_without_given_frames_is_zero_and_keeps_shape():
    cond = torch.randn(8, 4, 2, 2)
    prior = condition_prior(cond, [False] * 8)
    assert prior.shape == cond.shape and not prior.any()


def test_sampled_steps_follow_img2img_strength():
    from rdtf_engine.diffusion.pipeline import sampled_steps

    assert [sampled_steps(20, s) for s in (1.0, 0.8, 0.5, 0.01)] == [20, 16, 10, 1]
    assert sampled_steps(7, 0.5) == 4 and sampled_steps(3, 1.0) == 3
