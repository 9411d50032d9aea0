"""``builtin:mixed``: procedural emoji clips and artist-animated Fluent clips in one training source.

Clip ``i`` comes from Fluent with probability :data:`FLUENT_SHARE` (drawn from a generator seeded by
(seed, i), so the choice is fixed per index), else from ``builtin:emoji``; within the chosen part it is that
part's clip ``i mod len(part)``. The procedural clips keep teaching the motion words and the copy-the-given-frame
tricks (composites, splices, recolouring); the Fluent clips teach how an artist moves things. Both parts are
training splits only: the Fluent holdout shares ``builtin:emoji``'s held-out code points, so neither part ever
shows an emoji held out by the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rdtf_engine.core.clip import Clip
from rdtf_engine.data.clip_source import ClipSource

FLUENT_SHARE = 0.4  # of training clips; the rest are procedural emoji clips


class MixedSource(ClipSource):
    """Clip i → (part, index) by a seeded draw; deterministic like its parts."""

    salt = 11

    def __init__(self, fluent: ClipSource, emoji: ClipSource, num_clips: int, seed: int,
                 share: float = FLUENT_SHARE) -> None:
        self.fluent, self.emoji, self.share = fluent, emoji, float(share)
        self.num_clips, self.seed = int(num_clips), int(seed)
        self.name, self.size = "mixed", emoji.size
        self.motions = emoji.motions

    def __len__(self) -> int:
        return self.num_clips

    def route(self, i: int) -> tuple[ClipSource, int]:
        u = np.random.default_rng([self.seed, self.salt, i]).uniform()
        part = self.fluent if u < self.share else self.emoji
        return part, i % len(part)

    def _get(self, i: int) -> Clip:
        part, j = self.route(i)
        return part[j]

    def labels(self, i: int) -> dict[str, Any]:
        part, j = self.route(i)
        return part.labels(j)

    def summary_item(self, i: int) -> tuple[dict[str, Any], list[int]]:
        part, j = self.route(i)
        return part.summary_item(j)

    def identity_sprites(self) -> dict:
        return self.emoji.identity_sprites()  # the procedural part's bank (the Fluent one decodes every file)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        fluent = sum(self.route(i)[0] is self.fluent for i in range(len(self)))
        d.update(seed=self.seed, fluent_share=self.share, parts={"fluent": fluent, "emoji": len(self) - fluent},
                 fluent=self.fluent.describe() | {"clips": len(self.fluent)}, emoji=self.emoji.describe())
        return d
