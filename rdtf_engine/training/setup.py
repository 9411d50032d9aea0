"""Everything a training run needs before its first step: device, data source, autoencoder, latent cache.

Split out of train.py so the loop stays readable. ``prepare_data`` is deterministic for a given request, so a
resumed run rebuilds exactly the same cache and train/validation split.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rdtf_engine.core.atomic import write_text_atomic
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Log, Progress
from rdtf_engine.data.latent_cache import LatentCache, build_latent_cache, load_latent_cache, save_latent_cache

VAL_FRACTION = 0.05
MAX_VAL_CLIPS = 64
PERSIST_MIN_CLIPS = 1000


@dataclass
class TrainData:
    cache: LatentCache
    train_ids: list[int]
    val_ids: list[int]
    vae: Any
    scale: float
    summary: dict[str, Any]


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2))


def warmup_steps(steps: int, fine_tune: bool = False) -> int:
    """Linear LR warm-up length: 10 % of the run, at most 500 steps from scratch. A fine-tune (``--init-from``)
    starts from trained weights and only needs Adam's moment estimates to settle: at most 100 steps, so short
    continuation chunks (a few thousand steps per GPU lease) spend little of their time at a reduced LR."""
    return min(100 if fine_tune else 500, max(1, int(steps) // 10))


def split_ids(n: int) -> tuple[list[int], list[int]]:
    """Deterministic split: every 20th clip (up to 64) is held out for the validation denoising loss."""
    if n < 2:
        return list(range(n)), []
    step = max(2, round(1 / VAL_FRACTION))
    val = [i for i in range(n) if i % step == step - 1][:MAX_VAL_CLIPS] or [n - 1]
    vs = set(val)
    return [i for i in range(n) if i not in vs], val


def prepare_data(req, run_dir: Path, device: torch.device, on_event, should_stop) -> TrainData:
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.training.autoencoder import load_autoencoder, train_autoencoder

    source = open_source(req.data, req.size, num_clips=req.max_clips, seed=req.seed, training=True,
                         pack_windows=getattr(req, "pack_windows", "auto"), pack_style=getattr(req, "pack_style", None))
    n = len(source)
    if n == 0:
        raise InputError(f"no usable clips in {req.data}")
    on_event(Log("info", f"data {req.data}: {n} clips at {req.size} px"))
    ae_dir = run_dir / "autoencoder"
    if req.init_from and not req.autoencoder:  # a fine-tune keeps its model's latent space
        vae, scale = load_autoencoder(resolve_init(req.init_from), device)
        on_event(Log("info", f"using the autoencoder of {req.init_from} (latent scale {scale:.4f})"))
    elif req.autoencoder:
        vae, scale = load_autoencoder(req.autoencoder, device)
        on_event(Log("info", f"using autoencoder {req.autoencoder} (latent scale {scale:.4f})"))
    elif (ae_dir / "config.json").is_file():
        vae, scale = load_autoencoder(ae_dir, device)
    else:
        on_event(Log("info", f"training the RGBA autoencoder first ({req.ae_steps} steps)"))
        vae, scale = train_autoencoder(source, ae_dir, req.preset, req.ae_steps, device, seed=req.seed,
                                       mixed_precision=req.mixed_precision, on_event=on_event,
                                       should_stop=should_stop)
    vae = vae.eval().requires_grad_(False)
    train_ids, val_ids = split_ids(n)
    from rdtf_engine.data.sources import ProceduralSource, RenderPool

    t_prep, phases = time.time(), {}

    def progress(done: int, total: int) -> None:
        on_event(Progress("encode-data", done, total))
        rate = done / max(time.time() - t_prep, 1e-6)
        split = ", ".join(f"{k} {v:.0f} s" for k, v in phases.items())
        on_event(Log("info", f"encoded {done}/{total} clips ({rate:.1f} clips/s; {split})"))

    # Only big runs persist their cache (GB-sized for builtin:emoji); it makes resumed chunks start in seconds.
    persist = n >= PERSIST_MIN_CLIPS
    key = json.dumps([req.data, req.size, req.max_clips, req.seed, scale, n])
    cache = load_latent_cache(run_dir / "cache", key, device) if persist else None
    if cache is None:
        # Procedural clips render in worker processes (all cores), overlapped with encoding; user clips are
        # already decoded, and a few dozen clips are not worth forking for.
        parallel = isinstance(source, ProceduralSource) and n >= 64
        with RenderPool(source, 0 if parallel else 1) as pool:
            cache = build_latent_cache(source, vae, scale, device, progress=progress, should_stop=should_stop,
                                       pool=pool, phases=phases)
        if persist:
            save_latent_cache(cache, run_dir / "cache", key)
    else:
        on_event(Log("info", f"reusing the latent cache of {len(cache)} clips"))
    summary = {**(source.describe() if hasattr(source, "describe") else {}), **cache.summary()}
    return TrainData(cache, train_ids, val_ids, vae, scale, summary)


def init_model(name: str):
    """--init-from: a model folder path or an installed model's name → (its folder, its card), validated once."""
    from rdtf_engine.model.store import resolve_model, validate_model_folder

    folder = resolve_model(name)  # a model folder, a training run (its EMA model) or an installed model's name
    return folder, validate_model_folder(folder)


def resolve_init(name: str) -> Path:
    """--init-from → its folder (validated)."""
    return init_model(name)[0]


def base_reference_attention(req) -> str:
    """A fine-tune keeps its base model's reference attention mode (DFGN config; older models have none: "off")."""
    from rdtf_engine.core.config import config_reference_mode

    if not req.init_from:
        return "off"
    cfg = resolve_init(req.init_from) / "unet" / "config.json"
    return config_reference_mode(json.loads(cfg.read_text("utf-8")))


def init_weights(model, req, device) -> str:
    """Copy the DFGN weights of ``req.init_from`` into ``model`` (fp16 files are upcast); → a log line.

    Only a model of the same architecture can seed a run: a preset / temporal-layer / frame-count mismatch is a
    clear TrainingError, never a silently partial load."""
    from rdtf_engine.core.errors import TrainingError
    from rdtf_engine.model.store import load_model_folder

    folder = resolve_init(req.init_from)
    unet, _, card = load_model_folder(folder, device="cpu")
    mine, theirs = model.state_dict(), unet.state_dict()
    # Reference-attention blocks ("all") that the base predates keep their fresh init: zero output = identity.
    new = [k for k in mine if k not in theirs and ".ref_attn." in k]
    bad = [k for k in mine if k not in new and (k not in theirs or theirs[k].shape != mine[k].shape)]
    if bad or len(theirs) != len(mine) - len(new):
        raise TrainingError(f"--init-from {req.init_from}: its network ({card.preset}, {card.temporal}, "
                            f"{card.num_frames} frames) does not match this run ({req.preset}, {req.temporal}, "
                            f"{req.num_frames} frames); first mismatch: {(bad or ['extra keys'])[0]}")
    model.load_state_dict({k: v.to(device=device, dtype=mine[k].dtype) for k, v in theirs.items()}, strict=not new)
    grown = f"; {len(new)} new reference-attention tensors start as identity" if new else ""
    return f"initialised from {folder} ({card.name}, {card.base_steps + card.steps} steps){grown}"


def curriculum_span(req, base_steps: int) -> tuple[int, int]:
    """(step offset, horizon) of a run's curriculum. A run starts its own schedule at "generation 0.1" (docs/method.md
    §5); a continuation of a model on the same data (``continue_curriculum``) takes its place on the base's
    schedule instead, after ``base_steps``, so it does not spend its first half on the easy tasks again."""
    if req.continue_curriculum:
        return int(base_steps), int(base_steps) + int(req.steps)
    return 0, int(req.steps)


def base_of(req, run_dir: Path) -> tuple[str, int]:
    """(base model name, its total steps) recorded in the cards of a run started with --init-from."""
    if not req.init_from:
        return "", 0
    from rdtf_engine.model.store import validate_model_folder

    own = run_dir / "model"
    if req.resume and (own / "config.json").is_file():  # the base may be gone by now: the run remembers it
        card = validate_model_folder(own)
        return card.base_model, card.base_steps
    card = init_model(req.init_from)[1]
    return card.name, card.base_steps + card.steps
