"""``builtin:mixed``: procedural emoji clips and artist-animated Fluent clips in one training source.

Clip ``i`` comes from Fluent with probability :data:`FLUENT_SHARE` (drawn from a generator seeded by
(seed, i), so the choice is fixed per index), else from ``builtin:emoji``; within the chosen part it is that
part's clip ``i mod len(part)``. The procedural clips keep teaching the motion words and the copy-the-given-frame
tricks (composites, splices, recolouring); the Fluent clips teach how an artist moves things. Both parts are
training splits only: the Fluent holdout shares ``builtin:emoji``'s held-out code points, so neither part ever
shows an emoji held out by the other.

Both parts caption the same code points with the same names ("camel"), one drawn flat (Noto), one in 3-D
(Fluent). Untagged, a fine-tune on the mix pulled every text → video sample towards the Fluent look (a 256 px
continuation of the shipped model: 0 of 29 seen emoji recognised as their Noto selves, 23 of 29 before), so
the Fluent part's captions end with :data:`FLUENT_STYLE`: plain prompts keep the flat style, prompts with the
tag reach the artist-drawn one (as a pack's style token reaches a pack).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rdtf_engine.core.clip import Clip
from rdtf_engine.data.clip_source import Plan, ProceduralSource

FLUENT_SHARE = 0.4  # of training clips; the rest are procedural emoji clips
FLUENT_STYLE = ", in 3d style"  # appended to the Fluent part's captions (module docstring)


class MixedSource(ProceduralSource):
    """Clip i → (part, index) by a seeded draw; planned from (seed, i) alone like its (procedural) parts, so
    training renders it in worker processes."""

    salt = 11

    def __init__(self, fluent: ProceduralSource, emoji: ProceduralSource, num_clips: int, seed: int,
                 share: float = FLUENT_SHARE) -> None:
        super().__init__(emoji.size, num_clips, seed)
        self.fluent, self.emoji, self.share = fluent, emoji, float(share)
        self.name, self.motions = "mixed", emoji.motions

    def route(self, i: int) -> tuple[ProceduralSource, int]:
        part = self.fluent if self.rng(i).uniform() < self.share else self.emoji
        return part, i % len(part)

    def plan(self, i: int) -> Plan:
        part, j = self.route(i)
        p = part.plan(j)
        return dataclasses.replace(p, caption=p.caption + FLUENT_STYLE) if part is self.fluent else p

    def sprite(self, obj: str) -> np.ndarray:
        return self.emoji.sprite(obj)

    def _get(self, i: int) -> Clip:
        part, j = self.route(i)
        clip = part[j]
        return dataclasses.replace(clip, caption=clip.caption + FLUENT_STYLE) if part is self.fluent else clip

    def identity_sprites(self) -> dict:
        return self.emoji.identity_sprites()  # the procedural part's bank (the Fluent one decodes every file)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        fluent = sum(self.route(i)[0] is self.fluent for i in range(len(self)))
        d.update(fluent_share=self.share, fluent_style=FLUENT_STYLE.strip(", "),
                 parts={"fluent": fluent, "emoji": len(self) - fluent},
                 fluent=self.fluent.describe() | {"clips": len(self.fluent)}, emoji=self.emoji.describe())
        return d
