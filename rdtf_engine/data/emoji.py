"""``builtin:emoji`` / ``builtin:emoji-holdout``: Noto Color Emoji animated by the motion programs.

Glyphs come from the Debian package ``fonts-noto-color-emoji`` (OFL). The font is a CBDT bitmap font: only
size 109 exists, so each glyph is rendered once at 109 px (about 136 × 128) and the motion renderer resizes
it (at 256 px output the emoji is upscaled ~1.2×: slightly soft, no better source exists offline).

The curated list holds single-code-point emoji (faces, hearts, hands, animals, plants, food, objects):
no ZWJ sequences, skin-tone modifiers or flags, so every entry renders without text shaping. Entries the
installed font lacks are dropped at load time.

Splits are fixed by hashing code points (independent of seed, font version and list order):
- held-out emoji: ≈ 10 % of emoji, all their motions;
- held-out pairs: ≈ 4 % of the (train emoji, motion) pairs.
``builtin:emoji`` never yields either; ``builtin:emoji-holdout`` yields only them (label ``split``).

Training also draws from an **extra pool**: every other single-code-point emoji the font has (weather, places,
tools, symbols…; ≈ 740 after the split, ``EXTRA_P`` of training clips) whose code point does not hash into the
held-out 10 %. Extras that do hash there are never trained on, so ``builtin:emoji-holdout`` and its identity bank
stay exactly the curated list's (evaluations stay comparable across models). Those ≈ 80 never-trained extras
form **``builtin:emoji-dev``**: never-seen emoji that are not the test set, for choosing sampling settings
without tuning on the held-out split (its identity bank is the curated 500 plus them). Why: with only the 445
curated training emoji the model learned to recall emoji rather than copy the given frame (identity 97 % on
seen emoji, 47 % on never-seen ones).

For the same reason training clips get **appearance augmentation** (never the held-out source): a mirror image
half of the time, and in ``HUE_SHIFT_P`` of clips a hue rotation of 40°–320°, captioned "a recoloured <name> …"
so that the text never claims a colour the clip does not have. In ``COMPOSITE_P`` of training clips the emoji
wears a second, smaller training emoji ("grinning face with a crown …", :func:`composite_sprite`): a new
identity every time, with the kind of inner detail (glasses, a monocle, a hat) that never-seen emoji lose
first, so that copying the given frame pays and recalling a known emoji does not. In ``SPLICE_P`` more, the
emoji is cut across (or down) and finished by a second one ("half nerd face, half grinning face …",
:func:`splice_sprite`; a smiley's partner is a smiley): new mixes of eyes and mouth, the detail that the
never-seen smileys lost (docs/results.md, round 11). Smileys are ≈ 9 % of training emoji, so left to chance only
≈ 2 % of clips would be spliced smileys: in ``SPLICE_FACE_P`` of spliced clips the first emoji is redrawn from
the smileys (the pair rule still holds), which makes them ≈ 10 %.
"""

from __future__ import annotations

import hashlib
import os
import threading
import unicodedata
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from rdtf_engine.core.errors import DependencyError, InputError
from rdtf_engine.data.clip_source import Plan, ProceduralSource
from rdtf_engine.data.motion import MOTION_WEIGHTS, MOTIONS, motion_phrase, sample_durations, sample_motion

FONT_SIZE = 109  # the only strike in NotoColorEmoji.ttf
FONT_PACKAGE = "fonts-noto-color-emoji"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",  # Debian / Ubuntu
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",  # Arch
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",  # Fedora
    "/usr/share/fonts/google-noto-color-emoji-fonts/Noto-COLRv1.ttf",
)
HOLDOUT_EMOJI_FRACTION = 0.10
HOLDOUT_PAIR_FRACTION = 0.04
MIRROR_P = 0.5  # training clips whose sprite is mirrored left ↔ right
EXTRA_P = 0.4  # training clips drawn from the extra pool (the curated emoji keep most of the exposure)
HUE_SHIFT_P = 0.3  # training clips whose sprite's hue is rotated (caption says "recoloured")
COMPOSITE_P = 0.25  # training clips whose emoji wears a second one (caption: "<name> with a <name> …")
COMPOSITE_SCALE = (0.3, 0.55)  # the worn emoji's longer side, as a share of the wearer's
SPLICE_P = 0.2  # training clips whose emoji is spliced with a second one (caption: "half <name>, half <name> …")
SPLICE_AT = (0.35, 0.65)  # where the cut runs, as a share of the sprite's height (or width)
SPLICE_FACE_P = 0.5  # spliced clips whose first emoji is redrawn from the smileys (module docstring)

# Inclusive code-point ranges of the curated list (single code points with an emoji glyph).
_RANGES = [
    (0x1F600, 0x1F64F), (0x1F910, 0x1F92F), (0x1F970, 0x1F97A), (0x1F9D0, 0x1F9D0), (0x1FAE0, 0x1FAE7),  # faces
    (0x1F479, 0x1F480), (0x1F4A9, 0x1F4A9),  # ogres, ghost, alien, skull, poo
    (0x2764, 0x2764), (0x1F493, 0x1F49F), (0x1F5A4, 0x1F5A4), (0x1F90D, 0x1F90E), (0x1F9E1, 0x1F9E1),  # hearts
    (0x1F48B, 0x1F48C), (0x1F48E, 0x1F48E),
    (0x1F44B, 0x1F44F), (0x1F440, 0x1F440), (0x1F444, 0x1F444), (0x1F451, 0x1F451),  # hands, eyes, crown
    (0x1F400, 0x1F43E), (0x1F980, 0x1F9AE),  # animals
    (0x1F330, 0x1F344), (0x1F490, 0x1F490), (0x1F4AE, 0x1F4AE),  # plants
    (0x1F345, 0x1F37F), (0x1F950, 0x1F96F), (0x1F9C0, 0x1F9CB),  # food and drink
    (0x1F380, 0x1F393), (0x1F3A0, 0x1F3C0), (0x1F3C8, 0x1F3C9), (0x26BD, 0x26BE),  # celebrations, activities
    (0x1F4A1, 0x1F4A1), (0x1F4A3, 0x1F4A5), (0x1F4A7, 0x1F4A7), (0x1F4AB, 0x1F4AC), (0x1F4AF, 0x1F4B0),
    (0x1F4E6, 0x1F4E6), (0x1F4F1, 0x1F4F1), (0x1F4F7, 0x1F4F7), (0x1F511, 0x1F511), (0x1F514, 0x1F514),
    (0x1F525, 0x1F525), (0x1F52E, 0x1F52E), (0x1F680, 0x1F680), (0x1F697, 0x1F697), (0x1F6F8, 0x1F6F8),
    (0x1F9F8, 0x1F9F8), (0x1F3B5, 0x1F3B6),  # objects
    (0x2600, 0x2601), (0x26A1, 0x26A1), (0x26C4, 0x26C5), (0x2728, 0x2728), (0x2744, 0x2744), (0x2B50, 0x2B50),
    (0x1F300, 0x1F300), (0x1F308, 0x1F308), (0x1F30D, 0x1F30D), (0x1F319, 0x1F31B), (0x1F31D, 0x1F31F),  # sky
]
# Blocks searched for the extra training pool (minus the curated list, skin tones and regional indicators).
_EXTRA_RANGES = [(0x2300, 0x23FF), (0x2600, 0x27BF), (0x2B00, 0x2BFF), (0x3030, 0x303D), (0x3297, 0x3299),
                 (0x1F000, 0x1F2FF), (0x1F300, 0x1F5FF), (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF), (0x1FA70, 0x1FAFF)]
# Unicode names that read badly in captions → everyday names.
_NAME_OVERRIDES = {
    0x2764: "red heart", 0x2600: "sun", 0x2601: "cloud", 0x26A1: "lightning bolt", 0x26C4: "snowman",
    0x2B50: "star", 0x1F4AF: "hundred points", 0x1F44D: "thumbs up", 0x1F44E: "thumbs down",
    0x1F44B: "waving hand", 0x1F44F: "clapping hands", 0x1F4A9: "pile of poo", 0x1F618: "face blowing a kiss",
    0x1F346: "aubergine", 0x1F31F: "glowing star", 0x1F525: "fire", 0x1F4A5: "collision", 0x1F4A4: "zzz",
}


def emoji_name(cp: int) -> str:
    """Lower-case display name used in captions ("grinning face")."""
    name = _NAME_OVERRIDES.get(cp) or unicodedata.name(chr(cp), "emoji").lower().replace(" sign", "")
    return name.removesuffix(" symbol")  # "full moon symbol" → "full moon"


def candidate_codepoints() -> list[int]:
    """The curated list before checking the font: single code points that have a Unicode name here."""
    cps = sorted({c for a, b in _RANGES for c in range(a, b + 1)})
    return [c for c in cps if unicodedata.name(chr(c), None) and not _is_modifier(c)]


def _is_modifier(c: int) -> bool:
    """Skin-tone modifiers and regional indicators: parts of sequences, not emoji on their own."""
    return 0x1F3FB <= c <= 0x1F3FF or 0x1F1E6 <= c <= 0x1F1FF


def _unit_hash(*parts: object) -> float:
    """Stable value in [0, 1) from the parts (sha256, not Python's randomised hash)."""
    h = hashlib.sha256(":".join(str(p) for p in ("rdtf-emoji-split",) + parts).encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64


def is_heldout_emoji(cp: int) -> bool:
    return _unit_hash(f"{cp:x}") < HOLDOUT_EMOJI_FRACTION


def is_heldout_pair(cp: int, motion: str) -> bool:
    return not is_heldout_emoji(cp) and _unit_hash(f"{cp:x}", motion) < HOLDOUT_PAIR_FRACTION


# ---------------------------------------------------------------------------------------------- font
_FONT_LOCK = threading.Lock()
_FONT: ImageFont.FreeTypeFont | None = None


def find_font() -> str | None:
    env = os.environ.get("RDTF_EMOJI_FONT")
    for path in ([env] if env else []) + list(FONT_CANDIDATES):
        if path and os.path.isfile(path):
            return path
    return None


def load_font() -> ImageFont.FreeTypeFont:
    """The emoji font at its bitmap size; :class:`DependencyError` naming the Debian package if absent."""
    global _FONT
    with _FONT_LOCK:
        if _FONT is None:
            path = find_font()
            if path is None:
                raise DependencyError(
                    "builtin:emoji needs the Noto Color Emoji font, which was not found "
                    f"(looked in {', '.join(FONT_CANDIDATES)}). On Debian/Ubuntu install it with "
                    f"`sudo apt-get install {FONT_PACKAGE}` (or run `make setup`), or set RDTF_EMOJI_FONT "
                    "to the path of NotoColorEmoji.ttf. builtin:shapes works without it."
                )
            try:
                _FONT = ImageFont.truetype(path, FONT_SIZE)
            except OSError as e:
                raise DependencyError(f"cannot load the emoji font {path}: {e} (reinstall {FONT_PACKAGE})") from e
        return _FONT


@lru_cache(maxsize=1)
def available_codepoints() -> tuple[int, ...]:
    """Curated code points that the installed font has a glyph for (missing glyphs have an empty bbox)."""
    font = load_font()
    return tuple(cp for cp in candidate_codepoints() if _has_glyph(font, cp))


def _has_glyph(font: ImageFont.FreeTypeFont, cp: int) -> bool:
    box = font.getbbox(chr(cp))  # a glyph the font lacks has an empty bbox
    return box[3] - box[1] > 0 and box[2] - box[0] > 0


@lru_cache(maxsize=1)
def extra_codepoints() -> tuple[int, ...]:
    """The extra training pool before the split: named single code points in ``_EXTRA_RANGES`` with a glyph,
    not in the curated list."""
    font, curated = load_font(), set(candidate_codepoints())
    return tuple(c for a, b in _EXTRA_RANGES for c in range(a, b + 1)
                 if c not in curated and not _is_modifier(c) and unicodedata.name(chr(c), None)
                 and _has_glyph(font, c))


def augment_sprite(sprite: np.ndarray, mirror: bool, hue_deg: float) -> np.ndarray:
    """(h, w, 4) uint8 straight RGBA → the same, mirrored left ↔ right and/or hue-rotated (alpha untouched)."""
    out = sprite[:, ::-1] if mirror else sprite
    if hue_deg:
        hsv = np.asarray(Image.fromarray(np.ascontiguousarray(out[..., :3])).convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int32) + round(hue_deg / 360 * 256)) % 256
        rgb = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"))
        out = np.concatenate([rgb, out[..., 3:]], axis=2)
    return np.ascontiguousarray(out)


def composite_sprite(base: np.ndarray, worn: np.ndarray, scale: float, cx: float, cy: float) -> np.ndarray:
    """Two straight-RGBA sprites (h, w, 4) uint8 → one: ``worn`` resized so its longer side is ``scale`` × the
    base's longer side, centred at (``cx``·w, ``cy``·h) of the base, composited over it ("over"); the canvas
    grows to keep both whole and is cropped to the visible pixels."""
    from rdtf_engine.data.motion import _premul_resize

    h, w = base.shape[:2]
    k = scale * max(h, w) / max(worn.shape[:2])
    top = _premul_resize(worn, round(worn.shape[1] * k), round(worn.shape[0] * k)).convert("RGBA")
    x0, y0 = round(cx * w - top.width / 2), round(cy * h - top.height / 2)
    left, up = min(0, x0), min(0, y0)  # how far the worn emoji sticks out left / above
    canvas = Image.new("RGBA", (max(w, x0 + top.width) - left, max(h, y0 + top.height) - up), (0, 0, 0, 0))
    canvas.paste(Image.fromarray(base, "RGBA"), (-left, -up))
    layer = Image.new("RGBA", canvas.size, (0, 0, 0, 0))
    layer.paste(top, (x0 - left, y0 - up))
    canvas = Image.alpha_composite(canvas, layer)
    return np.asarray(canvas.crop(canvas.getchannel("A").getbbox())).copy()


def splice_sprite(first: np.ndarray, second: np.ndarray, axis: str, at: float) -> np.ndarray:
    """Two straight-RGBA sprites (h, w, 4) uint8 → one of ``first``'s size: ``first`` above (axis "h") or left of
    (axis "v") a straight cut at ``at`` × its height (width), ``second`` resized to the same box beyond it; cropped
    to the visible pixels. Two faces cut across give one's eyes over the other's mouth: a face no font has."""
    from rdtf_engine.data.motion import _premul_resize

    h, w = first.shape[:2]
    out = first.copy()
    other = np.asarray(_premul_resize(second, w, h).convert("RGBA"))
    if axis == "h":
        cut = round(at * h)
        out[cut:] = other[cut:]
    elif axis == "v":
        cut = round(at * w)
        out[:, cut:] = other[:, cut:]
    else:
        raise ValueError(f"splice axis must be 'h' or 'v', got {axis!r}")
    box = Image.fromarray(out[..., 3]).getbbox()
    return out if box is None else np.ascontiguousarray(out[box[1]:box[3], box[0]:box[2]])


@lru_cache(maxsize=2048)
def emoji_sprite(cp: int) -> np.ndarray:
    """Straight-alpha RGBA sprite (h, w, 4) uint8 of one emoji, cropped to its visible pixels (~136 × 128)."""
    font = load_font()
    pad = 16
    img = Image.new("RGBA", (FONT_SIZE * 3 // 2 + 2 * pad, FONT_SIZE * 3 // 2 + 2 * pad), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((pad, pad), chr(cp), font=font, embedded_color=True)
    box = img.getchannel("A").getbbox()
    if box is None:
        raise InputError(f"emoji U+{cp:04X} renders empty with this font")
    return np.asarray(img.crop(box)).copy()


_FACE_RANGES = [(0x1F600, 0x1F64F), (0x1F910, 0x1F92F), (0x1F970, 0x1F97A), (0x1F9D0, 0x1F9D0),
                (0x1FAE0, 0x1FAEF), (0x2639, 0x263A)]  # the smiley blocks (also cats, monkeys, hands: by name)


def _is_face(cp: int) -> bool:
    """A smiley ("nerd face", "grinning cat face"), not an animal's head ("giraffe face") or "clock face two"."""
    return any(a <= cp <= b for a, b in _FACE_RANGES) and "face" in emoji_name(cp).split()


def _article(name: str) -> str | None:
    if name.endswith("s") and not name.endswith("ss"):
        return None  # plural-looking names ("sparkles", "paw prints") take no article
    return "an" if name[0] in "aeiou" else "a"


class EmojiSource(ProceduralSource):
    """Index → (emoji, motion, parameters), deterministic from (seed, index); see the module docstring."""

    salt = 2
    default_clips = 20000
    default_holdout_clips = 1024
    motions = MOTIONS

    def __init__(self, size: int, num_clips: int, seed: int, *, holdout: bool = False, dev: bool = False) -> None:
        super().__init__(size, num_clips, seed)
        self.holdout = holdout or dev  # dev: like the held-out source, over never-trained extras instead
        self.name = "builtin:emoji-dev" if dev else "builtin:emoji-holdout" if holdout else "builtin:emoji"
        cps = available_codepoints()  # raises DependencyError without the font
        self.heldout_emoji = [c for c in cps if is_heldout_emoji(c)]
        self.train_emoji = [c for c in cps if not is_heldout_emoji(c)]
        self.heldout_pairs = [(c, m) for c in self.train_emoji for m in MOTIONS if is_heldout_pair(c, m)]
        self.dev_emoji = [c for c in extra_codepoints() if is_heldout_emoji(c)] if dev else []
        # identity is a nearest neighbour among every curated emoji (dev: and the dev emoji)
        self._identity_emoji = sorted(self.train_emoji + self.heldout_emoji + self.dev_emoji)
        if dev:
            if not self.dev_emoji:
                raise DependencyError(f"builtin:emoji-dev needs the full {FONT_PACKAGE} font (this one has none "
                                      "of the extra emoji)")
            self.heldout_emoji, self.heldout_pairs = self.dev_emoji, []
        # The extra pool trains only; its held-out-hashed emoji and pairs are used nowhere (module docstring).
        self.extra_emoji = [] if self.holdout else [c for c in extra_codepoints() if not is_heldout_emoji(c)]
        # Training: per motion, the train (and extra) emoji whose pair with that motion is not held out.
        self._by_motion = {m: [c for c in self.train_emoji if not is_heldout_pair(c, m)] for m in MOTIONS}
        self._extra_by_motion = {m: [c for c in self.extra_emoji if not is_heldout_pair(c, m)] for m in MOTIONS}
        # Splice partners of a smiley are smileys (the misses of never-seen emoji are mostly smileys: a new mix of
        # eyes and mouth is what the model must learn to copy rather than recall); of anything else, anything.
        self._faces = [c for c in self.train_emoji + self.extra_emoji if _is_face(c)]
        self._faces_by_motion = {m: [c for c in self._by_motion[m] + self._extra_by_motion[m] if _is_face(c)]
                                 for m in MOTIONS}

    def splits(self) -> dict[str, int]:
        return {"emoji": len(self.train_emoji) + len(self.heldout_emoji), "train_emoji": len(self.train_emoji),
                "heldout_emoji": len(self.heldout_emoji), "heldout_pairs": len(self.heldout_pairs),
                "extra_train_emoji": len(self.extra_emoji)}

    def plan(self, i: int) -> Plan:
        rng = self.rng(i)
        if self.holdout:
            if rng.uniform() < 0.5 or not self.heldout_pairs:
                cp = self.heldout_emoji[int(rng.integers(len(self.heldout_emoji)))]
                motion = MOTIONS[int(rng.integers(len(MOTIONS)))]
                split = "dev-emoji" if self.dev_emoji else "heldout-emoji"
            else:
                cp, motion = self.heldout_pairs[int(rng.integers(len(self.heldout_pairs)))]
                split = "heldout-pair"
        else:
            motion = MOTIONS[int(rng.choice(len(MOTIONS), p=MOTION_WEIGHTS))]
            extra = self._extra_by_motion[motion]
            allowed = extra if extra and rng.uniform() < EXTRA_P else self._by_motion[motion]
            cp, split = allowed[int(rng.integers(len(allowed)))], "train"
        num_frames = int(rng.integers(4, 25))
        spec = sample_motion(motion, num_frames, rng)
        durations = sample_durations(num_frames, rng)
        name = emoji_name(cp)
        phrase = motion_phrase(motion, rng)
        art = _article(name)
        choices = [f"{name} {phrase}", f"the {name} {phrase}"] + ([f"{art} {name} {phrase}"] if art else [])
        caption = choices[int(rng.integers(len(choices)))]
        frac = float(rng.uniform(0.56, 0.68))
        hexcp = f"{cp:x}"
        labels: dict[str, Any] = {"motion": motion, "emoji": hexcp, "object": hexcp, "name": name,
                                  "source": "emoji", "split": split, "index": i}
        if not self.holdout:  # drawn last: the held-out source's plans stay what they always were
            mirror, hue = bool(rng.uniform() < MIRROR_P), 0.0
            if rng.uniform() < HUE_SHIFT_P:
                hue = float(rng.uniform(40.0, 320.0))
                caption = f"a recoloured {name} {phrase}"
            labels.update(mirror=mirror, hue=round(hue, 1))
            if rng.uniform() < COMPOSITE_P:  # the worn emoji: any training emoji (the pair rule is the wearer's)
                pool = self.train_emoji + self.extra_emoji
                worn = pool[int(rng.integers(len(pool)))]
                labels.update(worn=f"{worn:x}", worn_scale=round(float(rng.uniform(*COMPOSITE_SCALE)), 3),
                              worn_at=[round(float(v), 3) for v in rng.uniform(0.15, 0.85, 2)])
                wname = emoji_name(worn)
                recol = "a recoloured " if hue else ""
                wart = _article(wname)
                caption = f"{recol}{name} with {wart + ' ' if wart else ''}{wname} {phrase}"
            elif rng.uniform() < SPLICE_P / (1 - COMPOSITE_P):  # drawn only here: composite plans stay as they were
                faces = self._faces_by_motion[motion]
                if faces and rng.uniform() < SPLICE_FACE_P:  # a smiley whose pair with this motion may train
                    cp = faces[int(rng.integers(len(faces)))]
                    name, hexcp = emoji_name(cp), f"{cp:x}"
                    labels.update(emoji=hexcp, object=hexcp, name=name)
                pool = self._faces if _is_face(cp) and self._faces else self.train_emoji + self.extra_emoji
                other = pool[int(rng.integers(len(pool)))]
                labels.update(spliced=f"{other:x}", splice_axis="hv"[int(rng.integers(2))],
                              splice_at=round(float(rng.uniform(*SPLICE_AT)), 3))
                caption = f"{'a recoloured ' if hue else ''}half {name}, half {emoji_name(other)} {phrase}"
        return Plan(hexcp, spec, durations, caption, frac, labels)

    def sprite(self, obj: str) -> np.ndarray:
        return emoji_sprite(int(obj, 16))

    def plan_sprite(self, p: Plan) -> np.ndarray:
        sprite = self.sprite(p.obj)
        if "worn" in p.labels:  # composed first, so mirror and hue apply to the whole new identity
            sprite = composite_sprite(sprite, self.sprite(p.labels["worn"]), float(p.labels["worn_scale"]),
                                      *map(float, p.labels["worn_at"]))
        elif "spliced" in p.labels:
            sprite = splice_sprite(sprite, self.sprite(p.labels["spliced"]), p.labels["splice_axis"],
                                   float(p.labels["splice_at"]))
        return augment_sprite(sprite, bool(p.labels.get("mirror")), float(p.labels.get("hue", 0.0)))

    def identity_sprites(self) -> dict[str, np.ndarray]:
        """All curated emoji (train and held out; dev: and the dev emoji): identity is a nearest neighbour."""
        return {f"{c:x}": emoji_sprite(c) for c in self._identity_emoji}

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["splits"] = self.splits()
        if not self.holdout:  # what a training run's clips were made of (the model card's data section)
            d["augmentation"] = {"mirror_p": MIRROR_P, "hue_shift_p": HUE_SHIFT_P, "composite_p": COMPOSITE_P,
                                 "splice_p": SPLICE_P, "splice_face_p": SPLICE_FACE_P,
                                 "extra_p": EXTRA_P}
        d["font"] = os.path.basename(find_font() or "")
        return d
