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

Across several packs (K characters), :func:`identity_accuracy` counts a sticker as keeping its identity when,
among the K characters' pictures, the nearest to it is its own character — ``IdentityBank.identify``'s rule
(the smallest distance over the sticker's generated frames and each character's rotations). A tie between
n characters at the smallest distance earns 1/n when the sticker's own is among them (the expectation of
breaking the tie at random), so K identical characters score exactly chance, 1/K.
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
    return frame_identity(colour_disc(character), feats)


def colour_disc(character: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8: a disc in the character's mean colour with the character's area, on the same canvas."""
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
    return blob


def pack_identity(character: np.ndarray, stickers: Sequence[np.ndarray]) -> dict:
    """Per-sticker identity to the character, the floor, and the pack's mean / min / share kept."""
    feats = character_features(character)
    floor = colour_floor(character, feats)
    scores = [sticker_identity(s, feats) for s in stickers]
    return {"scores": scores, "floor": floor, "kept": [s > floor for s in scores],
            "mean": float(np.mean(scores)) if scores else None, "min": float(np.min(scores)) if scores else None,
            "kept_share": float(np.mean([s > floor for s in scores])) if scores else None}


# ---------------------------------------------------------------------------------------------- across packs
TIE_TOLERANCE = 1e-6  # squared feature distances this close are a tie (identical characters, float rounding)


def nearest_characters(frames: np.ndarray, bank: IdentityBank) -> list[str]:
    """Ids of the characters nearest to any of the (F, H, W, 4) frames (several on a tie; [] if all empty)."""
    q = [f for f in (identity_feature(fr) for fr in frames) if f is not None]
    if not q:
        return []
    qa, fa = np.stack(q).astype(np.float64), bank.feats.astype(np.float64)  # (Q, D), (R·K, D)
    d = ((qa**2).sum(1)[:, None] + (fa**2).sum(1)[None] - 2 * qa @ fa.T).min(0)  # (R·K,) squared L2, nearest frame
    ids = np.asarray(bank.ids)
    best = {i: float(d[ids == i].min()) for i in dict.fromkeys(bank.ids)}
    low = min(best.values())
    return [i for i, v in best.items() if v <= low + TIE_TOLERANCE]


def _credit(own: str, nearest: list[str]) -> float:
    return 1.0 / len(nearest) if own in nearest else 0.0


def identity_accuracy(characters: dict[str, np.ndarray], stickers: Sequence[tuple[str, np.ndarray]],
                      skip_first: bool = True) -> dict:
    """Share of stickers whose nearest character (among all of ``characters``) is their own.

    ``characters``: {id: (H, W, 4) uint8 picture}; ``stickers``: (its character's id, (F, H, W, 4) frames).
    Frame 0 is left out when it is the given character picture (``skip_first``). Besides the accuracy: per
    character, chance (1/K), and two controls under the same rule — ``ceiling``: each character's own picture
    as a one-frame sticker (below 1 only when two characters look alike to the feature); ``colour_only``: a disc
    in each character's mean colour (what colour alone identifies). ``credits``: each sticker's 0, 1/n or 1;
    ``misses``: (sticker index, wanted, the nearest characters).
    """
    if len(characters) < 2:
        raise ValueError("identity accuracy needs at least two characters")
    bank = IdentityBank.from_sprites(characters)
    credits, per, misses = [], {c: [] for c in characters}, []
    for i, (own, frames) in enumerate(stickers):
        view = frames[1:] if skip_first and len(frames) > 1 else frames
        nearest = nearest_characters(view, bank)
        credits.append(_credit(own, nearest))
        per[own].append(credits[-1])
        if credits[-1] < 1:
            misses.append({"index": i, "wanted": own, "found": nearest})

    def control(picture) -> float:
        return float(np.mean([_credit(c, nearest_characters(picture(img)[None], bank))
                              for c, img in characters.items()]))

    return {"accuracy": float(np.mean(credits)) if credits else None, "stickers": len(credits), "credits": credits,
            "characters": len(characters), "chance": 1.0 / len(characters),
            "per_character": {c: (float(np.mean(v)) if v else None) for c, v in per.items()},
            "ceiling": control(lambda img: img), "colour_only": control(colour_disc), "misses": misses}


__all__ = ["character_features", "colour_disc", "colour_floor", "frame_identity", "identity_accuracy",
           "nearest_characters", "pack_identity", "sticker_identity"]
