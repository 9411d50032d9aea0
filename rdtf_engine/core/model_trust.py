"""The trust boundary for model folders: every file the loader will read is checked by content first.

A model folder is untrusted input. Before any library sees it, this module decides *exactly* which files the
loader reads and checks each one:

* the folder holds no symbolic link and no pickle-format file anywhere (by suffix *and* by magic bytes: pickle
  protocol 2–5 starts ``0x80 <proto>``, ``torch.save`` writes a zip, ``PK``) → ``UnsafeInputError``;
* ``config.json``, ``unet/config.json``, ``vae/config.json`` parse into typed, bounded configs
  (config_schema.py) → ``ModelError`` naming the field;
* the weights of ``unet/`` and ``vae/`` are either ``diffusion_pytorch_model.safetensors`` or the shards that
  ``diffusion_pytorch_model.safetensors.index.json`` names. A shard name must be a plain ``*.safetensors``
  file name in the same folder (no separator, no ``..``, no link). Every shard's safetensors header is
  validated (below) and the index must map exactly the tensors the shards hold;
* a ``text_encoder/`` folder, if a model carries one, gets the same content checks.

A safetensors header is checked the way the format defines it: 8-byte little-endian length N, N bytes of UTF-8
JSON mapping names to ``{dtype, shape, data_offsets}``; each tensor's byte length is
``prod(shape) × itemsize(dtype)``; the tensors tile the data area ``[0, size − 8 − N)`` exactly: no gap, no
overlap, nothing out of range. Only then does store.py build the network (without memory) and compare every
parameter shape with these headers, and load the data through ``safetensors`` (never ``torch.load``).
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rdtf_engine.core.config import ModelCard
from rdtf_engine.core.errors import ModelError, UnsafeInputError
from rdtf_engine.core.model_schema import parse_card, parse_index, parse_module_config, read_json

MAX_HEADER = 100 * 1024 * 1024  # the safetensors library's own limit
MAX_TENSORS = 100_000
MAX_FOLDER_ENTRIES = 10_000  # a model folder holds a few dozen files; more is not a model folder
WEIGHTS = "diffusion_pytorch_model.safetensors"
INDEX = WEIGHTS + ".index.json"
# Formats whose loaders unpickle (torch.load, joblib, numpy allow_pickle): refused wherever they appear.
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz",
                             ".msgpack", ".h5"})
ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
            "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1}


@dataclass
class CheckedModule:
    """A validated ``unet/`` or ``vae/``: its checked config and the weight files the loader may read."""

    folder: Path
    config: dict[str, Any]
    shards: list[Path]
    tensors: dict[str, tuple[str, tuple[int, ...]]] = field(default_factory=dict)  # name → (dtype, shape)


def check_safetensors(path: Path) -> dict[str, Any]:
    """Validate a safetensors file by its content (module doc) → its header. Raises ModelError otherwise."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelError(f"{path.name}: too short to be a safetensors file")
            (n,) = struct.unpack("<Q", head)
            if n < 2 or n > MAX_HEADER or 8 + n > size:
                raise ModelError(f"{path.name}: not a safetensors file (header length {n} for {size} bytes)")
            raw = f.read(n)
    except OSError as exc:
        raise ModelError(f"{path.name}: cannot be read ({exc.strerror or exc})") from exc
    try:
        header = json.loads(raw.decode("utf-8"), parse_constant=_refuse)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelError(f"{path.name}: not a safetensors file (header is not UTF-8 JSON)") from exc
    if not isinstance(header, dict):
        raise ModelError(f"{path.name}: not a safetensors file (header is not a table)")
    _check_tensor_table(path.name, header, size - 8 - n)
    return header


def _refuse(name: str) -> Any:
    raise ValueError(name)


def _check_tensor_table(label: str, header: dict[str, Any], data_bytes: int) -> None:
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelError(f"{label}: __metadata__ must map names to strings")
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, lo, hi = _tensor_entry(label, name, info)
        if hi - lo != math.prod(shape) * ITEMSIZE[dtype]:
            raise ModelError(f"{label}: tensor {name!r} is {dtype} {list(shape)} but spans {hi - lo} bytes")
        spans.append((lo, hi, name))
    if len(spans) > MAX_TENSORS:
        raise ModelError(f"{label}: more than {MAX_TENSORS:,} tensors")
    end = 0
    for lo, hi, name in sorted(spans):
        if lo != end:
            what = "overlaps the previous tensor" if lo < end else "leaves a gap before it"
            raise ModelError(f"{label}: tensor {name!r} {what} (offset {lo}, expected {end})")
        end = hi
    if end != data_bytes:
        raise ModelError(f"{label}: truncated or padded safetensors file ({data_bytes} data bytes, tensors "
                         f"cover {end})")


def _tensor_entry(label: str, name: str, info: Any) -> tuple[str, tuple[int, ...], int, int]:
    try:
        dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
        lo, hi = offsets
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{label}: malformed tensor entry {name!r}") from exc
    if dtype not in ITEMSIZE:
        raise ModelError(f"{label}: tensor {name!r} has unknown dtype {str(dtype)[:20]!r}")
    ints = [lo, hi, *shape] if isinstance(shape, list) else None
    if ints is None or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in ints):
        raise ModelError(f"{label}: tensor {name!r} has a bad shape or offsets")
    if lo > hi:
        raise ModelError(f"{label}: tensor {name!r} ends before it starts")
    return dtype, tuple(shape), lo, hi


def looks_like_pickle(path: Path) -> bool:
    """A pickle stream (protocol 2–5) or a torch.save / numpy zip, by its first bytes."""
    with open(path, "rb") as f:
        head = f.read(4)
    return (len(head) >= 2 and head[0] == 0x80 and head[1] in (2, 3, 4, 5)) or head[:2] == b"PK"


def scan_folder(root: Path) -> None:
    """No symbolic link and no pickle-format file anywhere under ``root`` (UnsafeInputError otherwise)."""
    count = 0
    for p in root.rglob("*"):
        count += 1
        if count > MAX_FOLDER_ENTRIES:
            raise ModelError(f"{root.name}: more than {MAX_FOLDER_ENTRIES:,} files; not a model folder")
        rel = p.relative_to(root).as_posix()
        if p.is_symlink():
            raise UnsafeInputError(f"{rel} is a symbolic link; model folders must hold real files")
        if not p.is_file():
            continue
        if p.suffix.lower() in PICKLE_SUFFIXES:
            raise UnsafeInputError(f"{rel}: pickle-based weight formats can run code when loaded; only "
                                   "safetensors weights are accepted")
        try:
            pickled = looks_like_pickle(p)
        except OSError as exc:
            raise ModelError(f"{rel}: cannot be read ({exc.strerror or exc})") from exc
        if pickled:
            raise UnsafeInputError(f"{rel} is a pickle/torch.save file; only safetensors weights are loaded")


def _shard_path(folder: Path, name: str, label: str) -> Path:
    """A shard name from an index → its file; plain ``*.safetensors`` names in ``folder`` only."""
    bad = (not name or "/" in name or "\\" in name or "\x00" in name or name in (".", "..") or ":" in name
           or name.startswith("."))
    if bad:
        raise UnsafeInputError(f"{label} names {name[:60]!r}; shards must be plain file names in its folder")
    if not name.endswith(".safetensors"):
        raise UnsafeInputError(f"{label} names {name[:60]!r}; only .safetensors shards are loaded")
    path = folder / name
    if path.is_symlink():
        raise UnsafeInputError(f"{label} names {name!r}, a symbolic link")
    if not path.is_file():
        raise ModelError(f"{label} names {name!r}, which is missing")
    return path


def check_module(folder: Path, sub: str, label: str) -> CheckedModule:
    """``unet/`` or ``vae/`` (``label`` prefixes messages) → the config and the weight files to read."""
    if folder.is_symlink():
        raise UnsafeInputError(f"{label} is a symbolic link; model folders must hold real files")
    if not (folder / "config.json").is_file():
        raise ModelError(f"{label}/config.json is missing")
    config = parse_module_config(folder / "config.json", sub)
    index = folder / INDEX
    if index.is_file():
        weight_map = parse_index(index, f"{label}/{INDEX}")
        shards = [_shard_path(folder, n, f"{label}/{INDEX}") for n in dict.fromkeys(weight_map.values())]
    elif (folder / WEIGHTS).is_file():
        weight_map, shards = None, [folder / WEIGHTS]
    else:
        raise ModelError(f"{label} has no weights ({WEIGHTS} or its sharded index)")
    checked = CheckedModule(folder, config, shards)
    for shard in shards:
        try:
            header = check_safetensors(shard)
        except ModelError as exc:
            raise ModelError(f"{label}/{exc}") from exc
        for name, info in header.items():
            if name == "__metadata__":
                continue
            if name in checked.tensors or (weight_map is not None and weight_map.get(name) != shard.name):
                raise ModelError(f"{label}/{shard.name}: tensor {name!r} is not where the index puts it")
            checked.tensors[name] = (info["dtype"], tuple(info["shape"]))
    if weight_map is not None and set(weight_map) != set(checked.tensors):
        raise ModelError(f"{label}/{INDEX} lists tensors that no shard holds")
    return checked


def check_weights_folder(folder: Path, label: str) -> None:
    """A folder of a library model (e.g. a text encoder): no links or pickles; JSON valid; safetensors valid."""
    scan_folder(folder)
    for p in sorted(folder.rglob("*.json")):
        read_json(p, f"{label}/{p.relative_to(folder).as_posix()}", 64 << 20)
    files = sorted(folder.rglob("*.safetensors"))
    if not files:
        raise ModelError(f"{label} has no safetensors weights")
    for p in files:
        try:
            check_safetensors(p)
        except ModelError as exc:
            raise ModelError(f"{label}/{exc}") from exc


def check_model_folder(root: Path) -> tuple[ModelCard, dict[str, CheckedModule]]:
    """Everything the loader will read from a model folder, checked → (card, {"unet": …, "vae": …})."""
    if not root.is_dir():
        raise ModelError(f"model folder not found: {root}")
    if not (root / "config.json").is_file():
        raise ModelError(f"{root} is not a model folder (no config.json)")
    scan_folder(root)
    card = parse_card(root / "config.json")
    modules = {sub: check_module(root / sub, sub, sub) for sub in ("unet", "vae")}
    if (root / "text_encoder").is_dir():
        check_weights_folder(root / "text_encoder", "text_encoder")
    return card, modules
