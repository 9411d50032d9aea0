"""Exact tests of rdtf_engine.training.masks: condition masks per task, validity / lock masks, task inference, masked MSE."""

from __future__ import annotations

import random

import pytest
import torch

from rdtf_engine.core.errors import InputError
from rdtf_engine.training.masks import (
    GROUP_OF,
    TASK_GROUPS,
    TASKS,
    apply_frame_mask,
    condition_mask,
    infer_task,
    interpolation_mask,
    lock_mask,
    masked_motion_mse,
    masked_mse,
    per_sample_masked_mse,
    uses_text,
    validity_mask,
)

SEEDS = range(400)
F = 8


def masks_for(task: str, n_valid: int, num_frames: int = F) -> list[list[int]]:
    return [condition_mask(task, n_valid, num_frames, random.Random(s)) for s in SEEDS]


def test_task_names_and_groups():
    assert TASKS == ("t2v", "i2v", "it2v", "interpolation", "pred_forward", "pred_backward")
    assert TASK_GROUPS == {
        "generation": ("t2v", "i2v", "it2v"),
        "interpolation": ("interpolation",),
        "prediction": ("pred_forward", "pred_backward"),
    }
    assert [GROUP_OF[t] for t in TASKS] == ["generation"] * 3 + ["interpolation"] + ["prediction"] * 2


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("n_valid", [8, 3, 2, 1])
def test_mask_shape_and_padding(task, n_valid):
    for m in masks_for(task, n_valid):
        assert len(m) == F
        assert set(m) <= {0, 1}
        assert m[n_valid:] == [0] * (F - n_valid)
        given = sum(m)
        if n_valid == 1 or task == "t2v":
            assert given == 0
        else:
            assert 1 <= given <= n_valid - 1  # something given, something left to generate


def test_every_task_leaves_work_and_gives_a_frame_for_all_lengths():
    for n_valid in range(2, F + 1):
        for task in TASKS[1:]:
            for m in masks_for(task, n_valid)[:60]:
                assert 1 <= sum(m[:n_valid]) <= n_valid - 1, (task, n_valid, m)


@pytest.mark.parametrize("task", ["i2v", "it2v"])
def test_single_frame_tasks_follow_the_code(task):
    for n_valid in (8, 3):
        seen = set()
        for s in SEEDS:
            m = condition_mask(task, n_valid, F, random.Random(s))
            assert sum(m) == 1
            assert m.index(1) == random.Random(s).randint(0, n_valid - 1)  # same draw as make_condition
            seen.add(m.index(1))
        assert seen == set(range(n_valid))


def test_t2v_gives_nothing():
    assert all(m == [0] * F for n in (8, 3, 1) for m in masks_for("t2v", n))


def test_interpolation_patterns():
    pats8 = {(0, 1, 0, 1, 0, 1, 0, 1), (1, 0, 1, 0, 1, 0, 1, 0), (1, 0, 0, 1, 0, 0, 1, 0)}
    assert {tuple(m) for m in masks_for("interpolation", 8)} == pats8
    pats3 = {(0, 1, 0, 0, 0, 0, 0, 0), (1, 0, 1, 0, 0, 0, 0, 0), (1, 0, 0, 0, 0, 0, 0, 0)}
    assert {tuple(m) for m in masks_for("interpolation", 3)} == pats3
    counts = {p: sum(tuple(m) == p for m in masks_for("interpolation", 8)) for p in pats8}
    assert all(100 <= c <= 170 for c in counts.values())  # uniform: 400 / 3 ≈ 133 each
    assert interpolation_mask("every_third", 7, 8) == [1, 0, 0, 1, 0, 0, 1, 0]
    with pytest.raises(InputError):
        interpolation_mask("checker", 8, 8)


def test_pred_backward_later_frames_given():
    # start ∈ randint(1, n//2 + 1) = 1..5 for n = 8: the first `start` frames are predicted.
    expect8 = {tuple([0] * s + [1] * (8 - s)) for s in range(1, 6)}
    assert {tuple(m) for m in masks_for("pred_backward", 8)} == expect8
    expect3 = {(0, 1, 1, 0, 0, 0, 0, 0), (0, 0, 1, 0, 0, 0, 0, 0)}
    assert {tuple(m) for m in masks_for("pred_backward", 3)} == expect3
    # n = 2: randint(1, 2) → 2 is clipped to 1 so one frame is still predicted
    assert {tuple(m) for m in masks_for("pred_backward", 2)} == {(0, 1, 0, 0, 0, 0, 0, 0)}


def test_pred_forward_first_frames_given():
    # end ∈ randint(max(1, n//2), n - 1) = 4..7 for n = 8
    expect8 = {tuple([1] * e + [0] * (8 - e)) for e in range(4, 8)}
    assert {tuple(m) for m in masks_for("pred_forward", 8)} == expect8
    expect3 = {(1, 0, 0, 0, 0, 0, 0, 0), (1, 1, 0, 0, 0, 0, 0, 0)}
    assert {tuple(m) for m in masks_for("pred_forward", 3)} == expect3
    assert {tuple(m) for m in masks_for("pred_forward", 2)} == {(1, 0, 0, 0, 0, 0, 0, 0)}


def test_n_valid_one_gives_nothing_for_every_task():
    for task in TASKS:
        assert {tuple(m) for m in masks_for(task, 1)} == {(0,) * F}
    assert condition_mask("i2v", 1, 1, random.Random(0)) == [0]


def test_condition_mask_is_deterministic_and_accepts_paper_names():
    a = [condition_mask(t, 6, F, random.Random(7)) for t in TASKS]
    b = [condition_mask(t, 6, F, random.Random(7)) for t in TASKS]
    assert a == b
    rng1, rng2 = random.Random(3), random.Random(3)
    assert condition_mask("pre_frame_prediction", 8, F, rng1) == condition_mask("pred_backward", 8, F, rng2)
    assert condition_mask("post_frame_prediction", 8, F, rng1) == condition_mask("pred_forward", 8, F, rng2)


def test_condition_mask_rejects_bad_input():
    rng = random.Random(0)
    for bad in [("v2v", 8, 8), ("t2v", 0, 8), ("t2v", 9, 8), ("t2v", 1, 0)]:
        with pytest.raises(InputError):
            condition_mask(*bad, rng)


def test_uses_text():
    assert [uses_text(t) for t in TASKS] == [True, False, True, True, True, True]
    assert uses_text("pre_frame_prediction") is True
    with pytest.raises(InputError):
        uses_text("nope")


def test_validity_mask():
    assert validity_mask(3, 8) == [1, 1, 1, 0, 0, 0, 0, 0]
    assert validity_mask(8, 8) == [1] * 8
    assert validity_mask(1, 1) == [1]
    for bad in [(0, 8), (9, 8)]:
        with pytest.raises(InputError):
            validity_mask(*bad)


def test_lock_mask():
    assert lock_mask([0, 7, 3], 8) == [1, 0, 0, 1, 0, 0, 0, 1]
    assert lock_mask([], 4) == [0, 0, 0, 0]
    assert lock_mask([2, 2], 4) == [0, 0, 1, 0]
    assert lock_mask(range(3), 3) == [1, 1, 1]
    import numpy as np

    assert lock_mask([np.int64(1)], 3) == [0, 1, 0]
    for bad in ([8], [-1], [1.0], ["2"], [True]):
        with pytest.raises(InputError):
            lock_mask(bad, 8)
    with pytest.raises(InputError):
        lock_mask([0], 0)


@pytest.mark.parametrize(
    "mask,has_text,n_valid,expected",
    [
        ([0] * 8, True, None, "t2v"),
        ([0] * 8, False, None, "t2v"),
        ([0, 0, 1, 0, 0, 0, 0, 0], True, None, "it2v"),
        ([0, 0, 1, 0, 0, 0, 0, 0], False, None, "i2v"),
        ([1, 1, 1, 0, 0, 0, 0, 0], True, None, "pred_forward"),
        ([0, 0, 0, 1, 1, 1, 1, 1], True, None, "pred_backward"),
        ([0, 0, 0, 1, 1, 1, 0, 0], True, 6, "pred_backward"),  # padded slots are ignored
        ([0, 0, 0, 1, 1, 1, 0, 0], True, None, "interpolation"),  # a run in the middle
        ([1, 0, 0, 0, 0, 0, 0, 1], True, None, "interpolation"),  # start and end frames: in-betweening
        ([1, 0, 1, 0, 1, 0, 1, 0], False, None, "interpolation"),
        ([1] * 8, True, None, "interpolation"),
    ],
)
def test_infer_task_table(mask, has_text, n_valid, expected):
    assert infer_task(mask, has_text, n_valid) == expected


def test_infer_task_round_trips_training_masks():
    # from n_valid = 5 on every training mask is unambiguous (at 4, pred_backward may give only the last frame,
    # which is an it2v mask; at 3 and below the interpolation patterns also collapse to one frame or a run)
    for n_valid in range(5, F + 1):
        for task in TASKS:
            for m in masks_for(task, n_valid)[:50]:
                assert infer_task(m, uses_text(task), n_valid) == task, (task, n_valid, m)
    with pytest.raises(InputError):
        infer_task([0, 1], True, 3)


def test_masked_mse_hand_values():
    # B=2, C=1, F=2, H=W=1; eps = 0, eps_hat = [[1, 5], [2, 3]]; sample 0 has only frame 0 valid.
    eps_hat = torch.tensor([[1.0, 5.0], [2.0, 3.0]]).view(2, 1, 2, 1, 1)
    eps = torch.zeros_like(eps_hat)
    mask = torch.tensor([[1, 0], [1, 1]])
    assert masked_mse(eps_hat, eps, mask).item() == pytest.approx((1 + 4 + 9) / 4)  # paper: mean over all
    assert masked_mse(eps_hat, eps, mask, renormalize=True).item() == pytest.approx(14 / 3)
    assert per_sample_masked_mse(eps_hat, eps, mask).tolist() == pytest.approx([0.5, 6.5])
    assert per_sample_masked_mse(eps_hat, eps, mask, renormalize=True).tolist() == pytest.approx([1.0, 6.5])
    assert masked_mse(eps_hat, eps, mask.bool()).item() == pytest.approx(3.5)


def test_masked_mse_matches_formula_on_random_tensors():
    g = torch.Generator().manual_seed(0)
    eps_hat, eps = torch.randn(3, 4, 8, 5, 6, generator=g), torch.randn(3, 4, 8, 5, 6, generator=g)
    mask = torch.tensor([validity_mask(n, 8) for n in (8, 3, 1)], dtype=torch.float32)
    m = mask[:, None, :, None, None]
    ref = ((m * eps_hat - m * eps) ** 2).mean()
    assert torch.equal(masked_mse(eps_hat, eps, mask), ref)
    assert per_sample_masked_mse(eps_hat, eps, mask).mean().item() == pytest.approx(ref.item())
    renorm = ((m * (eps_hat - eps)) ** 2).sum() / (mask.sum() * 4 * 5 * 6)
    assert masked_mse(eps_hat, eps, mask, renormalize=True).item() == pytest.approx(renorm.item())
    # all-valid: both normalisations agree with the plain MSE
    full = torch.ones(3, 8)
    plain = torch.nn.functional.mse_loss(eps_hat, eps)
    assert masked_mse(eps_hat, eps, full).item() == pytest.approx(plain.item())
    assert masked_mse(eps_hat, eps, full, renormalize=True).item() == pytest.approx(plain.item())


def test_masked_mse_edge_cases():
    eps_hat = torch.ones(1, 2, 3, 2, 2, requires_grad=True)
    zero = torch.zeros(1, 3)
    assert masked_mse(eps_hat, torch.zeros(1, 2, 3, 2, 2), zero, renormalize=True).item() == 0.0
    loss = masked_mse(eps_hat, torch.zeros(1, 2, 3, 2, 2), torch.tensor([[1.0, 0.0, 0.0]]))
    loss.backward()
    assert eps_hat.grad[:, :, 1:].abs().sum().item() == 0.0  # padded frames get no gradient
    assert eps_hat.grad[:, :, 0].abs().sum().item() > 0
    with pytest.raises(ValueError):
        masked_mse(torch.zeros(1, 2, 3, 2, 2), torch.zeros(1, 2, 4, 2, 2), zero)
    with pytest.raises(ValueError):
        masked_mse(torch.zeros(1, 2, 3, 2, 2), torch.zeros(1, 2, 3, 2, 2), torch.zeros(1, 4))


def test_masked_motion_mse_hand_values_and_pairs():
    # B=2, C=1, F=3, H=W=1; eps = 0; sample 0: all valid, errors [1, 4, 2] → differences 3, -2;
    # sample 1: frames 0-1 valid, errors [5, 7, 100] → only the pair (0, 1) counts: difference 2.
    eps_hat = torch.tensor([[1.0, 4.0, 2.0], [5.0, 7.0, 100.0]]).view(2, 1, 3, 1, 1)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert masked_motion_mse(eps_hat, torch.zeros_like(eps_hat), mask).item() == pytest.approx((9 + 4 + 4) / 3)
    # an error shared by every frame (a still offset) costs nothing: only the frame-to-frame part counts
    g = torch.Generator().manual_seed(1)
    eps = torch.randn(2, 4, 6, 3, 3, generator=g)
    offset = torch.randn(2, 4, 1, 3, 3, generator=g)
    assert masked_motion_mse(eps + offset, eps, torch.ones(2, 6)).item() == pytest.approx(0.0, abs=1e-12)
    # a still prediction of a moving target pays for the motion it misses
    moving = torch.arange(6.0).view(1, 1, 6, 1, 1).expand(2, 4, 6, 3, 3)
    assert masked_motion_mse(torch.zeros_like(moving), moving, torch.ones(2, 6)).item() == pytest.approx(1.0)
    # no pair of valid frames: 0, and padded frames get no gradient
    single = torch.ones(1, 2, 3, 2, 2, requires_grad=True)
    assert masked_motion_mse(single, torch.zeros(1, 2, 3, 2, 2), torch.tensor([[1.0, 0.0, 0.0]])).item() == 0.0
    loss = masked_motion_mse(single * torch.arange(3.0).view(1, 1, 3, 1, 1), torch.zeros(1, 2, 3, 2, 2),
                             torch.tensor([[1.0, 1.0, 0.0]]))
    loss.backward()
    assert single.grad[:, :, 2].abs().sum().item() == 0.0 and single.grad[:, :, 1].abs().sum().item() > 0
    with pytest.raises(ValueError):
        masked_motion_mse(torch.zeros(1, 2, 3, 2, 2), torch.zeros(1, 2, 4, 2, 2), torch.ones(1, 3))


def test_apply_frame_mask():
    lat = torch.arange(2 * 1 * 3 * 1 * 2, dtype=torch.float32).view(2, 1, 3, 1, 2)
    out = apply_frame_mask(lat, torch.tensor([[1, 0, 1], [0, 0, 1]]))
    assert out.view(2, 3, 2).tolist() == [[[0, 1], [0, 0], [4, 5]], [[0, 0], [0, 0], [10, 11]]]
    assert out.dtype == torch.float32
    with pytest.raises(ValueError):
        apply_frame_mask(lat, torch.ones(2, 2))
