"""Clip sources: read-only, deterministic sequences of :class:`~rdtf_engine.core.clip.Clip`.

``source[i]`` always returns the same clip: procedural sources draw everything for clip i from a generator
seeded by (seed, i), so clips can be rendered in any order, by any number of worker processes.
"""

from __future__ import annotations

from abc import abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError
from rdtf_engine.data.motion import MotionSpec, motion_frames, render_motion


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
