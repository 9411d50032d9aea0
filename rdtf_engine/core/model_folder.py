"""Model folders without torch: the one validation entry point (rules in core/model_trust.py) and the weights'
identity.

Torch-free on purpose: the app validates a folder before importing it, and the engine before loading one, with
the same rules. A model folder::

    config.json            ModelCard
    unet/, vae/            diffusers save_pretrained: config.json + *.safetensors shards
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from rdtf_engine.core.config import ModelCard
from rdtf_engine.core.errors import ModelError, RdtfError
from rdtf_engine.core.model_trust import check_model_folder, check_safetensors  # noqa: F401 (re-exported)
from rdtf_engine.core.paths import builtin_models_dir, user_models_dir, user_runs_dir

_HASHES: dict[tuple, str] = {}
_HASH_LOCK = threading.Lock()


def validate_model_folder(path: str | os.PathLike) -> ModelCard:
    """Check everything the loader will read from a model folder (core/model_trust.py); return its card."""
    root = Path(path)
    try:
        card, _ = check_model_folder(root)
    except RdtfError as exc:
        raise in_folder(exc, root) from exc
    return card


def in_folder(exc: RdtfError, root: Path) -> RdtfError:
    """The same error type, its message prefixed with the folder (unless it names it already)."""
    text = str(exc)
    return exc if text.startswith(str(root)) else type(exc)(f"{root}: {text}")


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


def resolve_model(name: str) -> Path:
    """``default`` / a model name / a run dir / a model folder → the folder to load."""
    p = Path(name).expanduser()
    if p.is_dir():
        if (p / "config.json").is_file() and (p / "unet").is_dir():
            return p
        if (p / "model" / "config.json").is_file():  # a training run dir: its exported EMA model
            return p / "model"
        raise ModelError(f"{p} is neither a model folder nor a training run with a model")
    for base in (builtin_models_dir(), user_models_dir()):
        if (base / name / "config.json").is_file():
            return base / name
    run = user_runs_dir() / name / "model"
    if (run / "config.json").is_file():
        return run
    if name == "default":
        raise ModelError("no default model is installed (resources/models/default is missing)")
    raise ModelError(f"unknown model {name!r}; see `rdtf models`")
