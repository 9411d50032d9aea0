"""The unit of sticker data passed between importers, datasets, training and export.

A ``Clip`` is an animated sticker already decoded and composited: ``frames`` is uint8 RGBA of shape
(F, H, W, 4), straight (not premultiplied) alpha, ``durations_ms`` has F entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Clip:
    frames: np.ndarray  # (F, H, W, 4) uint8 RGBA
    durations_ms: list[int]
    caption: str = ""
    labels: dict[str, Any] = field(default_factory=dict)  # e.g. {"motion": "bounce", "emoji": "1f600"}

    def __post_init__(self) -> None:
        if self.frames.ndim != 4 or self.frames.shape[-1] != 4 or self.frames.dtype != np.uint8:
            raise ValueError(f"Clip.frames must be (F, H, W, 4) uint8, got {self.frames.shape} {self.frames.dtype}")
        if len(self.durations_ms) != self.frames.shape[0]:
            raise ValueError("Clip.durations_ms must have one entry per frame")

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])
