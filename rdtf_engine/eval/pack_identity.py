"""Identity across a pack: does every sticker still show the pack's character?

The feature is the one ``rdtf eval`` scores image & text → video identity with (``metrics.identity_feature``:
each frame cropped to its body, padded square, 20 × 20 premultiplied RGBA, 1600-d in 0..1; position- and
scale-free), compared with the same rule: the character is rendered upright and at 12 rotations every 30°,
and a frame's distance is the smallest over them (a spinning sticker keeps its identity).

- **frame identity** = 1 − ‖f − c‖₂ / √D, the nearest rotation c: 1 − the RMS difference per feature value,
  1 for the character itself, 0 for a frame that shows nothing.
- **sticker identity** = the mean over the sticker's generated frames (frame 0 is the character picture
  itself, given verbatim: it is left out, as ``rdtf eval`` leaves it out).
- **floor**: the same score for a disc in the character's mean colour covering its area — what colour alone
  earns. A sticker **keeps** its identity when it scores above the floor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rdtf_engine.eval.metrics import IdentityBank, identity_feature


def character_features(character: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 character → (R, D) identity features of its R rotations."""
    return IdentityBank.from_sprites({"character": character}).feats


def frame_identity(frame: np.ndarray, feats: np.ndarray) -> float:
    """1 − RMS distance of the frame's identity feature to the nearest rotation of the character (0 if empty)."""
    f = identity_feature(frame)
    if f is None:
        return 0.0
    d = np.sqrt(((feats - f[None]) ** 2).sum(1).min())
    return float(max(0.0, 1.0 - d / np.sqrt(f.size)))


def sticker_identity(frames: np.ndarray, feats: np.ndarray, skip_first: bool = True) -> float:
    """Mean frame identity over a sticker's (F, H, W, 4) frames (frame 0 left out when it is the given one)."""
    view = frames[1:] if skip_first and len(frames) > 1 else frames
    return float(np.mean([frame_identity(fr, feats) for fr in view]))


def colour_floor(character: np.ndarray, feats: np.ndarray) -> float:
    """The identity of a disc in the character's mean colour with the character's area (colour alone)."""
    a = character[..., 3].astype(np.float64) / 255
    h, w = a.shape
    area = max(float((a > 0.5).sum()), 16.0)
    colour = (character[..., :3] * a[..., None]).sum((0, 1)) / max(a.sum(), 1e-6)
    r = np.sqrt(area / np.pi)
    yy, xx = np.mgrid[:h, :w]
    disc = (yy - h / 2 + 0.5) ** 2 + (xx - w / 2 + 0.5) ** 2 <= r * r
    blob = np.zeros_like(character)
    blob[disc, :3] = np.round(colour).astype(np.uint8)
    blob[disc, 3] = 255
    return frame_identity(blob, feats)


def pack_identity(character: np.ndarray, stickers: Sequence[np.ndarray]) -> dict:
    """Per-sticker identity to the character, the floor, and the pack's mean / min / share kept."""
    feats = character_features(character)
    floor = colour_floor(character, feats)
    scores = [sticker_identity(s, feats) for s in stickers]
    return {"scores": scores, "floor": floor, "kept": [s > floor for s in scores],
            "mean": float(np.mean(scores)) if scores else None, "min": float(np.min(scores)) if scores else None,
            "kept_share": float(np.mean([s > floor for s in scores])) if scores else None}


__all__ = ["character_features", "colour_floor", "frame_identity", "pack_identity", "sticker_identity"]
