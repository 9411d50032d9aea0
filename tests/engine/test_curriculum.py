"""Exact tests of rdtf_engine.training.curriculum: static schedule, PID signal, rank/bucket convention, sampling, state."""

from __future__ import annotations

import dataclasses
import json
import math
import random

import pytest

from rdtf_engine.core.config import CurriculumConfig
from rdtf_engine.core.errors import CheckpointError, InputError
from rdtf_engine.training.curriculum import (
    Curriculum,
    CurriculumState,
    adaptive_weights,
    bucket,
    percentile_rank,
    pid_signal,
    sample_task,
    static_weights,
    task_weights,
)
from rdtf_engine.training.masks import TASKS

GEN, INTERP, PRED = ("t2v", "i2v", "it2v"), ("interpolation",), ("pred_forward", "pred_backward")


def by_group(w: dict[str, float]) -> tuple[float, float, float]:
    """(generation, interpolation, prediction) after checking that the tasks of a group agree."""
    for group in (GEN, INTERP, PRED):
        assert len({w[t] for t in group}) == 1
    return w["t2v"], w["interpolation"], w["pred_forward"]


@pytest.mark.parametrize(
    "step,expected",
    [
        (0, (0.1, 0.9, 0.7)),
        (250, (0.3, 0.7, 0.6)),  # E/4
        (500, (0.5, 0.5, 0.5)),  # E/2
        (750, (0.7, 0.3, 0.4)),  # 3E/4
        (1000, (0.9, 0.1, 0.3)),  # E
        (2000, (0.9, 0.1, 0.3)),  # 2E
        (-5, (0.1, 0.9, 0.7)),  # negative steps count as 0
    ],
)
def test_static_weights(step, expected):
    w = static_weights(step, 1000)
    assert set(w) == set(TASKS)
    assert by_group(w) == pytest.approx(expected)


def test_static_weights_formula_and_bad_horizon():
    # odd horizon: E/2 = 3.5; s = 5 is in the second piece: 0.5 + 0.4 * 1.5 / 3.5
    assert static_weights(5, 7)["t2v"] == pytest.approx(0.5 + 0.4 * 1.5 / 3.5)
    assert static_weights(3, 7)["interpolation"] == pytest.approx(0.9 - 0.4 * 3 / 3.5)
    assert by_group(static_weights(0, 1)) == pytest.approx((0.1, 0.9, 0.7))
    assert by_group(static_weights(1, 1)) == pytest.approx((0.9, 0.1, 0.3))
    with pytest.raises(InputError):
        static_weights(0, 0)


def test_pid_signal():
    # 5·4 + 3·mean(1, 2, 4) + 1.3·(4 − 2) = 20 + 7 + 2.6
    assert pid_signal([1.0, 2.0, 4.0]) == pytest.approx(29.6)
    assert pid_signal([2.0]) == pytest.approx(5 * 2 + 3 * 2)  # derivative 0 for one loss
    assert pid_signal([3.0, 1.0], kp=1, ki=0, kd=2) == pytest.approx(1 - 4)
    with pytest.raises(InputError):
        pid_signal([])


def buggy_rank(value: float, buf: list[float]) -> float:
    """The released code's loop (docs/curriculum.md, adaptive rank) on its ascending buffer."""
    idx = 0
    for idx in range(len(buf) - 1):
        if value > buf[idx + 1]:
            break
    return idx / len(buf)


def test_percentile_rank_fixes_the_released_loop():
    buf = [float(i) for i in range(20)]  # ascending, like the code's sorted buffer
    for value, right in [(7.5, 8 / 20), (12.0, 12 / 20), (18.5, 19 / 20), (100.0, 1.0)]:
        assert buggy_rank(value, buf) == 0.0  # the bug: (almost) everything lands at rank 0
        assert percentile_rank(value, buf) == right
    assert percentile_rank(-1.0, buf) == 0.0
    assert percentile_rank(7.0, buf) == 7 / 20  # strictly below: ties do not count
    assert percentile_rank(5.0, buf[::-1]) == 5 / 20  # order of the history does not matter


def test_percentile_rank_is_neutral_while_warming_up():
    assert percentile_rank(100.0, []) == 0.5
    assert percentile_rank(100.0, [1.0] * 9) == 0.5
    assert percentile_rank(100.0, [1.0] * 10) == 1.0


def test_bucket_mapping_and_direction():
    cases = {0.0: 4, 0.1: 4, 0.2: 3, 0.39: 3, 0.4: 2, 0.5: 2, 0.6: 1, 0.79: 1, 0.8: 0, 0.95: 0, 1.0: 0}
    assert {r: bucket(r) for r in cases} == cases
    assert {bucket(i / 100) for i in range(101)} == {0, 1, 2, 3, 4}  # every bucket reachable
    easy = adaptive_weights(bucket(0.0))  # signal lowest in history → model finds data easy → harder tasks
    hard = adaptive_weights(bucket(1.0))
    assert by_group(easy) == (0.9, 0.1, 0.5)
    assert by_group(hard) == (0.1, 0.9, 0.5)
    assert [by_group(adaptive_weights(b)) for b in range(5)] == [
        (0.1, 0.9, 0.5),
        (0.3, 0.7, 0.5),
        (0.5, 0.5, 0.5),
        (0.7, 0.3, 0.5),
        (0.9, 0.1, 0.5),
    ]
    for bad in (-0.01, 1.01, math.nan):
        with pytest.raises(InputError):
            bucket(bad)
    with pytest.raises(InputError):
        adaptive_weights(5)


def test_state_direction_end_to_end():
    st = CurriculumState(window=50)
    for i in range(40):
        st.update(1.0 + 0.01 * (i % 5))  # a steady loss around 1.02
    st.update(0.2)  # a sudden drop: easy data
    assert st.rank == 0.0 and st.bucket == 4
    assert task_weights("adaptive", 0, 100, st)["t2v"] == pytest.approx(0.1 + 0.9)
    st.update(5.0)  # a spike: hard data
    assert st.rank == 1.0 and st.bucket == 0
    assert task_weights("adaptive", 0, 100, st)["interpolation"] == pytest.approx(0.9 + 0.9)


def test_task_weights_modes():
    assert task_weights("none", 123, 1000) == {t: 1.0 for t in TASKS}
    assert task_weights("linear", 250, 1000) == static_weights(250, 1000)
    neutral = task_weights("adaptive", 250, 1000)  # no state: neutral bucket 2 adds 0.5 everywhere
    assert by_group(neutral) == pytest.approx((0.8, 1.2, 1.1))
    st = CurriculumState()
    st.bucket = 4
    assert by_group(task_weights("adaptive", 750, 1000, st)) == pytest.approx((0.7 + 0.9, 0.3 + 0.1, 0.4 + 0.5))
    with pytest.raises(InputError):
        task_weights("cosine", 0, 1000)


class FixedRng:
    def __init__(self, u: float) -> None:
        self.u = u

    def random(self) -> float:
        return self.u


def test_sample_task_cumulative_rule():
    ones = {t: 1.0 for t in TASKS}  # total 6: u·6 falls in [i, i+1) → TASKS[i]
    assert [sample_task(ones, FixedRng(u)) for u in (0.0, 0.49, 0.5, 0.9999999999999999)] == [
        "t2v",
        "it2v",
        "interpolation",
        "pred_backward",
    ]
    skewed = {"t2v": 0.0, "i2v": 3.0, "it2v": 0.0, "interpolation": 1.0, "pred_forward": 0.0, "pred_backward": 0.0}
    assert [sample_task(skewed, FixedRng(u)) for u in (0.0, 0.7499, 0.75, 0.9999999999999999)] == [
        "i2v",
        "i2v",
        "interpolation",
        "interpolation",
    ]
    # dict order does not matter: tasks are visited in TASKS order
    assert sample_task(dict(reversed(list(ones.items()))), FixedRng(0.0)) == "t2v"


def test_sample_task_frequencies():
    w = {"t2v": 1.0, "i2v": 2.0, "it2v": 3.0, "interpolation": 4.0, "pred_forward": 0.0, "pred_backward": 10.0}
    rng = random.Random(1234)
    n = 20_000
    draws = [sample_task(w, rng) for _ in range(n)]
    for task, weight in w.items():
        assert draws.count(task) / n == pytest.approx(weight / 20.0, abs=0.012)  # ≈ 3.5 σ at p = 0.5
    assert draws.count("pred_forward") == 0


def test_sample_task_rejects_bad_weights():
    for bad in ({"t2v": -1.0}, {"t2v": math.nan}, {"t2v": 0.0}, {"v2v": 1.0}, {}):
        with pytest.raises(InputError):
            sample_task(bad, random.Random(0))


def test_state_warm_up_window_and_nan():
    st = CurriculumState(kp=1, ki=0, kd=0, window=12)  # signal = the loss itself
    for i in range(10):
        assert st.update(10.0 - i)
        assert (st.rank, st.bucket) == (0.5, 2)  # fewer than 10 past signals: neutral
    st.update(0.5)  # lower than all 10 past signals
    assert (st.rank, st.bucket, st.signal) == (0.0, 4, 0.5)
    for i in range(5):
        st.update(float(i))
    assert len(st.losses) == 12 and len(st.history) == 12  # windows are capped
    before = st.to_dict()
    for bad in (math.nan, math.inf, -math.inf, float("nan")):
        assert st.update(bad) is False
    after = st.to_dict()
    assert after.pop("skipped") == 4 and before.pop("skipped") == 0
    assert after == before  # non-finite losses change nothing else


def test_state_round_trip_is_exact():
    st = CurriculumState(window=30)
    rng = random.Random(5)
    for _ in range(45):
        st.update(rng.random() * 3 + 1e-7)
    data = json.loads(json.dumps(st.to_dict()))
    st2 = CurriculumState.from_dict(data)
    assert st2.to_dict() == st.to_dict()
    for _ in range(20):
        x = rng.random()
        st.update(x)
        st2.update(x)
        assert st2.info() == st.info()
    with pytest.raises(CheckpointError):
        CurriculumState.from_dict({**st.to_dict(), "version": 99})
    with pytest.raises(CheckpointError):
        CurriculumState.from_dict({k: v for k, v in st.to_dict().items() if k != "losses"})
    with pytest.raises(CheckpointError):
        CurriculumState.from_dict({**st.to_dict(), "losses": [1.0] * 31})


def run(cur: Curriculum, steps: range, losses: random.Random) -> list[tuple[str, dict]]:
    out = []
    for step in steps:
        out.append(cur.next_task(step))
        cur.observe(losses.random() * 2 if step % 17 else math.nan)
    return out


@pytest.mark.parametrize("mode", ["none", "linear", "adaptive"])
def test_curriculum_checkpoint_gives_identical_future(mode):
    cfg = CurriculumConfig(mode=mode, window=40)
    cur = Curriculum(cfg, total_steps=300, seed=11)
    run(cur, range(100), random.Random(1))
    blob = json.dumps(cur.state_dict())
    resumed = Curriculum(CurriculumConfig(mode=mode, window=40), total_steps=300, seed=999)  # seed comes back
    resumed.load_state_dict(json.loads(blob))
    assert run(resumed, range(100, 300), random.Random(2)) == run(cur, range(100, 300), random.Random(2))


def test_curriculum_basics_and_errors():
    cur = Curriculum(CurriculumConfig(mode="linear"), total_steps=1000)
    assert cur.horizon == 1000
    task, w = cur.next_task(500)
    assert task in TASKS and by_group(w) == pytest.approx((0.5, 0.5, 0.5))
    assert Curriculum(CurriculumConfig(horizon=200), total_steps=1000).horizon == 200
    with pytest.raises(InputError):
        Curriculum(CurriculumConfig(), total_steps=0)
    with pytest.raises(InputError):
        Curriculum(CurriculumConfig(mode="cosine"), total_steps=10)
    adaptive = Curriculum(CurriculumConfig(mode="adaptive"), total_steps=10)
    sd = adaptive.state_dict()
    for key, value in [("mode", "linear"), ("window", 10), ("kp", 1.0)]:
        other = Curriculum(dataclasses.replace(CurriculumConfig(), **{key: value}), total_steps=10)
        with pytest.raises(CheckpointError):
            other.load_state_dict(sd)
    with pytest.raises(CheckpointError):
        adaptive.load_state_dict({**sd, "rng": [3, [1, 2], None]})
    with pytest.raises(CheckpointError):
        adaptive.load_state_dict({"config": sd["config"]})
