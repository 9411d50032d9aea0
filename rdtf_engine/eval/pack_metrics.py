"""Metrics of "my pack in, my stickers out" (``rdtf eval-pack``): does a sticker generated from a pack caption
look like that sticker, move like the pack, and keep its sharpness and colours? Every clip is straight RGBA
uint8 (F, H, W, 4); "premultiplied" below means RGB·α and α, all in 0..1.

- **identity descriptor** (:func:`pack_descriptor`): each frame is cropped to its body box (as
  ``metrics.identity_feature`` does: position- and scale-free), padded square, shrunk to 16 × 16 premultiplied
  RGBA and average-pooled to 8², 4², 2² and 1² cells (shape at several scales, colour at the coarsest), each
  scale's block divided by √(its length) so every scale weighs the same; plus an α-weighted 4 × 4 × 4 RGB
  histogram (√ of the frequencies: a Hellinger embedding). The clip's descriptor is the mean over its frames,
  so a shift of a few pixels or a 10 % zoom barely moves it while a different character does. Identity of a
  generated clip = rank of its captioned sticker among the pack's real stickers by L2 distance; top-1 / top-3
  against chance 1/N, 3/N. Controls on the real pack: each real sticker seen shifted and zoomed (must be
  100 % top-1), a disc in the pack's mean colour (≈ chance) and a disc in each sticker's own mean colour (what
  colour alone gives away).
- **frame change** (:func:`frame_changes`): mean |Δ| of premultiplied RGBA between consecutive frames (an
  α-weighted pixel MAE: a transparent background adds nothing); **loop seam**: the same from the last frame to
  the first. Real stickers are compared through the same number of frames as a generated clip, evenly spaced over
  one period of their loop (``data.keyframes.loop_frames``: the seam step spans as many frames as the others).
- **frozen**: mean change < ``FROZEN_FLOOR``; **flicker** (:func:`flicker_ratio`): share of the temporal
  variation energy at the alternating (Nyquist) frequency, per pixel, summed; an A-B-A-B clip → 1, a smooth
  motion → ≈ 0; flagged above ``FLICKER_RATIO`` on clips that are not frozen.
- **sharpness** (:func:`sharpness`): the frames enlarged to 512 px (the export size) the way an export enlarges
  them (the learned upscaler; ``sharpness_bicubic``: by bicubic resizing, as measured before the upscaler
  shipped), edge acutance: the mean of the strongest 5 % of gradient magnitudes of premultiplied RGBA over
  pixels with α > 16 (blur lowers it, a decoder's grid texture does not raise it).
- **colour distance** (:func:`colour_chi2`): χ² distance ½Σ(p−q)²/(p+q) of α-weighted 8 × 8 × 8 RGB histograms
  (0 = same colours, 1 = disjoint).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

DESC_SIZE = 16
DESC_SCALES = (8, 4, 2, 1)
HIST_BINS_ID = 4
HIST_BINS = 8
HIST_WEIGHT = 1.0
FROZEN_FLOOR = 0.002  # mean |Δ| premultiplied: ≈ half a grey level over the whole frame
FLICKER_RATIO = 0.5
EXPORT_SIZE = 512
EXPORT_UPSCALER = "learned"  # platforms.upscale's export default: sharpness is judged on the frames exported


# ---------------------------------------------------------------------------------------------- helpers
EDGE_TOP = 0.05  # sharpness: the strongest 5 % of gradients, i.e. the edges


def premultiplied(frames: np.ndarray) -> np.ndarray:
    """(…, 4) uint8 straight RGBA → float32 premultiplied RGBA in 0..1."""
    f = frames.astype(np.float32) / 255
    return np.concatenate([f[..., :3] * f[..., 3:], f[..., 3:]], -1)


def _body_square(frame: np.ndarray) -> np.ndarray | None:
    """The frame cropped to its body (α above half its peak, at least 16) and padded square; None if empty."""
    a = frame[..., 3]
    ys, xs = np.nonzero(a > max(16, int(a.max()) // 2))
    if len(xs) < 4:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0)
    sq = np.zeros((side, side, 4), np.uint8)
    oy, ox = (side - (y1 - y0)) // 2, (side - (x1 - x0)) // 2
    sq[oy:oy + y1 - y0, ox:ox + x1 - x0] = frame[y0:y1, x0:x1]
    return sq


def colour_histogram(frames: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    """α-weighted RGB histogram (bins³,) summing to 1 (all zeros for a fully transparent clip)."""
    rgb = frames[..., :3].reshape(-1, 3).astype(np.int64) * bins // 256
    w = frames[..., 3].reshape(-1).astype(np.float64)
    h = np.bincount((rgb[:, 0] * bins + rgb[:, 1]) * bins + rgb[:, 2], weights=w, minlength=bins**3)
    s = h.sum()
    return h / s if s > 0 else h


def colour_chi2(a: np.ndarray, b: np.ndarray) -> float:
    """χ² distance of two normalised histograms: ½Σ(p−q)²/(p+q), in 0..1."""
    s = a + b
    m = s > 0
    return float(0.5 * ((a[m] - b[m]) ** 2 / s[m]).sum())


# ---------------------------------------------------------------------------------------------- identity
def frame_descriptor(frame: np.ndarray, shape_only: bool = False) -> np.ndarray | None:
    """(H, W, 4) uint8 → multi-scale pooled premultiplied shape/colour + colour histogram, or None if empty.
    ``shape_only``: the pooled α alone (the silhouette at several scales; colour-blind)."""
    sq = _body_square(frame)
    if sq is None:
        return None
    small = Image.fromarray(sq, "RGBA").convert("RGBa").resize((DESC_SIZE, DESC_SIZE), Image.BOX)
    x = np.asarray(small, np.float32) / 255  # (16, 16, 4) premultiplied
    if shape_only:
        x = x[..., 3:]  # (16, 16, 1)
    parts = []
    for s in DESC_SCALES:
        k = DESC_SIZE // s
        pooled = x.reshape(s, k, s, k, x.shape[-1]).mean((1, 3)).reshape(-1)
        parts.append(pooled / np.sqrt(pooled.size))
    if shape_only:
        return np.concatenate(parts)
    hist = np.sqrt(colour_histogram(frame[None], HIST_BINS_ID)).astype(np.float32)
    parts.append(HIST_WEIGHT * hist / np.sqrt(2))  # Hellinger: distances in 0..1 like the pooled blocks
    return np.concatenate(parts)


def pack_descriptor(frames: np.ndarray, shape_only: bool = False) -> np.ndarray:
    """Mean frame descriptor of a clip (a zero vector for a clip that shows nothing)."""
    d = [v for v in (frame_descriptor(f, shape_only) for f in frames) if v is not None]
    if not d:
        return np.zeros(_descriptor_length(shape_only), np.float32)
    return np.mean(d, 0)


def _descriptor_length(shape_only: bool = False) -> int:
    return sum(s * s for s in DESC_SCALES) if shape_only else sum(s * s * 4 for s in DESC_SCALES) + HIST_BINS_ID**3


def identity_ranks(generated: Sequence[np.ndarray], wanted: Sequence[int], bank: np.ndarray,
                   shape_only: bool = False) -> list[int]:
    """Rank (0 = nearest) of sticker ``wanted[i]`` among ``bank`` (N, D) descriptors for each generated clip
    (``bank`` built with the same ``shape_only``)."""
    ranks = []
    for frames, w in zip(generated, wanted):
        d = ((bank - pack_descriptor(frames, shape_only)[None]) ** 2).sum(1)
        ranks.append(int((d < d[w]).sum()))  # ties count in the clip's favour
    return ranks


def top_k(ranks: Sequence[int], n: int) -> dict[str, Any]:
    r = np.asarray(ranks)
    return {"top1": float((r < 1).mean()) if len(r) else None, "top3": float((r < 3).mean()) if len(r) else None,
            "chance_top1": 1 / n, "chance_top3": min(3, n) / n, "clips": len(r)}


def shifted_view(frames: np.ndarray, shift: float = 0.04, scale: float = 0.92) -> np.ndarray:
    """The clip zoomed by ``scale`` and moved by ``shift``·size right and down (premultiplied resampling)."""
    h, w = frames.shape[1:3]
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    out = []
    for fr in frames:
        small = Image.fromarray(fr, "RGBA").convert("RGBa").resize((nw, nh), Image.BILINEAR)
        canvas = Image.new("RGBa", (w, h), (0, 0, 0, 0))
        canvas.paste(small, ((w - nw) // 2 + round(shift * w), (h - nh) // 2 + round(shift * h)))
        out.append(np.asarray(canvas.convert("RGBA"), np.uint8))
    return np.stack(out)


def blob_clip(like: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """A static disc of ``colour`` (RGB uint8) covering the sticker's average body: the "blob" control."""
    f, h, w = like.shape[:3]
    yy, xx = np.mgrid[:h, :w]
    r = 0.5 * np.sqrt(max(float((like[..., 3] > 127).mean((1, 2)).mean()), 1e-3) * h * w * 4 / np.pi)
    disc = ((yy - h / 2 + 0.5) ** 2 + (xx - w / 2 + 0.5) ** 2 <= r * r)
    out = np.zeros((f, h, w, 4), np.uint8)
    out[:, disc, :3] = colour
    out[:, disc, 3] = 255
    return out


def mean_colour(frames: np.ndarray) -> np.ndarray:
    a = frames[..., 3:].astype(np.float64)
    return (frames[..., :3] * a).sum((0, 1, 2)) / max(a.sum(), 1) if a.sum() else np.zeros(3)


def identity_controls(real: Sequence[np.ndarray], shape_only: bool = False) -> dict[str, Any]:
    """Top-1 of the descriptor on the real pack (shifted/zoomed view: must be 1) and on two blob controls."""
    bank = np.stack([pack_descriptor(r, shape_only) for r in real])
    n, ids = len(real), list(range(len(real)))
    pack_col = np.mean([mean_colour(r) for r in real], 0).round().astype(np.uint8)
    views = {"real_shifted": [shifted_view(r) for r in real],
             "blob_pack_colour": [blob_clip(r, pack_col) for r in real],
             "blob_own_colour": [blob_clip(r, mean_colour(r).round().astype(np.uint8)) for r in real]}
    return {k: top_k(identity_ranks(v, ids, bank, shape_only), n) for k, v in views.items()}


# ---------------------------------------------------------------------------------------------- motion
def frame_changes(frames: np.ndarray) -> np.ndarray:
    """(F−1,) mean |Δ| of premultiplied RGBA between consecutive frames."""
    p = premultiplied(frames)
    return np.abs(np.diff(p, axis=0)).mean(axis=(1, 2, 3)) if len(p) > 1 else np.zeros(0)


def seam_change(frames: np.ndarray) -> float:
    """Mean |Δ| of premultiplied RGBA from the last frame back to the first (the loop's wrap)."""
    p = premultiplied(frames[[0, -1]])
    return float(np.abs(p[1] - p[0]).mean())


def flicker_ratio(frames: np.ndarray) -> float:
    """Share of temporal variation energy at the alternating frequency (0 static/smooth … 1 pure A-B-A-B)."""
    p = premultiplied(frames)
    if len(p) < 3:
        return 0.0
    d = p - p.mean(0, keepdims=True)
    total = float((d**2).sum())
    if total < 1e-12:
        return 0.0
    sign = np.where(np.arange(len(p)) % 2 == 0, 1.0, -1.0)[:, None, None, None]
    alt = (d * sign).mean(0)  # per-pixel amplitude of the (−1)^t component
    return float(min(1.0, len(p) * (alt**2).sum() / total))


def motion_stats(frames: np.ndarray) -> dict[str, float | bool]:
    ch = frame_changes(frames)
    change = float(ch.mean()) if len(ch) else 0.0
    fl = flicker_ratio(frames)
    return {"change": change, "seam": seam_change(frames), "flicker_ratio": fl,
            "frozen": change < FROZEN_FLOOR, "flicker": change >= FROZEN_FLOOR and fl > FLICKER_RATIO}


# ---------------------------------------------------------------------------------------------- sharpness
def sharpness(frames: np.ndarray, size: int = EXPORT_SIZE, max_frames: int = 4, top: float = EDGE_TOP,
              upscaler: str = "bicubic") -> float:
    """Edge acutance: the mean of the strongest ``top`` share of gradient magnitudes of premultiplied RGBA over
    visible pixels, frames resized to ``size`` px (``max_frames`` evenly spaced frames: sharpness hardly changes
    along a clip, and 512 px frames are costly). The mean over *all* pixels could not see softness: a
    decoder's grid texture adds as much small gradient as blurred edges take away (measured on Fluent
    reconstructions: all-pixel mean real 0.092, blurred-and-textured 0.094; this measure 0.82 vs 0.73, and a
    2 px Gaussian blur 0.25). ``upscaler``: "bicubic" (premultiplied, Pillow), or ``EXPORT_UPSCALER`` — the
    upscaler an export enlarges with (``platforms.upscale``), i.e. the frames a user actually uploads."""
    picked = frames[np.unique(np.linspace(0, len(frames) - 1, max_frames).round().astype(int))]
    if upscaler == "bicubic":
        big = [np.asarray(Image.fromarray(fr, "RGBA").convert("RGBa").resize((size, size), Image.BICUBIC))
               for fr in picked]
    else:
        from rdtf_engine.platforms.upscale import resize_frames

        big = [np.asarray(Image.fromarray(fr, "RGBA").convert("RGBa"))
               for fr in resize_frames(np.ascontiguousarray(picked), size, size, upscaler)]
    vals = []
    for fr in big:
        p = np.asarray(fr, np.float32) / 255  # (size, size, 4) premultiplied
        gy, gx = np.gradient(p, axis=(0, 1))
        mag = np.sqrt(gx**2 + gy**2).sum(-1)[p[..., 3] > 16 / 255]  # (visible pixels,)
        if mag.size:
            vals.append(float(mag[mag >= np.quantile(mag, 1.0 - top)].mean()))
    return float(np.mean(vals)) if vals else 0.0


# ---------------------------------------------------------------------------------------------- summary
def spread(xs: Sequence[float]) -> dict[str, float | None]:
    x = np.asarray([v for v in xs if np.isfinite(v)], np.float64)
    if not len(x):
        return {"mean": None, "std": None, "min": None, "max": None}
    return {"mean": float(x.mean()), "std": float(x.std()), "min": float(x.min()), "max": float(x.max())}


def motion_summary(real: Sequence[np.ndarray], generated: Sequence[np.ndarray]) -> dict[str, Any]:
    """Frame change, loop seam, frozen and flickering clips (:func:`motion_stats`), real beside generated."""
    rm, gm = [motion_stats(r) for r in real], [motion_stats(g) for g in generated]

    def both(key: str, count: bool = False) -> dict[str, Any]:
        if count:
            return {"real": sum(bool(m[key]) for m in rm), "generated": sum(bool(m[key]) for m in gm)}
        return {"real": spread([m[key] for m in rm]), "generated": spread([m[key] for m in gm])}

    return {"change": both("change"), "seam": both("seam"), "frozen": both("frozen", True),
            "flicker": both("flicker", True), "flicker_ratio": both("flicker_ratio")}


def export_sharpness(real: Sequence[np.ndarray], generated: Sequence[np.ndarray]) -> dict[str, Any]:
    """Edge sharpness as exported (the platform size, the export upscaler), real beside generated."""
    return {"real": spread([sharpness(r, upscaler=EXPORT_UPSCALER) for r in real]),
            "generated": spread([sharpness(g, upscaler=EXPORT_UPSCALER) for g in generated]),
            "export_size": EXPORT_SIZE, "upscaler": EXPORT_UPSCALER}


def evaluate_pack(real: Sequence[np.ndarray], generated: Sequence[np.ndarray], wanted: Sequence[int],
                  captions: Sequence[str] | None = None, identity_frames: slice = slice(None)) -> dict[str, Any]:
    """Every pack metric for ``generated`` clips (each asked for real sticker ``wanted[i]``) against ``real``
    (each already reduced to the same frame count as the generated clips; see module docstring).
    ``identity_frames``: which generated frames identity looks at (image&text→video: ``slice(1, None)``, as
    its frame 0 is the given real frame)."""
    n = len(real)
    ident = [g[identity_frames] for g in generated]
    bank = np.stack([pack_descriptor(r) for r in real])
    ranks = identity_ranks(ident, wanted, bank)
    shape_bank = np.stack([pack_descriptor(r, shape_only=True) for r in real])
    shape_ranks = identity_ranks(ident, wanted, shape_bank, shape_only=True)
    rh = [colour_histogram(r) for r in real]
    pairs = [colour_chi2(rh[i], rh[j]) for i in range(n) for j in range(i + 1, n)]
    out: dict[str, Any] = {
        "identity": {**top_k(ranks, n), "ranks": ranks},
        "identity_shape": {**top_k(shape_ranks, n), "ranks": shape_ranks},
        "motion": motion_summary(real, generated),
        # as exported (the learned upscaler: what a user uploads), and by bicubic resizing as measured before it
        "sharpness": export_sharpness(real, generated),
        "sharpness_bicubic": {"real": spread([sharpness(r) for r in real]),
                              "generated": spread([sharpness(g) for g in generated]), "export_size": EXPORT_SIZE},
        "colour_chi2": {"generated_to_own": spread([colour_chi2(colour_histogram(g), rh[w])
                                                    for g, w in zip(generated, wanted)]),
                        "real_pairs": spread(pairs)},
    }
    if captions is not None:
        out["identity"]["misses"] = [{"caption": captions[w], "rank": r} for w, r in zip(wanted, ranks) if r > 0]
    return out


__all__ = ["FLICKER_RATIO", "FROZEN_FLOOR", "blob_clip", "colour_chi2", "colour_histogram", "evaluate_pack",
           "export_sharpness", "flicker_ratio", "frame_changes", "identity_controls", "identity_ranks",
           "motion_stats", "motion_summary", "pack_descriptor", "sharpness", "shifted_view", "top_k"]
