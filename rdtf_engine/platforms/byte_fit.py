"""Fit an encode under a byte cap by searching quality → colours → frame rate → size, in that order.

One encode is rarely enough (sticker-convert bisects the same axes), but busy 512 px clips make each encode
cost seconds on two cores, so the search is frugal: each axis is bisected (bytes fall monotonically along
it), an axis is only touched when the ones before it are exhausted, and after a structural trade (fewer
frames, smaller picture) the cheaper axes are bisected back up so no more quality is given away than needed.
Encodes are cached by setting. The result says exactly what was traded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rdtf_engine.core.errors import Cancelled, ExportError


@dataclass(frozen=True)
class Axis:
    name: str  # "quality" | "colours" | "fps" | "size"
    values: tuple[Any, ...]  # best first; bytes fall along the tuple
    labels: tuple[str, ...]  # human text per value, for the trade report

    def __post_init__(self) -> None:
        if not self.values or len(self.values) != len(self.labels):
            raise ValueError("an axis needs values, one label each")


@dataclass
class FitResult:
    data: bytes
    setting: dict[str, Any]
    index: tuple[int, ...]
    encodes: int
    trades: list[str]
    notes: list[str]


Encoder = Callable[[dict[str, Any]], tuple[bytes, list[str]]]


def fit_to_bytes(
    axes: Sequence[Axis],
    encode: Encoder,
    target: int | None,
    *,
    on_try: Callable[[int, dict[str, Any], int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    estimate: Callable[[dict[str, Any]], int | None] | None = None,
    what: str = "export",
) -> FitResult:
    """Smallest give-away setting whose encode is <= ``target`` bytes (or the best setting if no target).

    ``estimate`` (cheap, e.g. encoding a few frames) lets the search skip full encodes of settings that are
    clearly too big (> 1.4 x target); a setting is only ever *accepted* on a real encode."""
    cache: dict[tuple[int, ...], tuple[bytes, list[str]]] = {}
    too_big: set[tuple[int, ...]] = set()
    n = len(axes)
    floor = [len(a.values) - 1 for a in axes]

    def run(idx: tuple[int, ...]) -> tuple[bytes, list[str]]:
        if idx not in cache:
            if should_stop and should_stop():
                raise Cancelled(f"{what} stopped by the user")
            setting = {a.name: a.values[i] for a, i in zip(axes, idx)}
            cache[idx] = encode(setting)
            if on_try:
                on_try(len(cache), setting, len(cache[idx][0]))
        return cache[idx]

    def fits(idx: Sequence[int]) -> bool:
        key = tuple(idx)
        if target is None:
            return True
        if key in too_big:
            return False
        if estimate is not None and key not in cache and list(key) != floor:
            guess = estimate({a.name: a.values[i] for a, i in zip(axes, key)})
            if guess is not None and guess > 1.4 * target:
                too_big.add(key)
                return False
        return len(run(key)[0]) <= target

    best = [0] * n
    if fits(best):
        return _result(axes, tuple(best), run(tuple(best)), len(cache))
    for k in range(n):
        probe = floor[:k] + [floor[k]] + [0] * (n - k - 1)
        if not fits(probe):
            continue
        # Least give-away on axis k with the axes before it at their floor...
        sol = list(probe)
        sol[k] = _least_on_axis(fits, sol, k, floor[k])
        # ...then win back the cheaper axes, the most valuable (latest) first.
        for j in reversed(range(k)):
            sol[j] = _least_on_axis(fits, sol, j, floor[j])
        return _result(axes, tuple(sol), run(tuple(sol)), len(cache))
    smallest = min((len(v[0]) for v in cache.values()), default=0)
    raise ExportError(
        f"cannot get the file under {target:,} bytes even at the lowest settings "
        f"({', '.join(a.labels[-1] for a in axes)}); best size {smallest:,} bytes. "
        "Try fewer frames, a shorter clip or simpler artwork."
    )


def _least_on_axis(fits: Callable[[list[int]], bool], sol: list[int], axis: int, hi: int) -> int:
    """Smallest index on ``axis`` that still fits, the other axes held as in ``sol``."""
    def ok(i: int) -> bool:
        trial = list(sol)
        trial[axis] = i
        return fits(trial)

    return _bisect(ok, hi)


def _bisect(ok: Callable[[int], bool], hi: int) -> int:
    """Smallest i in [0, hi] with ok(i), given ok(hi) is known True and ok is monotone."""
    lo = 0
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi


def _result(axes: Sequence[Axis], idx: tuple[int, ...], enc: tuple[bytes, list[str]], encodes: int) -> FitResult:
    trades = [f"{a.name}: {a.labels[0]} → {a.labels[i]}" for a, i in zip(axes, idx) if i > 0]
    setting = {a.name: a.values[i] for a, i in zip(axes, idx)}
    return FitResult(enc[0], setting, idx, encodes, trades, list(enc[1]))
