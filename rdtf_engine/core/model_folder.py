"""Model folders without torch: validation (safetensors by content, never pickle) and the weights' identity.

Torch-free on purpose: the app validates a folder before importing it, and the engine before loading one, with
the same rules. A model folder::

    config.json            ModelCard
    unet/, vae/            diffusers save_pretrained: config.json + *.safetensors shards
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
from pathlib import Path
from typing import Any

from rdtf_engine.core.config import ModelCard
from rdtf_engine.core.errors import ModelError, UnsafeInputError

MAX_HEADER = 100 * 1024 * 1024
# File kinds that are pickle-based (can run code when loaded): a model folder holding one is refused outright.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz"})
_HASHES: dict[tuple, str] = {}
_HASH_LOCK = threading.Lock()


def check_safetensors(path: Path) -> dict[str, Any]:
    """Validate a safetensors file by its content: 8-byte little-endian header length, a JSON header whose
    tensor offsets exactly cover the rest of the file. Returns the header. Raises ModelError otherwise."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelError(f"{path.name}: too short to be a safetensors file")
            (n,) = struct.unpack("<Q", head)
            if n <= 1 or n > MAX_HEADER or 8 + n > size:
                raise ModelError(f"{path.name}: not a safetensors file (bad header length)")
            header = json.loads(f.read(n).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path.name}: not a readable safetensors file ({exc})") from exc
    if not isinstance(header, dict):
        raise ModelError(f"{path.name}: not a safetensors file (header is not a table)")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            lo, hi = info["data_offsets"]
            info["dtype"], info["shape"]
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{path.name}: malformed tensor entry {name!r}") from exc
        if not (0 <= lo <= hi):
            raise ModelError(f"{path.name}: bad offsets for {name!r}")
        end = max(end, hi)
    if 8 + n + end != size:
        raise ModelError(f"{path.name}: truncated or padded safetensors file ({size} bytes, expected {8 + n + end})")
    return header


def looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    # pickle protocol 2–5 starts with 0x80 <proto>; torch.save's zip container starts with "PK".
    return (len(head) >= 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5)) or head[:2] == b"PK"


def validate_model_folder(path: str | os.PathLike) -> ModelCard:
    """Check a model folder before anything is loaded from it; return its card."""
    root = Path(path)
    if not root.is_dir():
        raise ModelError(f"model folder not found: {root}")
    files = list(root.rglob("*"))
    links = [p.name for p in files if p.is_symlink()]
    if links:
        raise UnsafeInputError(f"{root} contains links ({', '.join(links[:3])}); model folders must hold real files")
    unsafe = sorted(p.name for p in files if p.suffix.lower() in PICKLE_SUFFIXES)
    if unsafe:
        raise UnsafeInputError(f"{', '.join(unsafe[:3])}: a pickle-based format that can run code when loaded; "
                               "only safetensors weights are accepted (convert the model first)")
    cfg = root / "config.json"
    if not cfg.is_file():
        raise ModelError(f"{root} is not a model folder (no config.json)")
    try:
        card = ModelCard.from_dict(json.loads(cfg.read_text("utf-8")))
    except (json.JSONDecodeError, TypeError, ValueError) as exc:
        raise ModelError(f"{root}/config.json is not a valid model config ({exc})") from exc
    for sub in ("unet", "vae"):
        d = root / sub
        if not (d / "config.json").is_file():
            raise ModelError(f"{root} is missing {sub}/config.json")
        weights = [p for p in d.iterdir() if p.is_file() and p.name != "config.json" and not p.name.endswith(".index.json")]
        if not weights:
            raise ModelError(f"{root}/{sub} has no weights")
        for p in weights:
            if p.is_symlink():
                raise UnsafeInputError(f"{p} is a symbolic link; model folders must hold real files")
            if looks_like_pickle(p):
                raise UnsafeInputError(f"{p.name} is a pickle/torch.save file; only safetensors weights are loaded")
            check_safetensors(p)
    return card


def weights_sha256(path: str | os.PathLike) -> str:
    """The model's identity: sha256 over its safetensors files (relative name + bytes, in sorted order).

    Cached per folder and keyed on every file's size and mtime, so a folder is read once per process unless its
    weights change. A renamed or copied model keeps its hash; retrained weights get a new one."""
    root = Path(path).resolve()
    files = sorted(p for p in root.rglob("*.safetensors") if p.is_file())
    key = (str(root), tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    with _HASH_LOCK:
        if key in _HASHES:
            return _HASHES[key]
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        with open(p, "rb") as f:
            for chunk in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(chunk)
    digest = h.hexdigest()
    with _HASH_LOCK:
        _HASHES[key] = digest
    return digest


def model_identity(path: str | os.PathLike) -> dict[str, Any]:
    """{"name": the card's name, "sha256": weights_sha256}: how a recipe names the model that made it."""
    card = validate_model_folder(path)
    return {"name": card.name, "sha256": weights_sha256(path)}
