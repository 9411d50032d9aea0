"""Where Fluent files are read from: the fetched packages (``rdtf data fetch fluent``) or the compact shard cache
(``rdtf data pack-cache fluent``, format in ``fluent_cache.py``), and which split each file belongs to.

``builtin:fluent`` reads the fetched packages when present, else the shard cache: from ``RDTF_FLUENT_CACHE`` if
set, else ``<user cache>/data/fluent-packed``. The shard cache is held in memory (encoded; tens of MiB) and
decoded per clip through the safe decoders, like the fetched files.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from rdtf_engine.core.errors import DependencyError, InputError, UnsafeInputError
from rdtf_engine.core.paths import data_cache_dir
from rdtf_engine.data.emoji import is_heldout_emoji
from rdtf_engine.data.fluent_fetch import ASSETS, fluent_dir, read_manifest
from rdtf_engine.data.fluent_split import code_points, is_reserved, pack_eval_set

INDEX = "index.json"
MIN_FRAMES = 4  # files with fewer frames are stills (or nearly) and are not used
MAX_CACHE_BYTES = 4 * 2**30  # refuse to load anything larger into memory
NOT_FOUND = ("builtin:fluent needs the Fluent Emoji data: run `rdtf data fetch fluent` (downloads ≈ 730 MB "
             "with npm), or point RDTF_FLUENT_CACHE at a folder made by `rdtf data pack-cache fluent`")


@dataclass(frozen=True)
class FluentItem:
    stem: str  # file name without .webp: "1f44b-1f3fd"
    frames: int  # frames stored (a packed cache may keep every Nth)
    frame_ms: tuple[int, ...]  # per stored frame


class FluentStore(Protocol):
    """Where the files come from: the fetched packages or a packed shard cache."""

    kind: str
    items: dict[str, FluentItem]

    def read(self, stem: str) -> bytes: ...

    def describe(self) -> dict[str, Any]: ...


def split_of(stem: str) -> str | None:
    """"train", "holdout", "pack-<theme>", or None for a reserved (never used) sequence."""
    seq = code_points(stem)
    if is_reserved(seq):
        return None
    theme = pack_eval_set(seq)
    if theme:
        return f"pack-{theme}"
    return "holdout" if is_heldout_emoji(seq[0]) else "train"


def packed_cache_dir() -> Path:
    env = os.environ.get("RDTF_FLUENT_CACHE")
    return Path(env).expanduser() if env else data_cache_dir("fluent-packed")


def _frame_ms(value: Any, n: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, list) else (int(value),) * n


class FetchedStore:
    """The verified files of ``rdtf data fetch fluent`` (sha256 checked again on every read)."""

    kind = "fetched"

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder, self.manifest = folder, manifest
        self._files = manifest["files"]
        self.items = {s: FluentItem(s, int(f["frames"]), _frame_ms(f.get("frame_ms", 0), int(f["frames"])))
                      for s, f in self._files.items()}

    @classmethod
    def open(cls, folder: Path | None = None) -> FetchedStore | None:
        folder = Path(folder) if folder is not None else fluent_dir()
        manifest = read_manifest(folder)
        return None if manifest is None else cls(folder, manifest)

    def read(self, stem: str) -> bytes:
        meta = self._files[stem]
        try:
            data = (self.folder / ASSETS / f"{stem}.webp").read_bytes()
        except OSError as exc:
            raise InputError(f"Fluent file {stem}.webp is missing ({exc.strerror}); run `rdtf data fetch fluent` "
                             "again") from None
        if hashlib.sha256(data).hexdigest() != meta["sha256"]:
            raise UnsafeInputError(f"Fluent file {stem}.webp changed since it was verified; fetch again")
        return data

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "packages": {p["name"]: p["version"] for p in self.manifest["packages"]}}


class PackedStore:
    """The shard cache, read into memory with webdataset (one pass per shard)."""

    kind = "packed"

    def __init__(self, folder: Path, index: dict[str, Any]) -> None:
        import webdataset as wds

        self.folder, self.index = folder, index
        self._data: dict[str, bytes] = {}
        self.items: dict[str, FluentItem] = {}
        paths = []
        for shard in index["shards"]:
            path = folder / Path(shard["name"]).name
            if hashlib.sha256(path.read_bytes()).hexdigest() != shard["sha256"]:
                raise UnsafeInputError(f"Fluent cache shard {path.name} is damaged (sha256 mismatch)")
            paths.append(str(path))
        # No node or worker splitting: every process of a run reads the whole (small) cache.
        for sample in wds.WebDataset(paths, shardshuffle=False, nodesplitter=None, workersplitter=None,
                                     empty_check=False):
            stem, meta = sample["__key__"], json.loads(sample["json"])
            if split_of(stem) is None:  # never happens with our writer; refuse reserved faces regardless
                continue
            self._data[stem] = sample["webp"]
            self.items[stem] = FluentItem(stem, int(meta["frames"]), _frame_ms(meta["frame_ms"], meta["frames"]))

    @classmethod
    def open(cls, folder: Path) -> PackedStore | None:
        try:
            index = json.loads((Path(folder) / INDEX).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(index, dict) or index.get("dataset") != "fluent-packed":
            return None
        if sum(int(s.get("bytes", 0)) for s in index.get("shards", [])) > MAX_CACHE_BYTES:
            raise InputError("the Fluent cache is larger than this reader holds in memory")
        return cls(Path(folder), index)

    def read(self, stem: str) -> bytes:
        return self._data[stem]

    def describe(self) -> dict[str, Any]:
        keep = ("size", "every", "quality", "packages")
        return {"kind": self.kind, **{k: self.index.get(k) for k in keep}}


def find_store(kind: str = "auto") -> FluentStore:
    """The fetched packages if present, else the packed cache (RDTF_FLUENT_CACHE or the user cache)."""
    if kind in ("auto", "fetched"):
        store = FetchedStore.open()
        if store is not None:
            return store
    if kind in ("auto", "packed"):
        store = PackedStore.open(packed_cache_dir())
        if store is not None:
            return store
    raise DependencyError(NOT_FOUND)
