"""Difficulty-adaptive curriculum (DCL), docs/method.md §5: which task each training sample gets.

Final weight of a task = static weight (piecewise-linear schedule over steps, §4.2) + adaptive weight (a table
picked by the percentile rank of a PID signal on the training loss, §4.3). The task is then drawn in
proportion to the weights. Three modes reproduce the paper's Table 4 arms: "none" (uniform), "linear" (static
only, LCL) and "adaptive" (static + adaptive, DCL).

Convention (docs/curriculum.md): rank = fraction of recent signals strictly below the current one; a LOW rank
(loss lower than usual: the model finds the data easy) selects bucket 4, which pushes towards the harder
generation tasks; a HIGH rank selects bucket 0, which pushes towards interpolation.

Everything is pure or a small JSON-able state, so a checkpoint restores the exact future task sequence.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rdtf_engine.core.config import CURRICULA, CurriculumConfig
from rdtf_engine.core.errors import CheckpointError, InputError
from rdtf_engine.training.masks import GROUP_OF, TASKS

MODES = CURRICULA
# "sampling": fixed weights in proportion to how generation uses each task — text → video drafts most stickers,
# a given picture the next most, a longer sticker's later windows are forward predictions and locked frames
# interpolations; nothing draws earlier frames from later ones or a picture without words. A distillation run
# (training/consistency.py) learns the sampler's drawing, so it trains on what the sampler draws.
SAMPLING_WEIGHTS: dict[str, float] = {"t2v": 3.0, "it2v": 2.0, "pred_forward": 1.0, "interpolation": 1.0,
                                      "i2v": 0.5, "pred_backward": 0.5}
MIN_HISTORY = 10  # below this many past signals the rank is neutral (0.5)
NEUTRAL_RANK = 0.5
STATE_VERSION = 1

# (start, mid, end) static weight per task group, §4.2.
STATIC_TABLE: dict[str, tuple[float, float, float]] = {
    "generation": (0.1, 0.5, 0.9),
    "interpolation": (0.9, 0.5, 0.1),
    "prediction": (0.7, 0.5, 0.3),
}
# Additive weight per group for buckets b0..b4, §4.3. b0 favours the easy interpolation, b4 the hard generation.
ADAPTIVE_TABLES: tuple[dict[str, float], ...] = (
    {"generation": 0.1, "interpolation": 0.9, "prediction": 0.5},
    {"generation": 0.3, "interpolation": 0.7, "prediction": 0.5},
    {"generation": 0.5, "interpolation": 0.5, "prediction": 0.5},
    {"generation": 0.7, "interpolation": 0.3, "prediction": 0.5},
    {"generation": 0.9, "interpolation": 0.1, "prediction": 0.5},
)
NUM_BUCKETS = len(ADAPTIVE_TABLES)
NEUTRAL_BUCKET = 2


def static_weights(step: int, horizon: int) -> dict[str, float]:
    """Piecewise-linear start → mid → end weights at ``step`` with curriculum end E = ``horizon`` (§4.2).

    s < E/2: w0 + (w1 − w0)·s/(E/2);  E/2 ≤ s < E: w1 + (w2 − w1)·(s − E/2)/(E/2);  s ≥ E: w2.
    Negative steps count as 0.
    """
    if int(horizon) < 1:
        raise InputError(f"curriculum horizon must be >= 1 step, got {horizon}")
    half = horizon / 2
    s = max(0, step)
    out = {}
    for task in TASKS:
        w0, w1, w2 = STATIC_TABLE[GROUP_OF[task]]
        if s < half:
            out[task] = w0 + (w1 - w0) * s / half
        elif s < horizon:
            out[task] = w1 + (w2 - w1) * (s - half) / half
        else:
            out[task] = w2
    return out


def pid_signal(losses: Sequence[float], kp: float = 5.0, ki: float = 3.0, kd: float = 1.3) -> float:
    """P_a = kp·L_t + ki·mean(window) + kd·(L_t − L_{t−1}) over the window ``losses`` (oldest first, §4.3).

    The derivative term is 0 when the window holds a single loss. ``math.fsum`` keeps the mean exact-ish and
    independent of summation order, so a restored window gives the same signal.
    """
    if len(losses) == 0:
        raise InputError("pid_signal needs at least one loss")
    last = float(losses[-1])
    deriv = last - float(losses[-2]) if len(losses) > 1 else 0.0
    return kp * last + ki * (math.fsum(losses) / len(losses)) + kd * deriv


def percentile_rank(value: float, history: Iterable[float]) -> float:
    """Fraction of ``history`` strictly below ``value``, in [0, 1]; 0.5 (neutral) while it holds < 10 values.

    This replaces the released code's loop (``if P_a > buf[idx+1]: break`` on an ascending buffer), which stops
    at idx 0 for almost every value; see docs/curriculum.md for the warm-up choice (0.5 rather than r = 1).
    """
    hist = list(history)
    if len(hist) < MIN_HISTORY:
        return NEUTRAL_RANK
    return sum(1 for h in hist if h < value) / len(hist)


def bucket(rank: float) -> int:
    """rank → adaptive bucket: [0, .2) → 4, [.2, .4) → 3, [.4, .6) → 2, [.6, .8) → 1, [.8, 1] → 0.

    Low rank (signal low against recent history = easy) → b4 (generation 0.9); high rank → b0 (interpolation 0.9).
    All five buckets are reachable, unlike the code's int(3r).
    """
    if not 0.0 <= rank <= 1.0:
        raise InputError(f"rank must be in [0, 1], got {rank}")
    return NUM_BUCKETS - 1 - min(NUM_BUCKETS - 1, int(NUM_BUCKETS * rank))


def adaptive_weights(b: int) -> dict[str, float]:
    """Per-task additive weights of bucket ``b`` (0..4)."""
    if not 0 <= b < NUM_BUCKETS:
        raise InputError(f"bucket must be in 0..{NUM_BUCKETS - 1}, got {b}")
    return {task: ADAPTIVE_TABLES[b][GROUP_OF[task]] for task in TASKS}


def task_weights(mode: str, step: int, horizon: int, state: CurriculumState | None = None) -> dict[str, float]:
    """Unnormalised task weights: "none" → 1.0 each, "linear" → static, "adaptive" → static + adaptive,
    "sampling" → SAMPLING_WEIGHTS.

    "adaptive" uses ``state.bucket`` (the neutral bucket 2 when ``state`` is None or still warming up).
    """
    if mode == "none":
        return {task: 1.0 for task in TASKS}
    if mode == "sampling":
        return dict(SAMPLING_WEIGHTS)
    if mode not in MODES:
        raise InputError(f"curriculum mode must be one of {', '.join(MODES)}, got {mode!r}")
    weights = static_weights(step, horizon)
    if mode == "adaptive":
        extra = adaptive_weights(state.bucket if state is not None else NEUTRAL_BUCKET)
        weights = {task: weights[task] + extra[task] for task in TASKS}
    return weights


def sample_task(weights: Mapping[str, float], rng: random.Random) -> str:
    """Draw a task with probability weight / Σ weights, using one ``rng.random()`` and cumulative sums.

    Tasks are visited in TASKS order (not dict order) and ``random.choices`` is avoided, so the draw depends
    only on the RNG state and the weight values, on every Python version.
    """
    unknown = set(weights) - set(TASKS)
    if unknown:
        raise InputError(f"unknown tasks in weights: {sorted(unknown)}")
    items = [(t, float(weights[t])) for t in TASKS if t in weights]
    if any(not math.isfinite(w) or w < 0 for _, w in items):
        raise InputError(f"task weights must be finite and >= 0, got {dict(items)}")
    total = math.fsum(w for _, w in items)
    if total <= 0:
        raise InputError("at least one task weight must be > 0")
    u = rng.random() * total
    acc = 0.0
    for task, w in items:
        acc += w
        if u < acc and w > 0:
            return task
    return next(t for t, w in reversed(items) if w > 0)  # u ≈ total after rounding: last positive task


class CurriculumState:
    """Loss window → PID signal → percentile rank → bucket. Checkpointable via to_dict / from_dict.

    ``losses``: the last ``window`` finite losses (oldest first). ``history``: the last ``window`` PID signals.
    Each finite loss is ranked against the signals of the *previous* steps, then joins the history.
    Non-finite losses (NaN/inf: the trainer skips those steps) are counted in ``skipped`` and change nothing.
    """

    def __init__(self, kp: float = 5.0, ki: float = 3.0, kd: float = 1.3, window: int = 1000) -> None:
        if int(window) < 1:
            raise InputError(f"curriculum window must be >= 1, got {window}")
        self.kp, self.ki, self.kd, self.window = float(kp), float(ki), float(kd), int(window)
        self.losses: deque[float] = deque(maxlen=self.window)
        self.history: deque[float] = deque(maxlen=self.window)
        self.signal: float | None = None
        self.rank: float = NEUTRAL_RANK
        self.bucket: int = NEUTRAL_BUCKET
        self.updates = 0
        self.skipped = 0

    def update(self, loss: float) -> bool:
        """Feed one training loss; returns False (and changes nothing but ``skipped``) if it is not finite."""
        value = float(loss)  # accepts python/numpy floats and 0-d tensors
        if not math.isfinite(value):
            self.skipped += 1
            return False
        self.losses.append(value)
        self.signal = pid_signal(self.losses, self.kp, self.ki, self.kd)
        self.rank = percentile_rank(self.signal, self.history)
        self.bucket = bucket(self.rank)
        self.history.append(self.signal)
        self.updates += 1
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; floats survive json.dumps/loads exactly (repr round-trips)."""
        return {
            "version": STATE_VERSION,
            "kp": self.kp,
            "ki": self.ki,
            "kd": self.kd,
            "window": self.window,
            "losses": list(self.losses),
            "history": list(self.history),
            "signal": self.signal,
            "rank": self.rank,
            "bucket": self.bucket,
            "updates": self.updates,
            "skipped": self.skipped,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CurriculumState:
        try:
            if data["version"] != STATE_VERSION:
                raise CheckpointError(f"curriculum state version {data['version']} is not {STATE_VERSION}")
            st = cls(data["kp"], data["ki"], data["kd"], data["window"])
            st.losses.extend(float(x) for x in data["losses"])
            st.history.extend(float(x) for x in data["history"])
            st.signal = None if data["signal"] is None else float(data["signal"])
            st.rank = float(data["rank"])
            st.bucket = int(data["bucket"])
            st.updates, st.skipped = int(data["updates"]), int(data["skipped"])
        except (KeyError, TypeError, ValueError, InputError) as exc:
            raise CheckpointError(f"corrupt curriculum state: {exc!r}") from exc
        if len(data["losses"]) > st.window or len(data["history"]) > st.window or not 0 <= st.bucket < NUM_BUCKETS:
            raise CheckpointError("corrupt curriculum state: window contents or bucket out of range")
        return st

    def info(self) -> dict[str, Any]:
        """What the trainer logs each step (Metrics event): signal, rank, bucket."""
        return {"signal": self.signal, "rank": self.rank, "bucket": self.bucket}


def _rng_state_to_json(state: tuple) -> list:
    # random.Random.getstate() = (version, tuple of 625 ints, gauss_next float or None)
    version, internal, gauss_next = state
    return [version, list(internal), gauss_next]


def _rng_state_from_json(data: Sequence) -> tuple:
    version, internal, gauss_next = data
    return (int(version), tuple(int(x) for x in internal), None if gauss_next is None else float(gauss_next))


class Curriculum:
    """CurriculumConfig + CurriculumState + its own RNG: the trainer's single entry point.

    ``horizon``: config.horizon, or ``total_steps`` when that is 0 (the run's length, docs/method.md §5).
    Per step: ``task, weights = cur.next_task(step)`` → train → ``cur.observe(loss)``.
    """

    def __init__(self, config: CurriculumConfig | None = None, total_steps: int = 0, seed: int = 0) -> None:
        self.config = config if config is not None else CurriculumConfig()
        if self.config.mode not in MODES:
            raise InputError(f"curriculum mode must be one of {', '.join(MODES)}, got {self.config.mode!r}")
        self.horizon = int(self.config.horizon or total_steps)
        if self.horizon < 1:
            raise InputError("curriculum needs a horizon: set CurriculumConfig.horizon or total_steps >= 1")
        self.seed = int(seed)
        self.rng = random.Random(self.seed)
        c = self.config
        self.state = CurriculumState(c.kp, c.ki, c.kd, c.window)

    @property
    def mode(self) -> str:
        return self.config.mode

    def weights(self, step: int) -> dict[str, float]:
        return task_weights(self.config.mode, step, self.horizon, self.state)

    def next_task(self, step: int) -> tuple[str, dict[str, float]]:
        """Draw the task for ``step``; returns it with the unnormalised weights it was drawn from."""
        w = self.weights(step)
        return sample_task(w, self.rng), w

    def observe(self, loss: float) -> bool:
        """Feed the step's loss (tracked in every mode for logging; only "adaptive" uses it)."""
        return self.state.update(loss)

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "config": dataclasses.asdict(self.config),
            "horizon": self.horizon,
            "seed": self.seed,
            "rng": _rng_state_to_json(self.rng.getstate()),
            "state": self.state.to_dict(),
        }

    def load_state_dict(self, data: Mapping[str, Any]) -> None:
        """Restore RNG and loss/signal windows. Mode, gains and window must match this run's config
        (else CheckpointError); the horizon is kept from the constructor so a run can be extended."""
        try:
            saved = data["config"]
            for key in ("mode", "kp", "ki", "kd", "window"):
                if saved[key] != getattr(self.config, key):
                    raise CheckpointError(
                        f"curriculum checkpoint has {key}={saved[key]!r} but this run has {getattr(self.config, key)!r}"
                    )
            state = CurriculumState.from_dict(data["state"])
            rng_state = _rng_state_from_json(data["rng"])
            rng = random.Random()
            rng.setstate(rng_state)
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"corrupt curriculum checkpoint: {exc!r}") from exc
        self.state, self.rng, self.seed = state, rng, int(data.get("seed", self.seed))
