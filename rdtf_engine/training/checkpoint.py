"""Training checkpoints: safetensors only (no pickle, no torch.save), sharded ≤ 15 MB, written atomically.

Layout of ``run_dir/checkpoints/step_000100/``::

    model-00001.safetensors …   raw (non-EMA) DFGN weights
    ema-00001.safetensors …     EMA shadow weights (what the exported model uses)
    optim-00001.safetensors …   AdamW moments, flattened: "<param index>.<key>"
    state.json                  step, param groups, curriculum state, RNG states, loss history, config

``checkpoints/latest`` names the newest complete checkpoint; it is replaced (os.replace) only after the
checkpoint folder itself is complete, so a kill at any moment leaves the previous one intact.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from rdtf_engine.core.errors import CheckpointError, StorageError
from rdtf_engine.core.run_file import CHECKPOINTS, checkpoint_folders, checkpoint_name
from rdtf_engine.model.store import check_safetensors

MAX_SHARD_BYTES = 15 * 1000 * 1000
KEEP = 2


def save_tensors_sharded(tensors: dict[str, torch.Tensor], folder: Path, prefix: str) -> list[str]:
    """Write ``tensors`` as ``<prefix>-0000N.safetensors`` files of at most MAX_SHARD_BYTES each."""
    from safetensors.torch import save_file

    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > MAX_SHARD_BYTES:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    names = []
    for i, shard in enumerate(shards, 1):
        fname = f"{prefix}-{i:05d}.safetensors"
        save_file(shard, str(folder / fname))
        names.append(fname)
    return names


def load_tensors_sharded(folder: Path, prefix: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    files = sorted(folder.glob(f"{prefix}-*.safetensors"))
    if not files:
        raise CheckpointError(f"checkpoint {folder.name} has no {prefix} weights")
    for f in files:
        check_safetensors(f)
        out.update(load_file(str(f)))
    return out


def optimizer_to_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Flatten an optimizer state_dict into tensors + a JSON-able remainder (param groups, scalar state)."""
    sd = opt.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v) and k != "step":
                tensors[f"{idx}.{k}"] = v
            else:
                scalars.setdefault(str(idx), {})[k] = float(v.item() if torch.is_tensor(v) else v)
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_tensors(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        idx, k = name.split(".", 1)
        state.setdefault(int(idx), {})[k] = t
    for idx, sc in meta.get("scalars", {}).items():
        for k, v in sc.items():
            state.setdefault(int(idx), {})[k] = torch.tensor(v, dtype=torch.float32)
    try:
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise CheckpointError(f"optimizer state does not match this model: {exc}") from exc


def save_checkpoint(run_dir: Path, step: int, model: torch.nn.Module, ema_state: dict[str, torch.Tensor],
                    optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> Path:
    """Atomically write ``checkpoints/step_N`` and point ``latest`` at it; keep the newest KEEP."""
    ck_root = run_dir / CHECKPOINTS
    final = ck_root / checkpoint_name(step)
    try:
        ck_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=ck_root))
    except OSError as exc:
        raise StorageError(f"could not write checkpoint in {ck_root}: {exc.strerror or exc}") from None
    try:
        save_tensors_sharded(model.state_dict(), tmp, "model")
        save_tensors_sharded(ema_state, tmp, "ema")
        opt_tensors, opt_meta = optimizer_to_tensors(optimizer)
        save_tensors_sharded(opt_tensors, tmp, "optim")
        payload = dict(state, step=step, optimizer=opt_meta)
        (tmp / "state.json").write_text(json.dumps(payload), "utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        latest_tmp = ck_root / ".latest.tmp"
        latest_tmp.write_text(final.name, "utf-8")
        os.replace(latest_tmp, ck_root / "latest")
    except BaseException as exc:
        # a full disk, a kill signal turned exception or Ctrl-C: no half-written .tmp-* folder stays behind
        shutil.rmtree(tmp, ignore_errors=True)
        (ck_root / ".latest.tmp").unlink(missing_ok=True)
        if is_storage_failure(exc):
            raise StorageError(f"could not write checkpoint in {ck_root}: {_why(exc)}; the previous checkpoint "
                               "is kept") from None
        raise
    for p in checkpoint_folders(run_dir)[:-KEEP]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def is_storage_failure(exc: BaseException) -> bool:
    """An OSError, or safetensors' own error wrapping one ("Error while serializing: I/O error: …")."""
    return isinstance(exc, OSError) or (type(exc).__name__ == "SafetensorError" and "I/O error" in str(exc))


def _why(exc: BaseException) -> str:
    text = str(exc)
    if getattr(exc, "errno", None) == 28 or "os error 28" in text or "No space left" in text:
        return "the disk is full"
    return getattr(exc, "strerror", None) or text


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """→ (model tensors, ema tensors, optimizer tensors, state dict)."""
    try:
        state = json.loads((path / "state.json").read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} is corrupt (state.json: {exc})") from exc
    try:
        return (load_tensors_sharded(path, "model"), load_tensors_sharded(path, "ema"),
                load_tensors_sharded(path, "optim") if list(path.glob("optim-*.safetensors")) else {}, state)
    except Exception as exc:  # safetensors raises its own error types for corrupt payloads
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path} is corrupt: {exc}") from exc
