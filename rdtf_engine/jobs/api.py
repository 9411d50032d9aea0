"""Engine entry points used by the CLI and the worker (docs/protocol.md). Headless; raises RdtfError subclasses.

Entry points emit Progress/Metrics/Preview/Log events through ``on_event``; the caller (CLI or worker)
reports the final Finished/Failed, so each job ends with exactly one of them.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rdtf_engine import __version__
from rdtf_engine.core.errors import InputError, ModelError
from rdtf_engine.core.events import Log, Progress, never_stop, null_event
from rdtf_engine.core.requests import GenerateRequest, TrainRequest

DEMO_STEPS = 300
_PIPES: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


@dataclass
class GenerateResult:
    frames: np.ndarray  # (F, H, W, 4) uint8 straight RGBA
    durations_ms: list[int]
    recipe: dict[str, Any]
    out: str | None = None


def generate(req: GenerateRequest, on_event=null_event, should_stop=never_stop) -> GenerateResult:
    req.validate()
    model_dir = resolve_or_demo(req.model, on_event, should_stop)
    pipe = _pipeline(model_dir, req.device)
    seed = int(req.seed) if req.seed is not None else random.SystemRandom().randrange(2**31)
    cond = _condition_frames(req)
    frames = pipe(req.prompt, req.frames, req.size, req.steps, seed, req.guidance_text, req.guidance_image,
                  req.scheduler, cond, callback=lambda i, n: on_event(Progress("denoise", i, n)),
                  should_stop=should_stop, preview=_previewer(on_event) if req.preview_every > 0 else None,
                  preview_every=req.preview_every, strength=req.strength)
    durations = [int(req.duration_ms)] * req.frames
    recipe = {"prompt": req.prompt, "seed": seed, "model": pipe.card.name, "model_path": str(model_dir),
              "steps": req.steps, "scheduler": req.scheduler, "guidance_text": req.guidance_text,
              "guidance_image": req.guidance_image, "strength": req.strength, "frames": req.frames, "size": req.size,
              "locked": [i for i, f in enumerate(cond or []) if f is not None], "engine_version": __version__}
    out = None
    if req.out:
        from rdtf_engine.core.clip import Clip
        from rdtf_engine.platforms.export import write_clip

        write_clip(Clip(frames, durations, caption=req.prompt), req.out, recipe=recipe)
        out = str(req.out)
    return GenerateResult(frames, durations, recipe, out)


def _previewer(on_event):
    """Write each live-preview estimate as PNGs in a fresh temp folder and announce them (Preview event)."""
    import tempfile

    from PIL import Image

    from rdtf_engine.core.events import Preview
    from rdtf_engine.core.paths import user_cache_dir

    root = user_cache_dir() / "previews"
    root.mkdir(parents=True, exist_ok=True)
    import shutil

    for old in sorted(root.glob("gen-*"), key=lambda p: p.stat().st_mtime)[:-4]:  # keep the last few only
        shutil.rmtree(old, ignore_errors=True)
    folder = Path(tempfile.mkdtemp(prefix="gen-", dir=root))

    def emit(step: int, frames: np.ndarray) -> None:
        paths = []
        for i, fr in enumerate(frames):
            p = folder / f"step{step:04d}_{i:02d}.png"
            Image.fromarray(fr, "RGBA").save(p)
            paths.append(str(p))
        on_event(Preview(step, paths, "denoising estimate"))

    return emit


def train(req: TrainRequest, on_event=null_event, should_stop=never_stop) -> dict[str, Any]:
    from rdtf_engine.training.loop import train as _train

    return _train(req, on_event, should_stop)


def list_models() -> list[dict[str, Any]]:
    from rdtf_engine.model.store import list_models as _list

    return _list()


def device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "device": "cpu",
                            "name": "CPU", "threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(device="cuda", name=p.name, memory_mb=p.total_memory // 2**20, cuda_version=torch.version.cuda)
    return info


def resolve_or_demo(name: str, on_event=null_event, should_stop=never_stop) -> Path:
    """Resolve a model; for "default" with no shipped model, train (once, cached) a tiny demo model."""
    from rdtf_engine.core.paths import user_cache_dir
    from rdtf_engine.model.store import resolve_model

    try:
        return resolve_model(name)
    except ModelError:
        if name != "default":
            raise
    demo = user_cache_dir() / "demo-tiny"
    if (demo / "model" / "config.json").is_file() and (demo / "done.json").is_file():
        return demo / "model"
    on_event(Log("info", "no trained default model ships with this install yet: training a tiny demo model on "
                         "builtin:shapes first (about a minute on CPU, cached for next time)"))
    import shutil

    shutil.rmtree(demo, ignore_errors=True)
    train(TrainRequest.of(data="builtin:shapes", out=str(demo), preset="tiny", steps=DEMO_STEPS, size=64,
                          batch_size=8, lr=1e-3, ae_steps=300, checkpoint_every=DEMO_STEPS, max_clips=128),
          on_event, should_stop)
    return demo / "model"


def _pipeline(model_dir: Path, device: str):
    from rdtf_engine.diffusion.pipeline import StickerPipeline

    key = (str(Path(model_dir).resolve()), device)
    with _LOCK:
        if key not in _PIPES:
            _PIPES.clear()  # one model resident at a time: memory matters more than switch time
            _PIPES[key] = StickerPipeline.from_pretrained(model_dir, device)
        return _PIPES[key]


def _condition_frames(req: GenerateRequest) -> list[np.ndarray | None] | None:
    slots: list[str | None] = list(req.cond_frames) if req.cond_frames else [None] * req.frames
    if req.init_image:
        slots[0] = req.init_image
    if not any(slots):
        return None
    return [load_frame(p, req.size) if p else None for p in slots]


def load_frame(path: str, size: int) -> np.ndarray:
    """First frame of an image/animation file → (size, size, 4) uint8 RGBA, aspect kept, transparent padding."""
    from PIL import Image

    from rdtf_engine.formats.loader import load_clip

    if not Path(path).is_file():
        raise InputError(f"condition image not found: {path}")
    fr = load_clip(path).frames[0]
    img = Image.fromarray(fr, "RGBA")
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return np.asarray(canvas, dtype=np.uint8).copy()
