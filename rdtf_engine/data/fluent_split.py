"""Which Fluent Emoji code points may be used for what.

Fluent Emoji (Microsoft, MIT licence) are named by code-point sequences ("1f44b-1f3fd" = waving hand, medium
skin tone). A sequence belongs to the group of its *base* code point (the first one), so every skin-tone,
gender or ZWJ variant of an emoji lands on the same side of every split.

- ``RESERVED_RANGES``: the face emoji kept for independent evaluation by people outside this project. No
  training, tuning, choice of settings or checkpoint may ever see them; sources drop them by code point.
- ``PACK_EVAL_SETS``: three whole themes held out of base-model training so that "train on my pack" can be
  measured on packs the base never saw (each 24 emoji, the size of a real sticker pack).
"""

from __future__ import annotations

RESERVED_RANGES: tuple[tuple[int, int], ...] = (
    (0x1F600, 0x1F64F),
    (0x1F910, 0x1F92F),
    (0x1F970, 0x1F97A),
)

PACK_EVAL_SETS: dict[str, tuple[int, ...]] = {
    "animals": tuple(range(0x1F980, 0x1F998)),  # crab … cricket
    "food": tuple(range(0x1F950, 0x1F968)),  # croissant … pie
    "fun": tuple(range(0x1F3A0, 0x1F3B8)),  # carousel horse … saxophone
}


def code_points(name: str) -> tuple[int, ...]:
    """"1f44b-1f3fd" (a file stem) → (0x1F44B, 0x1F3FD); raises ValueError on anything else."""
    parts = name.lower().split("-")
    if not parts or not all(p and len(p) <= 6 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise ValueError(f"not a code-point sequence: {name!r}")
    return tuple(int(p, 16) for p in parts)


def is_reserved(seq: tuple[int, ...]) -> bool:
    """True when any code point of the sequence is reserved (a variant of a reserved face is reserved too)."""
    return any(lo <= cp <= hi for cp in seq for lo, hi in RESERVED_RANGES)


def pack_eval_set(seq: tuple[int, ...]) -> str | None:
    """The pack-evaluation theme the sequence's base code point belongs to, if any."""
    for name, members in PACK_EVAL_SETS.items():
        if seq and seq[0] in members:
            return name
    return None
