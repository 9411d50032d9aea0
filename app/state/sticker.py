"""The sticker being edited and its persistent home in the gallery folder.

A sticker is a list of frames (PNG files written by the worker) with per-frame durations and lock flags, plus
the recipe that made it: the engine's ``GenerateRequest.recipe`` (every request field, the seed it resolved, the
model's name and weights hash, which frames were given). ``regenerate_request`` turns it back into the request. Edits never touch the PNGs: they rearrange references, so undo is cheap and exact.
Each gallery entry is a folder ``gallery/<id>/`` with ``sticker.json`` and the generations' frame folders.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from rdtf_engine.core.requests import LOCAL_FIELDS, MAX_FRAMES, GenerateRequest
from rdtf_engine.core.results import GeneratedSticker

__all__ = ["MAX_FRAMES", "Frame", "GalleryStore", "Sticker", "from_result", "regenerate_request"]
# Recipe keys starting with "_" are the app's own notes on a gallery entry; they never leave the gallery.
MODEL_REF = "_model_ref"  # what the app sent as ``model`` (a user model's folder): finds the model again


@dataclass(frozen=True)
class Frame:
    path: str
    duration_ms: int = 100
    locked: bool = False

    def with_(self, **kw: Any) -> Frame:
        return replace(self, **kw)


@dataclass
class Sticker:
    id: str
    frames: list[Frame]
    recipe: dict[str, Any] = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    @property
    def prompt(self) -> str:
        return str(self.recipe.get("prompt", ""))


def new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]


def from_result(entry_dir: Path, result: GeneratedSticker, request: GenerateRequest) -> Sticker:
    """A sticker from a worker ``generate`` result; the request fills what the engine's recipe left out."""
    recipe = {k: v for k, v in asdict(request).items() if k not in LOCAL_FIELDS}
    recipe.update(result.recipe)
    recipe[MODEL_REF] = request.model
    durations = result.durations_ms
    frames = [Frame(p, int(durations[i]) if i < len(durations) else int(request.duration_ms))
              for i, p in enumerate(result.frames)]
    return Sticker(entry_dir.name, frames, recipe)


def regenerate_request(sticker: Sticker, frames_dir: Path, **overrides: Any) -> GenerateRequest:
    """The request that makes this sticker again: every recipe field (seed, guidance, scheduler, strength...),
    the model it was made with, and its given frames taken from the sticker itself. ``overrides`` change some
    (a new seed, other frames or given frames for a partial redraw)."""
    r = sticker.recipe
    given = [int(i) for i in r.get("locked") or [] if 0 <= int(i) < len(sticker.frames)]
    cond: list[str | None] = []
    if given and len(sticker.frames) == int(r.get("frames", len(sticker.frames))):
        cond = [sticker.frames[i].path if i in given else None for i in range(len(sticker.frames))]
    base = {"model": r.get(MODEL_REF) or r.get("model", "default"), "cond_frames": cond,
            "frames_dir": str(frames_dir)}
    return GenerateRequest.from_recipe(r, **{**base, **overrides})


class GalleryStore:
    """Reads and writes gallery entries. Writes are write-then-rename so a crash never leaves half a JSON."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def new_entry_dir(self) -> Path:
        d = self.root / new_id()
        d.mkdir(parents=True)
        return d

    def save(self, sticker: Sticker) -> None:
        entry = self.root / sticker.id
        entry.mkdir(parents=True, exist_ok=True)
        data = {"id": sticker.id, "created": sticker.created, "recipe": sticker.recipe,
                "frames": [asdict(f) for f in sticker.frames]}
        tmp = entry / "sticker.json.part"
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, entry / "sticker.json")

    def load(self, sticker_id: str) -> Sticker | None:
        path = self.root / sticker_id / "sticker.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            frames = [Frame(str(f["path"]), int(f.get("duration_ms", 100)), bool(f.get("locked", False)))
                      for f in data.get("frames", [])]
            return Sticker(str(data.get("id", sticker_id)), frames, dict(data.get("recipe") or {}),
                           float(data.get("created", 0.0)))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is skipped, not fatal

    def all(self) -> list[Sticker]:
        entries = [self.load(p.parent.name) for p in self.root.glob("*/sticker.json")]
        return sorted((s for s in entries if s is not None), key=lambda s: s.created, reverse=True)

    def delete(self, sticker_id: str) -> None:
        target = (self.root / sticker_id).resolve()
        if target.parent == self.root.resolve():  # never delete outside the gallery
            shutil.rmtree(target, ignore_errors=True)
