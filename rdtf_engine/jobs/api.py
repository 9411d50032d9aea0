"""Engine entry points used by the CLI and the worker (docs/protocol.md). Headless; raises RdtfError subclasses.

Entry points emit Progress/Metrics/Preview/Log events through ``on_event``; the caller (CLI or worker)
reports the final Finished/Failed, so each job ends with exactly one of them.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np

from rdtf_engine import __version__
from rdtf_engine.core.errors import InputError, ModelError
from rdtf_engine.core.events import Log, Progress, never_stop, null_event
from rdtf_engine.core.model_folder import weights_sha256
from rdtf_engine.core.requests import (
    DEFAULT_STRENGTH,
    DeviceRequest,
    GenerateRequest,
    ModelsRequest,
    PrepareRequest,
    TrainRequest,
    model_few_steps,
    model_guidance,
    model_image_guidance,
    sampling,
)
from rdtf_engine.core.results import GenerateResult

DEMO_STEPS = 300
_PIPES: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()

__all__ = ["GenerateResult", "device_info", "generate", "list_models", "load_frame", "prepare", "resolve_or_demo",
           "train"]


def generate(req: GenerateRequest, on_event=null_event, should_stop=never_stop) -> GenerateResult:
    """A validated request → frames (and the file ``req.out``); the recipe is the request, seed resolved."""
    from rdtf_engine.diffusion.pipeline import SampleParams

    model_dir = resolve_or_demo(req.model, on_event, should_stop)
    pipe = _pipeline(model_dir, req.device)
    sha = weights_sha256(model_dir)
    if req.model_sha256 and req.model_sha256 != sha:
        on_event(Log("warning", f"model {pipe.card.name!r} has other weights than the ones that made this "
                                "sticker: the result will differ"))
    seed = int(req.seed) if req.seed is not None else random.SystemRandom().randrange(2**31)
    cond = _condition_frames(req)
    # the recipe records the guidance, sampler and steps the sticker was drawn with: the model's own guidance and
    # the task's sampler when the request named none
    scheduler, steps = sampling(req.scheduler, req.steps, cond is not None,  # cond: None when no frame is given
                                model_few_steps(pipe.card))
    req = dataclasses.replace(req, guidance_text=model_guidance(pipe.card, req.guidance_text),
                              guidance_image=model_image_guidance(pipe.card, req.guidance_image), scheduler=scheduler,
                              steps=steps)
    params = SampleParams(req.prompt, int(req.frames), int(req.size), int(req.steps), seed, req.guidance_text,
                          req.guidance_image, req.strength, req.scheduler, cond or [], int(req.preview_every))
    pipe.step_fns.used.clear()  # (what this request's sampling asks for: _remember_graphs)
    frames = pipe(params, callback=lambda i, n: on_event(Progress("denoise", i, n)), should_stop=should_stop,
                  preview=_previewer(on_event) if req.preview_every > 0 else None)
    _remember_graphs(pipe, model_dir, req.frames, req.size, req.gives_frames)
    durations = [int(req.duration_ms)] * req.frames
    recipe = {**req.recipe(seed, pipe.card.name, sha, [i for i, f in enumerate(cond or []) if f is not None]),
              "engine_version": __version__}
    out = None
    if req.out:
        from rdtf_engine.core.clip import Clip
        from rdtf_engine.platforms.export import write_clip

        write_clip(Clip(frames, durations, caption=req.prompt), req.out, recipe=recipe)
        out = str(req.out)
    return GenerateResult(frames, durations, recipe, out)


PREPARE_STEPS = 1  # one step of each stage: a drafted sample's refinement runs at least one too (sampled_steps)


def prepare(req: PrepareRequest, on_event=null_event, should_stop=never_stop) -> dict[str, Any]:
    """Load ``req.model`` and build what drawing its stickers at these shapes runs on (``PrepareRequest``): a
    sample of one step a stage with the task's sampler and the model's guidance — the same guidance rows, windows
    and sizes as the sticker it stands for, so the same denoiser graphs — whose frames are dropped. → the model's
    name, the device, how many denoiser graphs the request asked for, and the seconds it took."""
    import time

    from rdtf_engine.diffusion.pipeline import SampleParams

    t0 = time.perf_counter()
    model_dir = resolve_or_demo(req.model, on_event, should_stop)
    pipe = _pipeline(model_dir, req.device)
    frames, size, given = int(req.frames), int(req.size), bool(req.given)
    scheduler = sampling(req.scheduler, None, given, model_few_steps(pipe.card))[0]
    # a given frame: a blank one in the first slot (what a start image is); its pixels do not change the graphs
    cond = [np.zeros((size, size, 4), np.uint8)] + [None] * (frames - 1) if given else []
    params = SampleParams("", frames, size, PREPARE_STEPS, 0, model_guidance(pipe.card),
                          model_image_guidance(pipe.card), DEFAULT_STRENGTH, scheduler, cond, 0)
    pipe.step_fns.used.clear()
    pipe(params, should_stop=should_stop)
    _remember_graphs(pipe, model_dir, frames, size, given)
    return {"model": pipe.card.name, "device": str(pipe.device), "graphs": len(pipe.step_fns.used),
            "seconds": round(time.perf_counter() - t0, 2)}


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


def list_models(req: ModelsRequest | None = None) -> list[dict[str, Any]]:
    """Installed models (shipped, user, training runs) plus those in ``req.dirs``; each with its weights'
    ``sha256``, the identity a sticker's recipe names it by."""
    from rdtf_engine.model.store import list_models as _list

    models = _list(extra_dirs=(req or ModelsRequest()).dirs)
    for m in models:
        if "error" not in m:
            m["sha256"] = weights_sha256(m["path"])
    return models


def device_info(req: DeviceRequest | None = None) -> dict[str, Any]:
    import torch

    from rdtf_engine.diffusion.cpu_choice import resolve_cpu_runtime
    from rdtf_engine.diffusion.cpu_runtime import resolve_cpu_precision

    info: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "device": "cpu",
                            "name": "CPU", "threads": torch.get_num_threads()}
    # what a CPU sample runs on (diffusion/cpu_runtime.py): the denoiser's runtime and the precision
    info["cpu_precision"] = resolve_cpu_precision()
    info["cpu_runtime"] = resolve_cpu_runtime(precision=info["cpu_precision"])
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


def _remember_graphs(pipe, model_dir: Path, frames: int, size: int, given: bool) -> None:
    """The OpenVINO graphs this request compiled, for the next launch's head start (``diffusion/graph_prefetch``)."""
    graphs = pipe.step_fns.compiled_graphs()
    if graphs:
        from rdtf_engine.diffusion import graph_prefetch

        key = graph_prefetch.request_key(model_dir, frames, size, given)
        graph_prefetch.remember(key, graph_prefetch.cache_dir(), graphs)


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

    p = Path(path)
    if not p.exists():
        raise InputError(f"start/condition image not found: {path} (an image, an animation or a folder of PNG frames)")
    if not (p.is_file() or p.is_dir()):
        raise InputError(f"start/condition image {path} is not a file or a folder of PNG frames")
    fr = load_clip(p, first_frames=1).frames[0]  # the first frame only: never decode a whole animation for it
    img = Image.fromarray(fr, "RGBA")
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    return np.asarray(canvas, dtype=np.uint8).copy()
