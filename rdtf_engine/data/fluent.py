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

Training clips (the train split only, never a held-out or pack-evaluation one) get **appearance augmentation**,
as the procedural emoji do: a mirror image with probability ``MIRROR_P`` unless the name names a side ("left
arrow"), and a rescale about the centre within ``SCALE_RANGE``; colours stay (they tell apart emoji such as the
coloured hearts). Why: a 256 px model continued for several leases fitted the training characters' own animations
(its denoising loss on held-out characters 2.75× that on training ones, docs/results.md): more distinct views of
each character leave less to memorise.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from typing import Any

import numpy as np

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError
from rdtf_engine.data.clip_source import Plan, ProceduralSource
from rdtf_engine.data.emoji import _article
from rdtf_engine.data.fluent_names import sequence_name
from rdtf_engine.data.fluent_split import PACK_EVAL_SETS, code_points
from rdtf_engine.data.fluent_store import MIN_FRAMES, FluentStore, find_store, split_of
from rdtf_engine.data.pack_windows import has_side_word, jitter_frames

WINDOW = (8, 16)  # frames per training window (inclusive)
SPAN = (0.4, 1.0)  # share of the loop a window covers (≈ 0.4–0.95 after rounding the stride)
MIRROR_P = 0.5  # training clips: share mirrored (module docstring)
SCALE_RANGE = (0.9, 1.1)  # training clips: rescale factor about the centre
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


class FluentSource(ProceduralSource):
    """Windows of the Fluent files of one split; deterministic from (seed, index). A procedural source in the
    sense that matters to training: clip i is planned from (seed, i) alone, so worker processes render
    (here: decode) clips in any order."""

    salt = 7

    def __init__(self, size: int, num_clips: int = 0, seed: int = 0, *, split: str = "train",
                 store: FluentStore | None = None) -> None:
        if split not in SPLITS:
            raise InputError(f"unknown Fluent split {split!r}; choices: {', '.join(SPLITS)}")
        if num_clips < 0:
            raise InputError(f"num_clips must be ≥ 0, got {num_clips}")
        self.store = store if store is not None else find_store()
        self.split = split
        self.name = "fluent" if split == "train" else f"fluent-{split}"
        self.files = [it for s, it in sorted(self.store.items.items())
                      if it.frames >= MIN_FRAMES and split_of(s) == split]
        if not self.files:
            raise InputError(f"the Fluent {split} split is empty in this copy of the data")
        super().__init__(size, int(num_clips) or WINDOWS_PER_FILE * len(self.files), seed)
        # clip i → file order[i mod files]: a seeded permutation, so the first clips of an evaluation spread over
        # different emoji (sorted stems put one emoji's skin-tone and gender variants side by side)
        self.order = np.random.default_rng([self.seed, self.salt, 0xF11E]).permutation(len(self.files))

    def plan(self, i: int) -> Plan:
        """File, window, caption and labels of clip ``i``, without decoding (``labels["window"]`` =
        [start, stride, length] in stored frames)."""
        rng = self.rng(i)
        item = self.files[int(self.order[i % len(self.files)])]
        start, stride, length = window(item.frames, rng)
        name = sequence_name(code_points(item.stem))
        art = _article(name)
        choices = [name, f"the {name}"] + ([f"{art} {name}"] if art else [])
        caption = choices[int(rng.integers(len(choices)))]
        labels = {"object": item.stem, "emoji": item.stem, "name": name, "source": "fluent", "split": self.split,
                  "index": i, "window": [start, stride, length]}
        if self.split == "train":  # drawn after the window and caption, which stay what they were without it
            labels["mirror"] = bool(rng.random() < MIRROR_P) and not has_side_word(name)
            labels["scale"] = round(float(rng.uniform(*SCALE_RANGE)), 4)
        # motion None: an artist's animation, no motion program (and no motion label) behind it
        return Plan(item.stem, None, window_durations(item.frame_ms, start, stride, length), caption, 1.0,  # type: ignore[arg-type]
                    labels)

    def decode(self, stem: str) -> Clip:
        """Every stored frame of one file, through the safe decoders, at the file's own canvas."""
        from rdtf_engine.formats.loader import decode_bytes

        return decode_bytes(self.store.read(stem), stem + ".webp")

    def _get(self, i: int) -> Clip:
        from rdtf_engine.formats.timing import fit_canvas

        p = self.plan(i)
        start, stride, length = p.labels["window"]
        full = self.decode(p.obj)
        idx = [start + k * stride for k in range(length)]
        frames = fit_canvas(full.frames[idx], self.size, self.size)  # (length, size, size, 4)
        if "scale" in p.labels:
            frames = jitter_frames(frames, bool(p.labels["mirror"]), 0.0, float(p.labels["scale"]))
        return Clip(frames, window_durations(full.durations_ms, start, stride, length), p.caption, p.labels)

    def sprite(self, obj: str) -> np.ndarray:
        """The first frame of file ``obj`` cropped to its visible pixels (h, w, 4) uint8."""
        frame = self.decode(obj).frames[0]
        ys, xs = np.nonzero(frame[..., 3])
        if ys.size == 0:
            return frame
        return np.ascontiguousarray(frame[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1])

    @cached_property
    def _identity_items(self) -> list[str]:
        """The bank identity is judged against: this split's files and the training files (as builtin:emoji's
        bank holds train and held-out emoji)."""
        extra = [] if self.split == "train" else FluentSource(self.size, 1, 0, store=self.store).files
        return sorted({it.stem for it in self.files + extra})

    def identity_sprites(self) -> dict[str, np.ndarray]:
        """{stem: first frame cropped to its visible pixels} for identity evaluation."""
        return {stem: self.sprite(stem) for stem in self._identity_items}

    def splits(self) -> dict[str, int]:
        counts: dict[str, int] = {"reserved": 0, "still": 0}
        for stem, it in self.store.items.items():
            s = split_of(stem)
            key = "reserved" if s is None else ("still" if it.frames < MIN_FRAMES else s)
            counts[key] = counts.get(key, 0) + 1
        return counts

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(files=len(self.files), splits=self.splits(), store=self.store.describe(),
                 windows={"frames": list(WINDOW), "span": list(SPAN)},
                 augmentation={"mirror_p": MIRROR_P, "scale": list(SCALE_RANGE)} if self.split == "train" else None,
                 license="MIT (Fluent Emoji © Microsoft)")
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
