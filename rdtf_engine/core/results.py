"""Typed job results: what an engine entry point returns, and what the worker's ``finished`` event carries.

``GenerateResult`` is the in-process result (frames as arrays). Across the process boundary the worker writes
the frames as PNG files and sends a ``GeneratedSticker`` (their paths) as the ``finished`` event's ``result``;
the app decodes it with ``GeneratedSticker.from_dict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass
class GenerateResult:
    frames: np.ndarray  # (F, H, W, 4) uint8 straight RGBA
    durations_ms: list[int]
    recipe: dict[str, Any]  # GenerateRequest.recipe: what a written sticker carries
    out: str | None = None


@dataclass
class GeneratedSticker:
    """A generate job's result on the wire: the frames as PNG paths (written by the worker)."""

    frames: list[str]
    durations_ms: list[int]
    recipe: dict[str, Any] = field(default_factory=dict)
    out: str | None = None
    size: list[int] = field(default_factory=list)  # [width, height]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GeneratedSticker:
        return cls(frames=[str(p) for p in data.get("frames") or []],
                   durations_ms=[int(d) for d in data.get("durations_ms") or []],
                   recipe=dict(data.get("recipe") or {}), out=data.get("out"),
                   size=[int(v) for v in data.get("size") or []])
