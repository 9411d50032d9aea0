"""``builtin:fluent`` / ``builtin:fluent-holdout`` / ``builtin:fluent-pack-<theme>``: artist-animated Fluent Emoji.

Microsoft's Fluent Emoji, animated (MIT licence), fetched by ``rdtf data fetch fluent`` (``fluent_fetch.py``) or
read from a compact shard cache made by ``rdtf data pack-cache fluent`` (``fluent_cache.py``). Each file is a
256 × 256 animated WebP of ≈ 50–150 frames; still images (one frame) are not used.

Which files a source may use (:func:`split_of`):
- **reserved** faces (``fluent_split.RESERVED_RANGES``: any sequence containing one of those code points, skin-tone
  and ZWJ variants included) are dropped from every source, here at the listing: nothing may train, tune or
  choose on them;
- the **pack-evaluation** themes (``fluent_split.PACK_EVAL_SETS``) are kept out of training and holdout, and are
  readable only as ``builtin:fluent-pack-<theme>``;
- **holdout**: the base code points (a sequence's first) that ``builtin:emoji`` also holds out (the same sha256 rule,
  ≈ 10 %), so a model trained on both sources never saw a held-out emoji in either style; every variant of a
  base code point lands on the same side;
- **train**: the rest.

Clip ``i`` is a window of file ``i mod files`` drawn from a generator seeded by (seed, salt, i): 8–16 frames
(fewer for short files) taken every ``stride`` frames so the window spans 40 %–100 % of the loop, from a random
start; each frame lasts the sum of the file's durations it stands for. Key frames are chosen downstream from
each window's latents (``latent_cache``), as for every other source. Captions name the subject only
(``fluent_names``): real clips teach how things move; the motion words stay with the procedural clips.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from typing import Any

import numpy as np

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError
from rdtf_engine.data.clip_source import ClipSource
from rdtf_engine.data.emoji import _article
from rdtf_engine.data.fluent_names import sequence_name
from rdtf_engine.data.fluent_split import PACK_EVAL_SETS, code_points
from rdtf_engine.data.fluent_store import MIN_FRAMES, FluentItem, FluentStore, find_store, split_of

WINDOW = (8, 16)  # frames per training window (inclusive)
SPAN = (0.4, 1.0)  # share of the loop a window covers
WINDOWS_PER_FILE = 8  # default clips per file: each draws its own window
SPLITS = ("train", "holdout") + tuple(f"pack-{t}" for t in PACK_EVAL_SETS)
def window(n_frames: int, rng: np.random.Generator) -> tuple[int, int, int]:
    """(start, stride, length) of a window over a loop of ``n_frames`` frames (module docstring)."""
    length = min(int(rng.integers(WINDOW[0], WINDOW[1] + 1)), n_frames)
    if length < 2:
        return 0, 1, max(1, length)
    max_stride = max(1, (n_frames - 1) // (length - 1))
    lo = min(max_stride, max(1, int(np.ceil(SPAN[0] * n_frames / length))))
    hi = min(max_stride, max(lo, int(SPAN[1] * n_frames / length)))
    stride = int(rng.integers(lo, hi + 1))
    start = int(rng.integers(0, n_frames - (length - 1) * stride))
    return start, stride, length


def window_durations(frame_ms: tuple[int, ...] | list[int], start: int, stride: int, length: int) -> list[int]:
    """Each window frame lasts the file frames it stands for: ``stride`` of them (fewer at the loop's end)."""
    n = len(frame_ms)
    return [int(sum(frame_ms[start + k * stride: min(n, start + (k + 1) * stride)])) for k in range(length)]


class FluentSource(ClipSource):
    """Windows of the Fluent files of one split; deterministic from (seed, index)."""

    salt = 7

    def __init__(self, size: int, num_clips: int = 0, seed: int = 0, *, split: str = "train",
                 store: FluentStore | None = None) -> None:
        if size < 8:
            raise InputError(f"size must be at least 8 px, got {size}")
        if split not in SPLITS:
            raise InputError(f"unknown Fluent split {split!r}; choices: {', '.join(SPLITS)}")
        if num_clips < 0 or seed < 0:
            raise InputError("num_clips and seed must be ≥ 0")
        self.store = store if store is not None else find_store()
        self.size, self.seed, self.split = int(size), int(seed), split
        self.name = "fluent" if split == "train" else f"fluent-{split}"
        self.files = [it for s, it in sorted(self.store.items.items())
                      if it.frames >= MIN_FRAMES and split_of(s) == split]
        if not self.files:
            raise InputError(f"the Fluent {split} split is empty in this copy of the data")
        self.num_clips = int(num_clips) or WINDOWS_PER_FILE * len(self.files)

    def __len__(self) -> int:
        return self.num_clips

    def plan(self, i: int) -> tuple[FluentItem, tuple[int, int, int], dict[str, Any], str]:
        """(file, window, labels, caption) of clip ``i``, without decoding."""
        rng = np.random.default_rng([self.seed, self.salt, i])
        item = self.files[i % len(self.files)]
        start, stride, length = window(item.frames, rng)
        name = sequence_name(code_points(item.stem))
        art = _article(name)
        choices = [name, f"the {name}"] + ([f"{art} {name}"] if art else [])
        caption = choices[int(rng.integers(len(choices)))]
        labels = {"object": item.stem, "emoji": item.stem, "name": name, "source": "fluent", "split": self.split,
                  "index": i, "window": [start, stride, length]}
        return item, (start, stride, length), labels, caption

    def labels(self, i: int) -> dict[str, Any]:
        return self.plan(i)[2]

    def summary_item(self, i: int) -> tuple[dict[str, Any], list[int]]:
        item, (start, stride, length), labels, _ = self.plan(i)
        return labels, window_durations(item.frame_ms, start, stride, length)

    def decode(self, stem: str) -> Clip:
        """Every stored frame of one file, through the safe decoders, at the file's own canvas."""
        from rdtf_engine.formats.loader import decode_bytes

        return decode_bytes(self.store.read(stem), stem + ".webp")

    def _get(self, i: int) -> Clip:
        from rdtf_engine.formats.timing import fit_canvas

        item, (start, stride, length), labels, caption = self.plan(i)
        full = self.decode(item.stem)
        idx = [start + k * stride for k in range(length)]
        frames = fit_canvas(full.frames[idx], self.size, self.size)  # (length, size, size, 4)
        return Clip(frames, window_durations(full.durations_ms, start, stride, length), caption, labels)

    @cached_property
    def _identity_items(self) -> list[FluentItem]:
        """The bank identity is judged against: this split's files and the training files (as builtin:emoji's
        bank holds train and held-out emoji)."""
        extra = [] if self.split == "train" else FluentSource(self.size, 1, 0, store=self.store).files
        return sorted({it.stem: it for it in self.files + extra}.values(), key=lambda it: it.stem)

    def identity_sprites(self) -> dict[str, np.ndarray]:
        """{stem: first frame cropped to its visible pixels (h, w, 4) uint8} for identity evaluation."""
        out = {}
        for it in self._identity_items:
            frame = self.decode(it.stem).frames[0]
            ys, xs = np.nonzero(frame[..., 3])
            out[it.stem] = frame if ys.size == 0 else np.ascontiguousarray(
                frame[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])
        return out

    def splits(self) -> dict[str, int]:
        counts: dict[str, int] = {"reserved": 0, "still": 0}
        for stem, it in self.store.items.items():
            s = split_of(stem)
            key = "reserved" if s is None else ("still" if it.frames < MIN_FRAMES else s)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(seed=self.seed, files=len(self.files), splits=self.splits(), store=self.store.describe(),
                 windows={"frames": list(WINDOW), "span": list(SPAN)}, license="MIT (Fluent Emoji © Microsoft)")
        return d


def listing_report(store: FluentStore) -> dict[str, Any]:
    """What a copy of the data holds: files per split (and their base code points), reserved files dropped,
    stills, and the frame-count distribution of the usable animations."""
    files: dict[str, int] = {}
    bases: dict[str, set[int]] = {}
    frames = []
    for stem, it in store.items.items():
        s = split_of(stem)
        key = "reserved" if s is None else ("still" if it.frames < MIN_FRAMES else s)
        files[key] = files.get(key, 0) + 1
        bases.setdefault(key, set()).add(code_points(stem)[0])
        if key not in ("reserved", "still"):
            frames.append(it.frames)
    f = np.asarray(frames or [0])
    edges = [1, 8, 16, 32, 48, 64, 80, 96, 128, 256, 100000]
    hist = {f"{a}-{b - 1}": int(((f >= a) & (f < b)).sum()) for a, b in itertools.pairwise(edges)}
    return {"store": store.describe(), "files": len(store.items), "by_split": dict(sorted(files.items())),
            "base_code_points": {k: len(v) for k, v in sorted(bases.items())},
            "frames": {"min": int(f.min()), "median": float(np.median(f)), "mean": round(float(f.mean()), 1),
                       "max": int(f.max()), "histogram": {k: v for k, v in hist.items() if v}}}
