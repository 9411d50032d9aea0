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
from rdtf_engine.core.errors import ModelError, RdtfError
from rdtf_engine.core.model_folder import in_folder, resolve_model, validate_model_folder
from rdtf_engine.core.model_trust import CheckedModule, check_model_folder, check_module, check_safetensors
from rdtf_engine.core.paths import builtin_models_dir, user_models_dir, user_runs_dir
from rdtf_engine.core.requests import model_few_steps, model_guidance, model_image_guidance

__all__ = ["check_safetensors", "list_models", "load_model_folder", "load_module_folder", "resolve_model",
           "save_model_folder", "validate_model_folder"]

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
    """→ (unet, vae, card). Checks the folder first (core/model_trust.py), then builds each network from its checked
    config and fills it from the checked safetensors files only; fp16 weights are upcast unless dtype given."""
    import torch
    from diffusers import AutoencoderKL

    from rdtf_engine.model.dfgn import DFGN

    root = Path(path)
    try:
        card, modules = check_model_folder(root)
        unet = build_checked(DFGN, modules["unet"], "unet", dtype or torch.float32)
        vae = build_checked(AutoencoderKL, modules["vae"], "vae", dtype or torch.float32)
    except RdtfError as exc:
        raise in_folder(exc, root) from exc
    return unet.to(device).eval(), vae.to(device).eval(), card


def load_module_folder(path: str | os.PathLike, sub: str, dtype=None):
    """One checked ``unet``- or ``vae``-layout folder (config.json + safetensors) → the network, e.g. an
    autoencoder folder written by training. The folder gets the same checks as a model folder's ``sub``/."""
    import torch

    from rdtf_engine.core.model_trust import scan_folder

    folder = Path(path)
    try:
        if not folder.is_dir():
            raise ModelError("folder not found")
        scan_folder(folder)
        checked = check_module(folder, sub, sub)
        if sub == "vae":
            from diffusers import AutoencoderKL as cls
        else:
            from rdtf_engine.model.dfgn import DFGN as cls
        return build_checked(cls, checked, sub, dtype or torch.float32).eval()
    except RdtfError as exc:
        raise in_folder(exc, folder) from exc


def build_checked(cls, checked: CheckedModule, label: str, dtype):
    """A network of class ``cls`` from a checked config, filled from the checked shards (safetensors only).

    The network is built without memory (accelerate's meta device) and every parameter shape is compared with
    the safetensors headers before one byte of weights is read: a config that claims huge layers fails here
    instead of allocating them."""
    import torch
    from accelerate import init_empty_weights
    from safetensors.torch import load_file

    try:
        with init_empty_weights():
            model = cls.from_config(checked.config)
    except (RdtfError, ValueError, TypeError, KeyError, IndexError, ZeroDivisionError, RuntimeError) as exc:
        raise ModelError(f"{label}/config.json describes no buildable network ({exc})") from exc
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: shape for k, (_, shape) in checked.tensors.items()}
    if expected != found:
        raise ModelError(f"{label}: the weights do not match config.json ({_shape_diff(expected, found)})")
    state: dict[str, torch.Tensor] = {}
    for shard in checked.shards:
        try:
            state.update(load_file(str(shard)))
        except Exception as exc:  # safetensors raises its own SafetensorError; the file was checked above
            raise ModelError(f"{label}/{shard.name}: cannot be read ({exc})") from exc
    if not all(t.is_floating_point() for t in state.values()):
        raise ModelError(f"{label}: weights must be floating-point tensors")
    # Cast the loaded tensors, not the module: fp16 files are upcast before they become parameters.
    model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True, assign=True)
    if dtype != torch.float32:  # buffers the files do not hold follow the requested dtype too
        torch.nn.Module.to(model, dtype)
    return model


def _shape_diff(expected: dict[str, tuple], found: dict[str, tuple]) -> str:
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing:
        return f"{len(missing)} tensors missing, e.g. {missing[0]!r}"
    if extra:
        return f"{len(extra)} unexpected tensors, e.g. {extra[0]!r}"
    name = next(k for k in expected if expected[k] != found[k])
    return f"{name!r} is {list(found[name])}, the config makes {list(expected[name])}"


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
    """One listing entry. A folder that fails its checks is listed with ``error`` (one line) and no details, so
    one bad folder never hides the others."""
    info: dict[str, Any] = {"name": name, "path": str(d), "builtin": builtin, "run": run}
    try:
        card, modules = check_model_folder(d)
        weights = sum(p.stat().st_size for m in modules.values() for p in m.shards)
    except RdtfError as exc:
        info["error"] = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        return info
    except OSError as exc:
        info["error"] = f"unreadable: {exc.strerror or exc}"
        return info
    info.update(
        preset=card.preset, size=card.size, num_frames=card.num_frames, steps=card.steps, data=card.data,
        created=card.created, temporal=card.temporal, data_summary=card.data_summary, bytes=weights,
        channels=modules["unet"].config.get("block_out_channels"), guidance_text=model_guidance(card),
        guidance_image=model_image_guidance(card), style_tag=card.style_tag,
        # the few-step sampler's steps where the model has few-step deltas (0: it has none)
        few_step_steps=model_few_steps(card) if modules["unet"].config.get("few_step_delta_rank") else 0,
    )
    return info
