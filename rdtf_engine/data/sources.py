"""The one entry point trainers and evaluation use to get clips: :func:`open_source`.

A :class:`ClipSource` is a read-only, deterministic sequence of :class:`~rdtf_engine.data.clip.Clip`:
``source[i]`` always returns the same clip (procedural sources draw everything for clip i from a generator
seeded by (seed, i), so clips can be rendered in any order, by any number of worker processes).

Specs:
- ``builtin:shapes``         procedural coloured shapes; needs no font (tests, CI);
- ``builtin:emoji``          Noto Color Emoji animated by motion programs (training split);
- ``builtin:emoji-holdout``  the held-out emoji and (emoji, motion) pairs (evaluation only);
- ``builtin:emoji-dev``      ≈ 80 never-trained emoji outside the test set (for tuning sampling settings);
- anything else              a folder / zip / imported dataset read by ``rdtf_engine.io.load_dataset``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from abc import abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError, TrainingError
from .clip import Clip
from .motion import MotionSpec, motion_frames, render_motion

BUILTINS = ("builtin:shapes", "builtin:emoji", "builtin:emoji-holdout", "builtin:emoji-dev")


class ClipSource(Sequence):
    """Sequence of clips with a summary for model cards. Subclasses implement ``__len__`` and ``_get``."""

    name: str = "source"
    size: int = 0
    motions: tuple[str, ...] = ()  # motion class labels this source can yield (empty: unknown)

    def __getitem__(self, i: int) -> Clip:  # type: ignore[override]
        if not isinstance(i, (int, np.integer)):
            raise TypeError("ClipSource indices must be integers")
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"clip index {i} out of range for {self.name} ({n} clips)")
        return self._get(int(i) % n)

    @abstractmethod
    def _get(self, i: int) -> Clip:
        """Clip ``i`` (0 <= i < len): each source's own decoding or rendering."""

    def labels(self, i: int) -> dict[str, Any]:
        """Labels of clip i without rendering it where the source can (procedural sources)."""
        return dict(self[i].labels)

    def summary_item(self, i: int) -> tuple[dict[str, Any], list[int]]:
        """(labels, durations) of clip i, for :meth:`describe`; procedural sources skip rendering."""
        c = self[i]
        return c.labels, list(c.durations_ms)

    def identity_sprites(self) -> dict[str, np.ndarray]:
        """{object id: RGBA sprite (h, w, 4) uint8} for identity evaluation; empty if the source has none."""
        return {}

    def where(self, **match: Any) -> SubsetSource:
        """Clips whose labels match, e.g. ``where(motion=("bounce", "spin"))`` or ``where(split="heldout-pair")``
        (a tuple/list/set value means "any of"); procedural sources select without rendering."""
        def ok(lab: dict[str, Any]) -> bool:
            return all(lab.get(k) in v if isinstance(v, (tuple, list, set)) else lab.get(k) == v
                       for k, v in match.items())

        keep = [i for i in range(len(self)) if ok(self.labels(i))]
        motions = match.get("motion", self.motions)
        motions = tuple(m for m in self.motions if m in motions) if isinstance(motions, (tuple, list, set)) \
            else (motions,)
        return SubsetSource(self, keep, motions)

    def describe(self) -> dict[str, Any]:
        """Summary for model cards and ``config.json``: name, clips, motion counts, frame-count histogram,
        duration statistics, number of distinct objects (procedural sources: computed without rendering)."""
        motions: Counter = Counter()
        frames: Counter = Counter()
        objects: set = set()
        durs: list[float] = []
        for i in range(len(self)):
            lab, d = self.summary_item(i)
            if "motion" in lab:
                motions[lab["motion"]] += 1
            if "object" in lab:
                objects.add(lab["object"])
            frames[len(d)] += 1
            durs.append(float(np.mean(d)))
        return {
            "name": self.name,
            "size": self.size,
            "clips": len(self),
            "motions": dict(sorted(motions.items())),
            "frame_counts": {int(k): v for k, v in sorted(frames.items())},
            "mean_frame_ms": {"min": min(durs, default=0), "mean": float(np.mean(durs)) if durs else 0,
                              "max": max(durs, default=0)},
            "objects": len(objects),
        }


@dataclass
class Plan:
    """Everything random about one procedural clip, drawn before rendering (cheap)."""

    obj: str  # object id: "1f600", "red circle"
    motion: MotionSpec
    durations: list[int]
    caption: str
    object_frac: float
    labels: dict[str, Any] = field(default_factory=dict)


class ProceduralSource(ClipSource):
    """Base of the built-in sources: index → :class:`Plan` (seeded by (seed, salt, index)) → rendered clip."""

    salt = 0  # decorrelates sources that share a seed

    def __init__(self, size: int, num_clips: int, seed: int) -> None:
        if size < 8:
            raise InputError(f"size must be at least 8 px, got {size}")
        if num_clips < 1:
            raise InputError(f"num_clips must be positive, got {num_clips}")
        if seed < 0:
            raise InputError(f"seed must be ≥ 0, got {seed}")
        self.size, self.num_clips, self.seed = int(size), int(num_clips), int(seed)

    def __len__(self) -> int:
        return self.num_clips

    def rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.salt, i])

    @abstractmethod
    def plan(self, i: int) -> Plan:
        """Object, motion, durations and caption of clip ``i``, without rendering it."""

    @abstractmethod
    def sprite(self, obj: str) -> np.ndarray:
        """The RGBA sprite (h, w, 4) uint8 of object ``obj``."""

    def plan_sprite(self, p: Plan) -> np.ndarray:
        """The sprite clip ``p`` animates (sources with appearance augmentation alter it here)."""
        return self.sprite(p.obj)

    def labels(self, i: int) -> dict[str, Any]:
        return dict(self.plan(i).labels)

    def summary_item(self, i: int) -> tuple[dict[str, Any], list[int]]:
        p = self.plan(i)
        return p.labels, p.durations

    def _get(self, i: int) -> Clip:
        p = self.plan(i)
        mf = motion_frames(p.motion, len(p.durations))
        frames = render_motion(self.plan_sprite(p), mf, self.size, object_frac=p.object_frac)
        return Clip(frames, list(p.durations), p.caption, dict(p.labels))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["seed"] = self.seed
        return d


class SubsetSource(ClipSource):
    """Selected indices of another source (see :meth:`ClipSource.where`); still deterministic."""

    def __init__(self, parent: ClipSource, indices: Sequence[int], motions: tuple[str, ...]) -> None:
        self.parent, self.indices, self.motions = parent, list(indices), motions
        self.name, self.size = f"{parent.name} (subset)", parent.size

    def __len__(self) -> int:
        return len(self.indices)

    def _get(self, i: int) -> Clip:
        return self.parent[self.indices[i]]

    def labels(self, i: int) -> dict[str, Any]:
        return self.parent.labels(self.indices[i])

    def summary_item(self, i: int) -> tuple[dict[str, Any], list[int]]:
        return self.parent.summary_item(self.indices[i])

    def identity_sprites(self) -> dict[str, np.ndarray]:
        return self.parent.identity_sprites()


class ListSource(ClipSource):
    """Clips held in memory or behind another sequence (imported datasets)."""

    def __init__(self, clips: Sequence[Clip], name: str, size: int, limit: int = 0) -> None:
        self._clips, self.name, self.size = clips, name, size
        self._n = min(len(clips), limit) if limit > 0 else len(clips)
        found = set()
        for i in range(self._n) if isinstance(clips, list) else ():
            if "motion" in clips[i].labels:
                found.add(clips[i].labels["motion"])
        self.motions = tuple(sorted(found))

    def __len__(self) -> int:
        return self._n

    def _get(self, i: int) -> Clip:
        return self._clips[i]


def open_source(spec: str, size: int, *, num_clips: int = 0, seed: int = 0) -> ClipSource:
    """Open clips for training or evaluation; frames are ``size`` × ``size``.

    ``num_clips`` = 0 takes the source's default (procedural sources are virtually infinite: shapes 256,
    emoji 20000, emoji-holdout / emoji-dev 1024); for a path it caps the number of clips read (0 = all).
    """
    if not isinstance(spec, str) or not spec:
        raise InputError("data source must be a non-empty string")
    if spec.startswith("builtin:"):
        if spec == "builtin:shapes":
            from .shapes import ShapesSource

            return ShapesSource(size, num_clips or ShapesSource.default_clips, seed)
        if spec in ("builtin:emoji", "builtin:emoji-holdout", "builtin:emoji-dev"):
            from .emoji import EmojiSource

            holdout, dev = spec.endswith("-holdout"), spec.endswith("-dev")
            n = num_clips or (EmojiSource.default_holdout_clips if holdout or dev else EmojiSource.default_clips)
            return EmojiSource(size, n, seed, holdout=holdout, dev=dev)
        raise InputError(f"unknown built-in data source {spec!r}; choices: {', '.join(BUILTINS)}")
    try:
        from ..io import load_dataset  # lazily: the I/O package is optional for built-in data
    except ImportError as e:  # pragma: no cover - only while rdtf_engine.io is incomplete
        raise InputError(f"cannot read {spec!r}: the sticker importer is unavailable ({e})") from e
    data = load_dataset(spec, size)
    if isinstance(data, ClipSource):
        return data if num_clips <= 0 else ListSource(data, data.name, size, num_clips)
    return ListSource(data, os.path.basename(os.path.normpath(spec)) or spec, size, num_clips)


# ---------------------------------------------------------------------------------------------- bulk render
_WORKER_SOURCE: ClipSource | None = None


def _init_worker(source: ClipSource) -> None:
    global _WORKER_SOURCE
    _WORKER_SOURCE = source


def _render_batch(ids: list[int]) -> list[Clip]:
    assert _WORKER_SOURCE is not None
    return [_WORKER_SOURCE[i] for i in ids]


def _map_batch(fn, items: list) -> list:
    return [fn(x) for x in items]


class _Ready:
    """An already computed result, with the ``get()`` of :class:`_Pending`."""

    def __init__(self, value: list):
        self._value = value

    def get(self) -> list:
        return self._value


class _Pending:
    """Futures of consecutive batches → ``get()``: their results concatenated in order."""

    def __init__(self, futures: list):
        self._futures = futures

    def get(self) -> list:
        from concurrent.futures.process import BrokenProcessPool

        try:
            return [x for f in self._futures for x in f.result()]
        except BrokenProcessPool as e:
            raise TrainingError("a data-preparation worker process died (killed, or out of memory?); nothing "
                                "was written: start the run again, with fewer clips (--max-clips) if memory "
                                "is short") from e


def _batches(items: Sequence, workers: int) -> list[list]:
    """≈ 4 batches per worker (load balance), 1–16 items each (fewer round trips)."""
    size = max(1, min(16, len(items) // (workers * 4)))
    return [list(items[a : a + size]) for a in range(0, len(items), size)]


class RenderPool:
    """Worker processes that render clips of one procedural source, kept for a whole data preparation.

    ``submit(ids)`` starts rendering and returns a handle whose ``get()`` gives ``[source[i] for i in ids]``.
    Submitting chunk k+1 before encoding chunk k overlaps rendering with the autoencoder (render + encode +
    key frames, one after the other, was the data-preparation time on the GPU hosts); one pool for all
    chunks avoids forking a large parent (CUDA context, latent cache) again per chunk; ``map`` runs other
    work (k-means) in the same workers. Uses ``fork`` where available, so the source (and its cached
    sprites/fonts) is inherited rather than pickled. Each clip is seeded by its index, so results never
    depend on the worker count. ``workers`` 0 = all cores; with ≤ 1 worker everything runs in-process. A
    worker that dies raises :class:`TrainingError` instead of hanging.
    """

    def __init__(self, source: ClipSource, workers: int = 0):
        from concurrent.futures import ProcessPoolExecutor

        self.source = source
        self.workers = int(workers or (os.cpu_count() or 1))
        self._pool = None
        if self.workers > 1:
            global _WORKER_SOURCE
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            if ctx.get_start_method() == "fork":
                # Inherited by the children: nothing to pickle, no initializer to run.
                _WORKER_SOURCE = source
                self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)
            else:
                self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                                 initargs=(source,))

    def submit(self, ids: Sequence[int]) -> _Ready | _Pending:
        idx = [int(i) for i in ids]
        if self._pool is None or len(idx) < 8:  # no round trip through the pool for a handful of clips
            return _Ready([self.source[i] for i in idx])
        return _Pending([self._pool.submit(_render_batch, b) for b in _batches(idx, self.workers)])

    def map(self, fn, items: Sequence) -> _Ready | _Pending:
        """Run the picklable top-level ``fn`` on each item in the workers (in-process without a pool), queued
        after the renders already submitted; → a handle whose ``get()`` is the list of results in order."""
        if self._pool is None:
            return _Ready([fn(x) for x in items])
        return _Pending([self._pool.submit(_map_batch, fn, b) for b in _batches(items, self.workers)])

    def close(self, cancel: bool = False) -> None:
        """Wait for the workers to exit; ``cancel`` (after an error or a stop) drops queued work instead."""
        global _WORKER_SOURCE
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None
        _WORKER_SOURCE = None

    def __enter__(self) -> RenderPool:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(self, exc_type, *exc) -> None:
        self.close(cancel=exc_type is not None)


def render_many(source: ClipSource, indices: Iterable[int], workers: int = 0) -> list[Clip]:
    """Render ``source[i]`` for all ``indices`` (in order) with ``workers`` processes (0 = all cores); the
    result equals ``[source[i] for i in indices]``."""
    idx = [int(i) for i in indices]
    workers = min(workers or (os.cpu_count() or 1), max(1, len(idx) // 4))  # no pool for a handful of clips
    with RenderPool(source, workers) as pool:
        return pool.submit(idx).get()
