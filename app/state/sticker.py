"""The sticker being edited and its persistent home in the gallery folder.

A sticker is a list of frames (PNG files written by the worker) with per-frame durations and lock flags, plus
the recipe that made it. Edits never touch the PNGs: they rearrange references, so undo is cheap and exact.
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

MAX_FRAMES = 24


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


def from_result(entry_dir: Path, result: dict[str, Any], request: dict[str, Any]) -> Sticker:
    """A sticker from a worker ``generate`` result; the request fills what the engine's recipe left out."""
    recipe = {k: v for k, v in request.items() if k not in ("frames_dir", "cond_frames", "init_image", "out")}
    recipe.update(result.get("recipe") or {})
    durations = list(result.get("durations_ms") or [])
    frames = [Frame(str(p), int(durations[i]) if i < len(durations) else int(request.get("duration_ms", 100)))
              for i, p in enumerate(result.get("frames") or [])]
    return Sticker(entry_dir.name, frames, recipe)


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
