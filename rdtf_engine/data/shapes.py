"""``builtin:shapes``: coloured geometric shapes animated by the motion programs. Needs no font.

Small and fast: the data of the engine tests and of the CI's first run. Each shape carries a white
highlight dot off its centre so that rotations of symmetric shapes (a spinning circle) are visible.
Captions: "a red circle bouncing", "the blue star spinning around"...
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from rdtf_engine.data.clip_source import Plan, ProceduralSource
from rdtf_engine.data.motion import MOTION_WEIGHTS, MOTIONS, motion_phrase, sample_durations, sample_motion

SHAPES = ("circle", "square", "triangle", "star", "heart")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (229, 57, 53),
    "orange": (251, 140, 0),
    "yellow": (253, 216, 53),
    "green": (67, 160, 71),
    "blue": (30, 136, 229),
    "purple": (142, 36, 170),
    "pink": (236, 64, 122),
    "black": (33, 33, 33),
}
_SPRITE = 128  # sprite side in pixels (drawn at 4× and downsampled for smooth edges)


def _outline(shape: str, n: int) -> list[tuple[float, float]]:
    """Polygon of the shape inside an n × n box (y down)."""
    c, r = n / 2, n * 0.46
    if shape == "square":
        s = r * 0.9
        return [(c - s, c - s), (c + s, c - s), (c + s, c + s), (c - s, c + s)]
    if shape == "triangle":
        return [(c, c - r), (c + r * 0.95, c + r * 0.75), (c - r * 0.95, c + r * 0.75)]
    if shape == "star":
        ang = -np.pi / 2 + np.arange(10) * np.pi / 5
        rad = np.where(np.arange(10) % 2 == 0, r, r * 0.45)
        return list(zip(c + rad * np.cos(ang), c + 0.08 * r + rad * np.sin(ang)))
    if shape == "heart":
        th = np.linspace(0, 2 * np.pi, 200, endpoint=False)
        x = 16 * np.sin(th) ** 3
        y = -(13 * np.cos(th) - 5 * np.cos(2 * th) - 2 * np.cos(3 * th) - np.cos(4 * th))
        k = r / 17
        return list(zip(c + k * x, c + k * (y + 1.5)))
    th = np.linspace(0, 2 * np.pi, 128, endpoint=False)  # circle
    return list(zip(c + r * np.cos(th), c + r * np.sin(th)))


@cache
def shape_sprite(shape: str, colour: str) -> np.ndarray:
    """Straight-alpha RGBA sprite (128, 128, 4) uint8 of a shape with a darker outline and a highlight."""
    ss = 4
    n = _SPRITE * ss
    img = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    rgb = COLOURS[colour]
    edge = tuple(int(v * 0.6) for v in rgb)
    d.polygon(_outline(shape, n), fill=rgb + (255,), outline=edge + (255,), width=3 * ss)
    hx, hy, hr = n * 0.36, n * 0.4, n * 0.07  # highlight dot up-left of centre: breaks rotational symmetry
    d.ellipse([hx - hr, hy - hr, hx + hr, hy + hr], fill=(255, 255, 255, 255))
    small = img.convert("RGBa").resize((_SPRITE, _SPRITE), Image.LANCZOS).convert("RGBA")
    return np.asarray(small).copy()


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


class ShapesSource(ProceduralSource):
    name = "builtin:shapes"
    salt = 1
    default_clips = 256
    motions = MOTIONS

    def plan(self, i: int) -> Plan:
        rng = self.rng(i)
        shape = str(rng.choice(SHAPES))
        colour = str(rng.choice(list(COLOURS)))
        motion = MOTIONS[int(rng.choice(len(MOTIONS), p=MOTION_WEIGHTS))]  # combos half as often
        num_frames = int(rng.integers(4, 25))
        spec = sample_motion(motion, num_frames, rng)
        durations = sample_durations(num_frames, rng)
        obj = f"{colour} {shape}"
        phrase = motion_phrase(motion, rng)
        template = int(rng.integers(3))
        caption = [f"{_article(colour)} {obj} {phrase}", f"{obj} {phrase}", f"the {obj} {phrase}"][template]
        labels: dict[str, Any] = {"motion": motion, "object": obj, "shape": shape, "colour": colour,
                                  "source": "shapes", "index": i}
        return Plan(obj, spec, durations, caption, float(rng.uniform(0.56, 0.68)), labels)

    def sprite(self, obj: str) -> np.ndarray:
        colour, shape = obj.split(" ")
        return shape_sprite(shape, colour)

    def identity_sprites(self) -> dict[str, np.ndarray]:
        return {f"{c} {s}": shape_sprite(s, c) for s in SHAPES for c in COLOURS}
