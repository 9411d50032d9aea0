"""Which Fluent Emoji code points may be used for what.

Fluent Emoji (Microsoft, MIT licence) are named by code-point sequences ("1f44b-1f3fd" = waving hand, medium
skin tone). A sequence belongs to the group of its *base* code point (the first one), so every skin-tone,
gender or ZWJ variant of an emoji lands on the same side of every split.

- ``RESERVED_RANGES``: the face emoji kept for independent evaluation by people outside this project. No
  training, tuning, choice of settings or checkpoint may ever see them; sources drop them by code point.
- ``PACK_EVAL_SETS``: three whole themes of animated emoji held out of base-model training, so that "train on
  my pack" can be measured on packs the base never saw.
"""

from __future__ import annotations

RESERVED_RANGES: tuple[tuple[int, int], ...] = (
    (0x1F600, 0x1F64F),
    (0x1F910, 0x1F92F),
    (0x1F970, 0x1F97A),
)

# Whole themes of *animated* Fluent emoji (most food and object emoji there are still images, so they would
# measure nothing about motion), 24 each, the size of a real sticker pack.
PACK_EVAL_SETS: dict[str, tuple[int, ...]] = {
    "animals": tuple(range(0x1F980, 0x1F998)),  # crab, lion face, scorpion … t-rex, cricket
    "vehicles": (  # rocket, helicopter, steam locomotive … motor boat, small airplane
        0x1F680, 0x1F681, 0x1F682, 0x1F688, 0x1F68B, 0x1F68C, 0x1F68E, 0x1F690, 0x1F691, 0x1F692, 0x1F693, 0x1F694,
        0x1F695, 0x1F696, 0x1F697, 0x1F698, 0x1F699, 0x1F69A, 0x1F69B, 0x1F69C, 0x1F69D, 0x1F69F, 0x1F6E5, 0x1F6E9,
    ),
    "sky": (  # cyclone, closed umbrella, rainbow … moons and suns with faces, clouds, fog, snowman, comet, snowflake
        0x1F300, 0x1F302, 0x1F308, 0x1F30A, 0x1F30C, 0x1F31A, 0x1F31B, 0x1F31C, 0x1F31D, 0x1F31E, 0x1F31F, 0x1F320,
        0x1F324, 0x1F325, 0x1F326, 0x1F327, 0x1F328, 0x1F329, 0x1F32A, 0x1F32B, 0x1F32C, 0x2603, 0x2604, 0x2744,
    ),
}


def code_points(name: str) -> tuple[int, ...]:
    """"1f44b-1f3fd" (a file stem) → (0x1F44B, 0x1F3FD); raises ValueError on anything else."""
    parts = name.lower().split("-")
    if not parts or not all(p and len(p) <= 6 and all(c in "0123456789abcdef" for c in p) for p in parts):
        raise ValueError(f"not a code-point sequence: {name!r}")
    return tuple(int(p, 16) for p in parts)


def is_code_point_name(name: str) -> bool:
    """True when ``name`` is a code-point sequence ("1f44b-1f3fd"), as :func:`code_points` reads it."""
    try:
        code_points(name)
    except ValueError:
        return False
    return True


def is_reserved(seq: tuple[int, ...]) -> bool:
    """True when any code point of the sequence is reserved (a variant of a reserved face is reserved too)."""
    return any(lo <= cp <= hi for cp in seq for lo, hi in RESERVED_RANGES)


def pack_eval_set(seq: tuple[int, ...]) -> str | None:
    """The pack-evaluation theme the sequence's base code point belongs to, if any."""
    for name, members in PACK_EVAL_SETS.items():
        if seq and seq[0] in members:
            return name
    return None
