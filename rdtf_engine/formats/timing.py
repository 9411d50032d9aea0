"""Timeline arithmetic on clips: durations, resampling to a frame budget, re-timing, fps caps, canvas fitting.

Everything here keeps the *loop* intact: a clip is a cycle, so resampling samples the whole cycle uniformly
in time and integer durations are rounded with the rounding error carried forward, so totals stay exact.
"""

from __future__ import annotations

import math
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError

DEFAULT_FRAME_MS = 100  # what browsers show for a 0 or <= 10 ms delay


def normalise_durations(durations: Sequence[float]) -> list[int]:
    """Browser rule: a delay of 0-10 ms plays as 100 ms (Chrome, Firefox and Safari agree on GIF)."""
    return [DEFAULT_FRAME_MS if d is None or d <= 10 else round(d) for d in durations]


def spread_total(total: float, weights: Sequence[float], step: int = 1, minimum: int = 1) -> list[int]:
    """Integer durations (multiples of ``step``, each >= ``minimum``) proportional to ``weights``, summing to
    ``total`` rounded to ``step``; the rounding error is carried to the next frame instead of accumulating."""
    if not weights:
        return []
    wsum = float(sum(weights)) or 1.0
    target_total = max(step * len(weights), round(total / step) * step)
    out: list[int] = []
    exact = 0.0
    done = 0
    for w in weights:
        exact += target_total * w / wsum
        d = round((exact - done) / step) * step
        d = max(minimum, step, d)
        out.append(d)
        done += d
    return out


def resample_clip(clip: Clip, n_frames: int) -> Clip:
    """Reduce a clip to ``n_frames`` sampled uniformly over its loop, keeping its total duration.

    Slot j covers [j*T/n, (j+1)*T/n) and shows the source frame on screen at the slot's midpoint, so the last
    slot flows into the first exactly like the original loop. Clips already within budget are returned as is.
    """
    if n_frames < 1:
        raise InputError(f"n_frames must be at least 1, got {n_frames}")
    if clip.num_frames <= n_frames:
        return clip
    durs = np.asarray(clip.durations_ms, dtype=np.float64)
    starts = np.concatenate([[0.0], np.cumsum(durs)])
    total = float(starts[-1])
    mids = (np.arange(n_frames) + 0.5) * total / n_frames
    idx = np.clip(np.searchsorted(starts, mids, side="right") - 1, 0, clip.num_frames - 1)
    new_durs = spread_total(total, [1.0] * n_frames)
    labels = dict(clip.labels, original_frames=clip.labels.get("original_frames", clip.num_frames))
    return Clip(np.ascontiguousarray(clip.frames[idx]), new_durs, clip.caption, labels)


def repeat_to_min_frames(clip: Clip, min_frames: int) -> Clip:
    """Split long frames into repeated frames until the clip has ``min_frames`` (LINE needs at least 5)."""
    if clip.num_frames >= min_frames:
        return clip
    total = sum(clip.durations_ms)
    mids = (np.arange(min_frames) + 0.5) * total / min_frames
    starts = np.concatenate([[0.0], np.cumsum(clip.durations_ms)])
    idx = np.clip(np.searchsorted(starts, mids, side="right") - 1, 0, clip.num_frames - 1)
    return Clip(clip.frames[idx].copy(), spread_total(total, [1.0] * min_frames), clip.caption, dict(clip.labels))


def retime(clip: Clip, total_ms: float) -> Clip:
    """Scale every duration so the loop lasts ``total_ms`` (speed-up or slow-down; frames unchanged)."""
    durs = spread_total(total_ms, clip.durations_ms)
    return Clip(clip.frames, durs, clip.caption, dict(clip.labels))


def cap_fps(clip: Clip, max_fps: float) -> Clip:
    """Drop frames (uniformly in time) until the average frame rate is at most ``max_fps``."""
    total = sum(clip.durations_ms)
    if clip.num_frames * 1000.0 <= max_fps * total + 1e-9:
        return clip
    return resample_clip(clip, max(1, math.floor(total * max_fps / 1000.0)))


def enforce_min_duration(clip: Clip, min_ms: int) -> Clip:
    """Merge frames shorter than ``min_ms`` into fewer frames (WhatsApp: each frame >= 8 ms)."""
    if min(clip.durations_ms) >= min_ms:
        return clip
    return cap_fps(clip, 1000.0 / min_ms)


def fit_canvas(frames: np.ndarray, width: int, height: int, pad: bool = True) -> np.ndarray:
    """Resize into width x height: with ``pad`` the aspect is kept and the rest is transparent, centred;
    without it the frames fill exactly width x height (callers pass a size that already keeps the aspect,
    rounded to what the codec needs, e.g. even sides for VP9).

    Pillow resizes RGBA premultiplied, so transparent pixels' hidden RGB never bleeds into edges as halos.
    """
    f, h, w = frames.shape[:3]
    scale = min(width / w, height / h)
    nw, nh = (max(1, round(w * scale)), max(1, round(h * scale))) if pad else (width, height)
    out = np.zeros((f, height, width, 4), dtype=np.uint8)
    ox, oy = (width - nw) // 2, (height - nh) // 2
    if (nw, nh) == (w, h):
        out[:, oy : oy + nh, ox : ox + nw] = frames
        return out

    def resize(i: int) -> None:
        im = Image.fromarray(frames[i], "RGBA").resize((nw, nh), Image.Resampling.LANCZOS)
        out[i, oy : oy + nh, ox : ox + nw] = np.asarray(im)

    # Pillow releases the interpreter lock while it resamples: the frames resize side by side, the same pixels.
    # Not inside a pool's worker process (training renders clips on every core already): one thread there.
    workers = min(f, os.cpu_count() or 1) if multiprocessing.parent_process() is None else 1
    if workers <= 1:
        for i in range(f):
            resize(i)
        return out
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(resize, range(f)))
    return out


def scale_frames(frames: np.ndarray, factor: float) -> np.ndarray:
    """Scale by ``factor`` and back to the same canvas: the "size" trade for fixed-canvas platforms, which
    removes fine detail (and bytes) without changing the canvas the platform demands."""
    f, h, w = frames.shape[:3]
    sw, sh = max(1, round(w * factor)), max(1, round(h * factor))
    out = np.empty_like(frames)
    for i in range(f):
        small = Image.fromarray(frames[i], "RGBA").resize((sw, sh), Image.Resampling.LANCZOS)
        out[i] = np.asarray(small.resize((w, h), Image.Resampling.BILINEAR))
    return out


def break_duplicate_frames(frames: np.ndarray) -> tuple[np.ndarray, int]:
    """Make consecutive identical frames differ by one alpha step in one pixel.

    Pillow (APNG) and libwebp (WebP, even lossy) merge identical consecutive frames and sum their durations,
    which silently changes the frame count (LINE rejects such files; exact-frame timelines break). An alpha
    change of 1/255 in a corner pixel is invisible and survives both encoders. Returns (frames, count).
    """
    out = frames
    changed = 0
    for i in range(1, frames.shape[0]):
        if np.array_equal(out[i], out[i - 1]):
            if out is frames:
                out = frames.copy()
            px = out[i, 0, 0]
            px[3] = px[3] + 1 if px[3] < 255 else 254
            changed += 1
    return out, changed


def distinct_runs(frames: np.ndarray, durations: Sequence[int]) -> list[int]:
    """Durations after merging runs of identical frames: what a merging encoder will store."""
    merged: list[int] = []
    for i in range(frames.shape[0]):
        if i and np.array_equal(frames[i], frames[i - 1]):
            merged[-1] += int(durations[i])
        else:
            merged.append(int(durations[i]))
    return merged
