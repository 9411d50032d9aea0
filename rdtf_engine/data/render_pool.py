"""Render many clips of a source in worker processes (data preparation's parallel part)."""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Iterable, Sequence

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import TrainingError
from rdtf_engine.data.clip_source import ClipSource


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

    @classmethod
    def for_source(cls, source: ClipSource, min_clips: int = 64) -> RenderPool:
        """All cores for a procedural source of at least ``min_clips`` clips, else in-process: user clips are
        already decoded, and a few dozen clips are not worth forking for."""
        from rdtf_engine.data.clip_source import ProceduralSource

        return cls(source, 0 if isinstance(source, ProceduralSource) and len(source) >= min_clips else 1)

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
