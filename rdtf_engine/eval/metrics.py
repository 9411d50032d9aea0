"""Offline sticker metrics built from our own data (no pretrained FVD / CLIP networks exist offline).

Definitions (α = alpha in 0..255; all clips straight RGBA uint8 (F, H, W, 4)):

- **motion accuracy**: the motion classifier (``classifier.py``, trained only on real procedural clips)
  predicts the motion class of each generated clip; accuracy against the prompt's ``labels["motion"]``.
- **Fréchet distance**: between Gaussians fitted to the classifier's 128-d penultimate features of the
  reference and generated clips (an FVD stand-in: same formula, our own feature space), computed with
  a symmetric eigen-decomposition: Tr(√(√Σ₁ Σ₂ √Σ₁)) = Tr(√(Σ₁Σ₂)), no scipy needed. Reported with a
  noise floor: the distance between two halves of the references. Few clips in a 128-d space bias it
  upwards (n < d gives singular covariances): compare numbers only at equal clip counts.
- **identity**: each frame is cropped to the box of its body (α > max(16, ½·max α): faint specks far from
  the object, which a decoder leaves behind, must not stretch the box), padded to a square, resized to
  20 × 20 premultiplied RGBA (1600-d, scale- and position-invariant); the clip's identity is the nearest
  reference sprite (L2, minimum over its frames and over 12 reference rotations every 30°).
- **alpha semi-share**: |{16 < α < 239} \\ E| / |{α > 16} \\ E| over all frames, where E is the edge band:
  (alpha > 127) dilated minus eroded by 2 px (5 × 5 square; outside the canvas counts as transparent).
  Clean stickers → 0 (fade motions legitimately raise it; compare with the references' value).
- **background flicker**: mean |Δα| / 255 between consecutive frames (cyclic, last → first) over the static
  background: pixels farther than 2 px from α > 127 in *every* frame. Clean stickers → ≈ 0 (only faint
  anti-aliased tips reach it).
- **loop seam**: mean |Δ| of premultiplied RGBA from the last frame to the first, divided by the largest
  mean |Δ| between consecutive frames (≤ 1: the loop's wrap is no bigger than a step inside the clip;
  ≫ 1: a visible jump; 0 for a static clip).
- **coherence** (``pack_metrics.motion_stats``): mean |Δ| of premultiplied RGBA between consecutive frames,
  frozen clips (below ``pack_metrics.FROZEN_FLOOR``) and flickering ones (alternating energy above
  ``pack_metrics.FLICKER_RATIO``), for the generated clips beside the real ones, each real clip seen through as
  many frames as a sample has, evenly spaced over its length (``keyframes.loop_frames``), so both step alike.
- **sharpness at export**: ``pack_metrics.sharpness`` — edge acutance of 4 frames enlarged to 512 px by the
  upscaler an export uses — for generated and real clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from rdtf_engine.core.clip import Clip

IDENTITY_SIZE = 20
IDENTITY_ANGLES = tuple(range(0, 360, 30))


# ---------------------------------------------------------------------------------------------- morphology
def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary dilation of (..., H, W) by a (2r+1)² square; outside the array counts as False."""
    out = mask.copy()
    for axis in (-2, -1):
        src, acc = out, out.copy()
        for s in range(1, r + 1):
            n = src.shape[axis]
            lo = [slice(None)] * src.ndim
            hi = [slice(None)] * src.ndim
            lo[axis], hi[axis] = slice(0, n - s), slice(s, n)
            acc[tuple(lo)] |= src[tuple(hi)]
            acc[tuple(hi)] |= src[tuple(lo)]
        out = acc
    return out


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    """Binary erosion; pixels within r of the canvas border are eroded (outside counts as transparent)."""
    padded = np.pad(~mask, [(0, 0)] * (mask.ndim - 2) + [(r, r), (r, r)], constant_values=True)
    return ~_dilate(padded, r)[..., r:-r, r:-r]


def edge_band(alpha: np.ndarray, r: int = 2) -> np.ndarray:
    """(..., H, W) bool: within r px of the boundary of α > 127."""
    m = alpha > 127
    return _dilate(m, r) & ~_erode(m, r)


# ---------------------------------------------------------------------------------------------- alpha metrics
def alpha_semi_share(frames: np.ndarray) -> float:
    """Share of visible pixels away from object edges that are semi-transparent (see module docstring)."""
    a = frames[..., 3]
    away = ~edge_band(a)
    den = int(((a > 16) & away).sum())
    return float(((a > 16) & (a < 239) & away).sum() / den) if den else 0.0


def background_flicker(frames: np.ndarray) -> float:
    """Mean |Δα|/255 over consecutive frame pairs (cyclic) on the static background (module docstring)."""
    a = frames[..., 3].astype(np.float32)
    if len(a) < 2:
        return 0.0
    background = ~_dilate((a > 127).any(0), 2)  # (H, W)
    if not background.any():
        return 0.0
    diff = np.abs(np.roll(a, -1, axis=0) - a)  # (F, H, W), frame t+1 − t with F-1 → 0
    return float(diff[:, background].mean() / 255)


def loop_seam(frames: np.ndarray) -> float:
    """Last → first change relative to the largest consecutive change, on premultiplied RGBA (≤ 1: the wrap
    is no bigger than a step inside the clip; 0 for a static clip; inf when only the wrap changes)."""
    if len(frames) < 2:
        return 0.0
    f = frames.astype(np.float64) / 255
    p = np.concatenate([f[..., :3] * f[..., 3:], f[..., 3:]], -1)
    steps = np.abs(np.diff(p, axis=0)).mean(axis=(1, 2, 3))  # (F-1,)
    seam = float(np.abs(p[0] - p[-1]).mean())
    if seam < 1e-9:
        return 0.0
    big = float(steps.max())
    return seam / big if big > 1e-9 else float("inf")


# ---------------------------------------------------------------------------------------------- Fréchet
def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to (N, D) and (M, D) feature sets (N, M ≥ 2)."""
    a, b = np.asarray(feats_a, np.float64), np.asarray(feats_b, np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least 2 samples per set")
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    r1 = _sqrt_psd(s1)
    cross = np.linalg.eigvalsh(r1 @ s2 @ r1)  # eigenvalues of Σ₁Σ₂ (similar matrix), ≥ 0 up to rounding
    tr_covmean = float(np.sqrt(np.clip(cross, 0, None)).sum())
    d = float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)
    return max(d, 0.0)


# ---------------------------------------------------------------------------------------------- identity
def identity_feature(frame: np.ndarray, size: int = IDENTITY_SIZE) -> np.ndarray | None:
    """(H, W, 4) uint8 → (size·size·4,) float32, or None if the frame shows (almost) nothing.

    The box comes from the body (α above half the frame's peak), not from every visible pixel: one α = 20
    speck in a corner (autoencoder haze) would otherwise make the crop the whole canvas and the feature
    meaningless (round-trip identity of real clips through the 256 px autoencoder: 0 % with α > 16)."""
    a = frame[..., 3]
    ys, xs = np.nonzero(a > max(16, int(a.max()) // 2))
    if len(xs) < 4:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    crop = frame[y0:y1, x0:x1]
    side = max(y1 - y0, x1 - x0)
    sq = np.zeros((side, side, 4), np.uint8)
    oy, ox = (side - (y1 - y0)) // 2, (side - (x1 - x0)) // 2
    sq[oy:oy + y1 - y0, ox:ox + x1 - x0] = crop
    small = Image.fromarray(sq, "RGBA").convert("RGBa").resize((size, size), Image.BOX)
    return np.asarray(small, np.float32).reshape(-1) / 255


class IdentityBank:
    """Reference features (K, D) with their object ids; :meth:`identify` returns the nearest id."""

    def __init__(self, feats: np.ndarray, ids: list[str]) -> None:
        self.feats, self.ids = feats.astype(np.float32), ids
        self._sq = (self.feats**2).sum(1)

    @classmethod
    def from_sprites(cls, sprites: dict[str, np.ndarray], angles: Sequence[float] = IDENTITY_ANGLES,
                     render_size: int = 64) -> IdentityBank:
        """Render each sprite upright and rotated by ``angles`` (degrees) and keep their features."""
        from rdtf_engine.data.motion import MotionFrames, render_motion

        n = len(angles)
        ones, zeros = np.ones(n), np.zeros(n)
        mf = MotionFrames(zeros, zeros, np.asarray(angles, np.float64), ones, ones, ones)
        feats, ids = [], []
        for obj, sprite in sprites.items():
            for fr in render_motion(sprite, mf, render_size):
                f = identity_feature(fr)
                if f is not None:
                    feats.append(f)
                    ids.append(obj)
        return cls(np.stack(feats), ids)

    @classmethod
    def from_clips(cls, clips: Sequence[Clip], key: str = "object", frames_per_clip: int = 8) -> IdentityBank:
        """Reference frames of labelled clips (when no sprites are at hand, e.g. imported data)."""
        feats, ids = [], []
        for c in clips:
            if key not in c.labels:
                continue
            for i in np.unique(np.linspace(0, c.num_frames - 1, frames_per_clip).round().astype(int)):
                f = identity_feature(c.frames[i])
                if f is not None:
                    feats.append(f)
                    ids.append(str(c.labels[key]))
        if not feats:
            raise ValueError(f"no reference clips carry a {key!r} label")
        return cls(np.stack(feats), ids)

    def identify(self, clip: Clip) -> str | None:
        """Nearest reference id over all frames of the clip (None if every frame is empty)."""
        q = [f for f in (identity_feature(fr) for fr in clip.frames) if f is not None]
        if not q:
            return None
        qa = np.stack(q)  # (Q, D)
        d = (qa**2).sum(1)[:, None] + self._sq[None, :] - 2 * qa @ self.feats.T  # (Q, K) squared L2
        return self.ids[int(np.unravel_index(np.argmin(d), d.shape)[1])]


def reference_identity_accuracy(references: Sequence[Clip], bank: IdentityBank, num_frames: int,
                                key: str = "object") -> float | None:
    """The identity metric's ceiling: the same nearest-emoji rule on the *real* held-out clips, each seen the way
    an image&text→video sample is scored (``num_frames`` evenly spaced frames, the first one dropped). Below 1,
    the rule itself loses clips (fades, spins, near-twins in the bank); at 1 (both builtin:emoji-holdout draws
    and dev with the round-11 weights) every generated miss is the model's."""
    from rdtf_engine.data.keyframes import uniform_keyframes

    hits = []
    for c in references:
        if key in c.labels:
            idx = uniform_keyframes(c.num_frames, num_frames)[1:] or [0]
            view = Clip(c.frames[idx], [100] * len(idx), c.caption, c.labels)
            hits.append(bank.identify(view) == str(c.labels[key]))
    return float(np.mean(hits)) if hits else None


# ---------------------------------------------------------------------------------------------- summary
def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if np.isfinite(x)]
    return float(np.mean(xs)) if xs else None


def evaluate_clips(generated: Sequence[Clip], references: Sequence[Clip], classifier: Any, *,
                   identity_bank: IdentityBank | None = None, identity_key: str = "object",
                   given_first: bool = False, export_sharpness: bool = True) -> dict[str, Any]:
    """All metrics of this module for ``generated`` clips against ``references`` (real clips).

    ``generated[i].labels`` carry what was asked for: ``motion`` (motion adherence) and ``identity_key``
    (identity, e.g. the emoji of an it2v prompt). Without an ``identity_bank`` one is built from the
    references' frames. Values that cannot be computed are None. ``motion_misses`` / ``identity_misses`` list
    the clips that missed (caption, wanted, found), so a report says which prompts failed, not only how many.
    ``given_first``: the generated clips are image&text→video samples without their given frame 0, so the real
    clips are compared through the same frames (one more, the first dropped). ``export_sharpness=False`` skips
    the sharpness at export (≈ 0.3 s a clip on a CPU: the upscaler enlarges 4 frames to 512 px).
    """
    gen, ref = list(generated), list(references)
    out: dict[str, Any] = {"clips": len(gen), "references": len(ref)}
    gfeat, gpred = classifier.embed(gen)
    rfeat, rpred = classifier.embed(ref)
    classes = set(classifier.classes)

    def adherence(clips: list[Clip], preds: list[str]) -> tuple[float | None, dict[str, float], list[dict]]:
        per: dict[str, list[bool]] = {}
        misses = []
        for c, p in zip(clips, preds):
            m = c.labels.get("motion")
            if m in classes:
                per.setdefault(m, []).append(p == m)
                if p != m:
                    misses.append({"caption": c.caption, "wanted": m, "found": p})
        hits = [h for v in per.values() for h in v]
        acc = float(np.mean(hits)) if hits else None
        return acc, {m: float(np.mean(v)) for m, v in sorted(per.items())}, misses

    out["motion_accuracy"], out["motion_accuracy_per_class"], out["motion_misses"] = adherence(gen, gpred)
    out["reference_motion_accuracy"], _, _ = adherence(ref, rpred)
    out["frechet_distance"] = frechet_distance(rfeat, gfeat) if len(gen) >= 2 and len(ref) >= 2 else None
    if len(ref) >= 4:  # noise floor: two halves of the same real distribution
        perm = np.random.default_rng(0).permutation(len(ref))
        h = len(ref) // 2
        out["frechet_distance_reference_halves"] = frechet_distance(rfeat[perm[:h]], rfeat[perm[h:]])
    else:
        out["frechet_distance_reference_halves"] = None

    wanted = [c for c in gen if identity_key in c.labels]
    if wanted:
        try:
            bank = identity_bank or IdentityBank.from_clips(ref, identity_key)
        except ValueError:
            bank = None
        if bank is not None:
            found = [bank.identify(c) for c in wanted]
            hits = [f == str(c.labels[identity_key]) for c, f in zip(wanted, found)]
            out["identity_accuracy"] = float(np.mean(hits))
            # Which emoji was drawn instead: tells a near-twin in the bank (sheep ↔ ram) from a lost identity.
            out["identity_misses"] = [{"caption": c.caption, "wanted": str(c.labels[identity_key]), "found": f,
                                       **({"split": str(c.labels["split"])} if "split" in c.labels else {})}
                                      for c, f, h in zip(wanted, found, hits) if not h]
            # by split (held-out emoji vs held-out (emoji, motion) pairs) and by motion (do spins lose identity?)
            for label in ("split", "motion"):
                groups: dict[str, list[bool]] = {}
                for c, h in zip(wanted, hits):
                    if label in c.labels:
                        groups.setdefault(str(c.labels[label]), []).append(h)
                if groups:
                    out[f"identity_accuracy_by_{label}"] = {g: {"accuracy": float(np.mean(v)), "clips": len(v)}
                                                            for g, v in sorted(groups.items())}
    out.setdefault("identity_accuracy", None)

    for name, fn in (("alpha_semi_share", alpha_semi_share), ("background_flicker", background_flicker),
                     ("loop_seam", loop_seam)):
        out[name] = {"generated": _mean([fn(c.frames) for c in gen]), "reference": _mean([fn(c.frames) for c in ref])}
    out.update(coherence_and_sharpness(gen, ref, given_first, export_sharpness))
    return out


def coherence_and_sharpness(gen: Sequence[Clip], ref: Sequence[Clip], given_first: bool = False,
                            export_sharpness: bool = True) -> dict[str, Any]:
    """Frame change, frozen and flickering clips, and sharpness at export, generated beside real (module doc)."""
    from rdtf_engine.data.keyframes import loop_frames
    from rdtf_engine.eval.pack_metrics import export_sharpness as sharpness_as_exported
    from rdtf_engine.eval.pack_metrics import motion_summary

    if not gen or not ref:
        return {"coherence": None, "sharpness": None}
    n = gen[0].num_frames + int(given_first)
    real = [c.frames[loop_frames(c.num_frames, n)[int(given_first):]] for c in ref]
    frames = [c.frames for c in gen]
    sharp = sharpness_as_exported(real, frames) if export_sharpness else None
    return {"coherence": motion_summary(real, frames), "sharpness": sharp}
