"""Small sticker packs as training data: every frame window of every sticker, with character-safe jitter.

A creator's pack holds 10–40 animated stickers. Read as one resampled clip per sticker, a fine-tune sees 24
clips and memorises them; the pack's own animation is the real signal, so :class:`PackWindowsSource` turns
each sticker into ``windows_per_clip`` training clips:

- item 0 of a sticker is the whole animation (every frame, up to ``max_frames``), so the latent cache's
  key-frame sets (k = 3…8, clustered over the whole loop) are learnt as they are for any clip;
- the other items are windows of ``WINDOW`` frames taken every ``stride`` ∈ ``STRIDES`` frames
  (slow and fast views of the same motion), drawn without repeats from all (stride, start) pairs that fit;
  a sticker shorter than a window contributes the whole clip instead;
- windows are jittered where that keeps the character: a horizontal flip (only if the caption names no side:
  "left", "right", …, and only if the mirrored sticker is not nearly another sticker of the pack:
  :func:`mirror_twins`, e.g. a first and a last quarter moon), a hue rotation of at most ±``HUE_DEG``° and a
  scale in [0.9, 1.1] resampled on premultiplied RGBA (so no dark fringe appears at the alpha edge), centred on
  the canvas.

Captions get a pack style token (default ", in the style of my pack"): the fine-tune ties the pack's look to
those words, so a prompt with them reaches the pack while a prompt without them still reaches what the base
model knew. ``rdtf eval-pack`` prompts with the same token (read back from the model card).

Deterministic: item i depends only on (seed, i), like every other :class:`ClipSource`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError, RdtfError
from rdtf_engine.data.clip_source import ClipSource

MIN_STICKERS = 4  # fewer cannot teach a style (and leave nothing to compare against)
MAX_STICKERS = 200  # above this a folder is a dataset, read clip by clip as before
DEFAULT_STYLE = ", in the style of my pack"
WINDOWS_PER_CLIP = 16
WINDOW = 8  # frames per window: the model's clip length
STRIDES = (2, 4, 6)  # at 40-80 ms a frame, stride 1 barely moves in 8 frames
HUE_DEG = 8.0
SCALE_RANGE = (0.9, 1.1)
MAX_FRAMES = 96  # frames kept per sticker (a 72-frame Fluent WebP keeps all of them)
TWIN_SIZE = 32  # mirror_twins compares stickers as 32 × 32 premultiplied RGBA (shape and colour, no detail)
TWIN_FRAMES = 8  # … averaged over this many evenly spaced frames (the sticker's look over its loop)
TWIN_RATIO = 0.5  # a mirror image at most half as far from another sticker as the sticker itself: a twin
_SIDE_WORDS = re.compile(r"\b(left|right|leftwards|rightwards|east|west|backhand|l|r)\b")


class PackError(InputError):
    """A folder or zip that cannot serve as a sticker pack for a fine-tune (too few, too many, unreadable)."""


class PackTooBigError(PackError):
    """More stickers than MAX_STICKERS: a dataset rather than a pack."""


def load_pack_clips(path: str | os.PathLike[str], size: int, max_frames: int = MAX_FRAMES) -> list[Clip]:
    """Every readable sticker of a pack at ``size`` px (aspect kept, transparent padding), checked for the
    pack limits; unreadable files are named in the error when too few remain."""
    from rdtf_engine.datasets.dataset import is_dataset, load_dataset
    from rdtf_engine.datasets.pack import iter_pack
    from rdtf_engine.formats.timing import fit_canvas

    root = os.fspath(path)
    clips, bad = [], []
    if is_dataset(Path(root)):  # an imported dataset: already decoded and captioned
        clips = load_dataset(root, size, on_event=lambda e: bad.append(getattr(e, "message", str(e))))
    else:
        for name, item in iter_pack(root, max_frames=max_frames):
            if isinstance(item, RdtfError):
                bad.append(f"{name} ({item})")
                continue
            item.frames = fit_canvas(item.frames, size, size, pad=True)
            item.labels.setdefault("source", name)
            clips.append(item)
    check_pack_size(len(clips), root, bad)
    return clips


def check_pack_size(n: int, where: str, unreadable: Sequence[str] = ()) -> None:
    """Raise :class:`PackError` unless MIN_STICKERS ≤ n ≤ MAX_STICKERS."""
    if n < MIN_STICKERS:
        why = f"; unreadable: {'; '.join(unreadable[:8])}" + (" …" if len(unreadable) > 8 else "") \
            if unreadable else ""
        raise PackError(f"{where}: {n} readable sticker{'s' if n != 1 else ''}, a pack fine-tune needs at least "
                        f"{MIN_STICKERS}{why}")
    if n > MAX_STICKERS:
        raise PackTooBigError(f"{where}: {n} stickers is over the {MAX_STICKERS}-sticker pack cap; train on it as a "
                        f"dataset (pack windows off) or split it")


def has_side_word(caption: str) -> bool:
    """True when flipping would contradict the caption ("left arrow", "right-facing fist")."""
    return bool(_SIDE_WORDS.search(caption.lower()))


def _look(frames: np.ndarray) -> np.ndarray:
    """(F, H, W, 4) straight RGBA uint8 → (TWIN_SIZE, TWIN_SIZE, 4) mean premultiplied look over TWIN_FRAMES
    evenly spaced frames."""
    idx = np.linspace(0, len(frames) - 1, min(TWIN_FRAMES, len(frames))).round().astype(int)
    looks = []
    for fr in frames[idx]:
        small = Image.fromarray(np.ascontiguousarray(fr), "RGBA").convert("RGBa").resize(
            (TWIN_SIZE, TWIN_SIZE), Image.BOX)
        looks.append(np.asarray(small, np.float32) / 255)
    return np.mean(looks, 0)


def mirror_twins(clips: Sequence[Clip]) -> set[int]:
    """Stickers a horizontal flip would turn into another sticker of the pack: i is a twin of j when its
    mirror image is less than TWIN_RATIO as far from j as i itself is (RMS over the mean 32 × 32
    premultiplied look): the flip carries i most of the way to j.

    A first and a last quarter moon, or a left- and a right-facing copy of one cat, are twins (their mirror
    images are nearly each other: ratio ≈ 0.1 on such a pair); flipping them would teach the model that the two
    captions mean one picture. Different characters that merely face opposite ways stay well above the ratio
    (≥ 0.7 on the test packs), so they keep their flips."""
    looks = [_look(c.frames) for c in clips]
    twins = set()
    for i, look in enumerate(looks):
        mirror = look[:, ::-1]  # the mirrored sticker's look (flipping commutes with the box shrink)
        for j, other in enumerate(looks):
            if j != i and _rms(mirror, other) < TWIN_RATIO * _rms(look, other):
                twins.add(i)
    return twins


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(((a - b) ** 2).mean()))


def window_plans(n_frames: int) -> list[tuple[int, int]]:
    """All (stride, start) windows of WINDOW frames that fit in a clip of ``n_frames`` (maybe empty)."""
    return [(s, t) for s in STRIDES for t in range(n_frames - (WINDOW - 1) * s)]


def hue_rotate(rgb: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate hue by ``degrees`` about the grey axis (a luminance-preserving YIQ rotation); (…, 3) float 0..1."""
    th = np.deg2rad(degrees)
    c, s = np.cos(th), np.sin(th)
    yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    m = np.linalg.inv(yiq) @ rot @ yiq
    return np.clip(rgb @ m.T, 0, 1)


def jitter_frames(frames: np.ndarray, flip: bool, hue_deg: float, scale: float) -> np.ndarray:
    """(F, H, W, 4) straight RGBA uint8 → the same shape, flipped / hue-rotated / rescaled about the centre.

    Rescaling works on premultiplied RGBA (PIL "RGBa") with a bilinear filter (no overshoot), so transparent
    pixels contribute no colour to the edge and α stays in 0..255 with colour ≤ α before un-premultiplying."""
    out = frames[:, :, ::-1] if flip else frames
    if abs(hue_deg) > 1e-6:
        rgb = hue_rotate(out[..., :3].astype(np.float32) / 255, hue_deg)
        out = np.concatenate([(rgb * 255 + 0.5).astype(np.uint8), out[..., 3:]], -1)
    if abs(scale - 1) > 1e-6:
        h, w = out.shape[1:3]
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        res = []
        for fr in out:
            small = Image.fromarray(np.ascontiguousarray(fr), "RGBA").convert("RGBa").resize((nw, nh),
                                                                                             Image.BILINEAR)
            canvas = Image.new("RGBa", (w, h), (0, 0, 0, 0))
            canvas.paste(small, ((w - nw) // 2, (h - nh) // 2))  # larger: cropped symmetrically by the paste
            res.append(np.asarray(canvas.convert("RGBA"), np.uint8))
        out = np.stack(res)
    return np.ascontiguousarray(out)


class PackWindowsSource(ClipSource):
    """``windows_per_clip`` training clips per pack sticker (module docstring); len = stickers × windows."""

    def __init__(self, clips: Sequence[Clip], name: str, size: int, windows_per_clip: int = WINDOWS_PER_CLIP,
                 seed: int = 0, style: str = DEFAULT_STYLE, augment: bool = True) -> None:
        check_pack_size(len(clips), name)
        if windows_per_clip < 1:
            raise InputError(f"windows_per_clip must be positive, got {windows_per_clip}")
        self.clips, self.name, self.size = list(clips), name, int(size)
        self.windows_per_clip, self.seed, self.style, self.augment = int(windows_per_clip), int(seed), style, augment
        self.no_flip = mirror_twins(self.clips) if augment else set()

    def __len__(self) -> int:
        return len(self.clips) * self.windows_per_clip

    def caption(self, clip: Clip) -> str:
        return f"{clip.caption}{self.style}" if self.style else clip.caption

    def plan(self, i: int) -> dict[str, Any]:
        """What item i is, without touching pixels: sticker, window (stride, start) or whole clip, jitter."""
        c, j = divmod(i, self.windows_per_clip)
        clip = self.clips[c]
        rng = np.random.default_rng([self.seed, 0x9AC, i])
        plans = window_plans(clip.num_frames)
        p: dict[str, Any] = {"sticker": c, "stride": 0, "start": 0, "flip": False, "hue": 0.0, "scale": 1.0}
        if j > 0 and plans:
            # item j of a sticker is a draw without repeats from its windows (a shared per-sticker permutation)
            order = np.random.default_rng([self.seed, 0x9AD, c]).permutation(len(plans))
            p["stride"], p["start"] = plans[int(order[(j - 1) % len(plans)])]
        if j > 0 and self.augment:
            p["flip"] = bool(rng.random() < 0.5) and not has_side_word(clip.caption) and c not in self.no_flip
            p["hue"] = float(rng.uniform(-HUE_DEG, HUE_DEG))
            p["scale"] = float(rng.uniform(*SCALE_RANGE))
        return p

    def labels(self, i: int) -> dict[str, Any]:
        p, clip = self.plan(i), self.clips[i // self.windows_per_clip]
        return {**{k: v for k, v in clip.labels.items() if isinstance(v, (str, int, float))},
                "object": str(clip.labels.get("source", p["sticker"])), "pack_item": p}

    def summary_item(self, i: int) -> tuple[dict[str, Any], list[int]]:
        p, clip = self.plan(i), self.clips[i // self.windows_per_clip]
        n = WINDOW if p["stride"] else clip.num_frames
        return {"object": str(p["sticker"])}, [int(np.mean(clip.durations_ms) * max(p["stride"], 1))] * n

    def _get(self, i: int) -> Clip:
        p, clip = self.plan(i), self.clips[i // self.windows_per_clip]
        if p["stride"]:
            idx = [p["start"] + k * p["stride"] for k in range(WINDOW)]
            frames = clip.frames[idx]
            durs = [sum(clip.durations_ms[a:a + p["stride"]]) for a in idx]
        else:
            frames, durs = clip.frames, list(clip.durations_ms)
        frames = jitter_frames(frames, p["flip"], p["hue"], p["scale"])
        return Clip(frames, [int(d) for d in durs], self.caption(clip), self.labels(i))

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(stickers=len(self.clips), windows_per_clip=self.windows_per_clip, window=WINDOW,
                 strides=list(STRIDES), augment=self.augment, style_token=self.style, seed=self.seed,
                 not_flipped=sorted(str(self.clips[i].labels.get("source", i)) for i in self.no_flip))
        return d
