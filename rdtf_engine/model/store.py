"""Model folders: save, validate (safetensors by content, never pickle), load, list.

A model folder is self-describing (configs travel with the weights; docs/architecture.md §6)::

    config.json            ModelCard: preset, size, frames, text encoder, diffusion schedule, latent scale, data
    unet/                  DFGN (diffusers save_pretrained: config.json + *.safetensors, sharded ≤ 15 MB)
    vae/                   RGBA AutoencoderKL (same)
    MODEL_CARD.md          optional human card
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rdtf_engine.core.config import ModelCard
from rdtf_engine.core.errors import ModelError
from rdtf_engine.core.model_folder import check_safetensors, validate_model_folder  # noqa: F401 (re-exported)
from rdtf_engine.core.paths import builtin_models_dir, user_models_dir, user_runs_dir

SHARD = "15MB"  # every weight file ≤ 16 MiB: the repo and the GPU machine's transfer limits


def save_model_folder(out: str | os.PathLike, unet, vae, card: ModelCard, dtype=None, readme: str = "") -> Path:
    """Write a complete model folder atomically (temp dir beside it, then rename over the old one)."""
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes 0700; a model folder is ordinary shared data
    try:
        card.created = card.created or time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for name, mod in (("unet", unet), ("vae", vae)):
            if dtype is not None and dtype != torch.float32:
                import copy

                mod = copy.deepcopy(mod).to(dtype)
            mod.save_pretrained(tmp / name, safe_serialization=True, max_shard_size=SHARD)
        (tmp / "config.json").write_text(json.dumps(card.to_dict(), indent=2), "utf-8")
        if readme:
            (tmp / "MODEL_CARD.md").write_text(readme, "utf-8")
        old = None
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
        os.replace(tmp, out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        from rdtf_engine.core.errors import StorageError

        raise StorageError(f"could not write model folder {out}: {exc}") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_model_folder(path: str | os.PathLike, device="cpu", dtype=None):
    """→ (unet, vae, card). Validates first; loads only safetensors; fp16 weights are upcast unless dtype given."""
    import torch
    from diffusers import AutoencoderKL

    from rdtf_engine.model.dfgn import DFGN

    card = validate_model_folder(path)
    root = Path(path)
    dtype = dtype or torch.float32
    try:
        unet = DFGN.from_pretrained(root / "unet", use_safetensors=True, torch_dtype=dtype)
        vae = AutoencoderKL.from_pretrained(root / "vae", use_safetensors=True, torch_dtype=dtype)
    except (OSError, ValueError, RuntimeError, TypeError, KeyError) as exc:
        raise ModelError(f"could not load model from {root}: {exc}") from exc
    return unet.to(device).eval(), vae.to(device).eval(), card


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


def list_models(extra_dirs: list[str] | tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Installed models: shipped ones first, then user models and finished/partial training runs.

    ``extra_dirs``: more folders holding model folders or training runs (the app keeps its own)."""
    out: list[dict[str, Any]] = []
    places = [(builtin_models_dir(), True), (user_models_dir(), False)]
    seen: set[str] = set()
    for base, builtin in places:
        if not base.is_dir():
            continue
        for d in sorted(base.iterdir()):
            if (d / "config.json").is_file() and d.name not in seen:
                seen.add(d.name)
                out.append(_describe(d, d.name, builtin))
    paths = {str(Path(m["path"]).resolve()) for m in out}
    for runs in [user_runs_dir(), *(Path(d) for d in extra_dirs)]:
        for d in sorted(runs.iterdir()) if runs.is_dir() else []:
            folder, run = (d, False) if (d / "config.json").is_file() else (d / "model", True)
            if (folder / "config.json").is_file() and str(folder.resolve()) not in paths:
                paths.add(str(folder.resolve()))
                out.append(_describe(folder, d.name, False, run=run))
    return out


def _describe(d: Path, name: str, builtin: bool, run: bool = False) -> dict[str, Any]:
    info: dict[str, Any] = {"name": name, "path": str(d), "builtin": builtin, "run": run}
    try:
        card = json.loads((d / "config.json").read_text("utf-8"))
        unet_cfg = json.loads((d / "unet" / "config.json").read_text("utf-8"))
        weights = sum(p.stat().st_size for p in d.rglob("*.safetensors"))
        info.update(
            preset=card.get("preset"), size=card.get("size"), num_frames=card.get("num_frames"),
            steps=card.get("steps"), data=card.get("data"), created=card.get("created"),
            temporal=card.get("temporal"), data_summary=card.get("data_summary", {}), bytes=weights,
            channels=unet_cfg.get("block_out_channels"),
        )
    except (OSError, json.JSONDecodeError) as exc:
        info["error"] = f"unreadable: {exc}"
    return info
