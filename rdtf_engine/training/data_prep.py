"""Data preparation before the first step: the source, the RGBA autoencoder and the latent cache.

``prepare_data`` is deterministic for a given request, so a resumed run rebuilds exactly the same cache and
train/validation split.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rdtf_engine.core.config import DECODER_TIME_SHARE
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Log, Progress
from rdtf_engine.core.requests import TrainRequest
from rdtf_engine.data.latent_cache import (
    LatentCache,
    build_latent_cache,
    load_latent_cache,
    save_latent_cache,
    split_ids,
)
from rdtf_engine.data.latent_shards import shards_folder
from rdtf_engine.training.finetune import resolve_init

PERSIST_MIN_CLIPS = 1000


@dataclass
class TrainData:
    cache: LatentCache  # the clips the steps draw from (streamed data: the current window)
    train_ids: list[int]
    val_ids: list[int]
    vae: Any
    scale: float
    summary: dict[str, Any]
    val_cache: LatentCache | None = None  # held-out clips kept apart from ``cache`` (streamed data); None: in it

    @property
    def heldout(self) -> tuple[LatentCache, list[int]]:
        """(cache, ids) of the held-out clips: the validation loss and the preview sheets read these."""
        return (self.val_cache if self.val_cache is not None else self.cache), self.val_ids

    def at_step(self, step: int) -> None:
        """Called before every training step: all clips are in memory, nothing to do."""


class TwoSizeTrainData(TrainData):
    """The same clips at the model's size and at its draft size (``ModelConfig.draft_size``), split alike: every
    ``every``-th step draws its batch from the draft-size cache, the others from the model-size one, so one network
    learns the layout on the small latent grid and the detail on the large one. The held-out clips stay at the
    model's size."""

    def __init__(self, main: TrainData, drafts: LatentCache, every: int = 2) -> None:
        super().__init__(main.cache, main.train_ids, main.val_ids, main.vae, main.scale,
                         {**main.summary, "draft_frames": drafts.summary().get("frames", 0)}, val_cache=main.cache)
        self.caches, self.every = (main.cache, drafts), int(every)

    def at_step(self, step: int) -> None:
        self.cache = self.caches[int(int(step) % self.every == self.every - 1)]


class StreamedTrainData(TrainData):
    """Training data read from a shard folder a window at a time (``data/latent_shards.py``): ``cache`` is the
    window of the current step, the next window is read by a background thread while this one trains."""

    def __init__(self, shards, seed: int, batch_size: int, device: torch.device, rank: int, world: int,
                 vae: Any, scale: float, summary: dict[str, Any]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        val = shards.held_out(device)
        super().__init__(val or LatentCache(torch.zeros(0), [], [], [], []), [], list(range(len(val))) if val else [],
                         vae, scale, summary, val_cache=val)
        self.shards, self.seed, self.device, self.rank, self.world = shards, seed, device, rank, world
        self.steps_per_window = shards.steps_per_window(batch_size, world)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="rdtf-shards")
        self._window, self._next = -1, None

    def _read(self, window: int):
        return self.shards.load(self.shards.window_shards(window, self.seed, self.rank, self.world))  # host memory

    def at_step(self, step: int) -> None:
        window = int(step) // self.steps_per_window
        if window == self._window:
            return
        ready = self._next[1].result() if self._next is not None and self._next[0] == window else self._read(window)
        self.cache = ready.to(self.device)
        self.train_ids, self._window = list(range(len(self.cache))), window
        self._next = (window + 1, self._pool.submit(self._read, window + 1))


def training_source(req: TrainRequest, size: int):
    """The run's data at ``size`` px, as training reads it (same clips and order at every size)."""
    from rdtf_engine.data.sources import open_source

    return open_source(req.train.data, size, num_clips=req.train.max_clips, seed=req.train.seed, training=True,
                       pack_windows=req.train.pack_windows, pack_style=req.train.pack_style)


def prepare_data(req: TrainRequest, run_dir: Path, device: torch.device, on_event, should_stop) -> TrainData:
    from rdtf_engine.training.autoencoder import load_autoencoder, train_autoencoder

    if shards_folder(req.train.data) is not None:
        return prepare_stream(req, device, on_event)
    size = native = int(req.model.size)
    style = req.train.trainable == "style"
    # the style deltas act on the draft size alone; a draft-only fine-tune trains the draft network alone (its
    # size deltas, frozen, refine at the native size): either way every step is at the draft size
    if style or req.train.draft_only:
        if not req.model.draft_size:
            what = "style deltas" if style else "draft network (draft_only)"
            raise InputError(f"training a model's {what} at its draft size: the model has no draft size")
        size = int(req.model.draft_size)
    source = training_source(req, size)
    n = len(source)
    if n == 0:
        raise InputError(f"no usable clips in {req.train.data}")
    on_event(Log("info", f"data {req.train.data}: {n} clips at {size} px"))
    ae_dir = run_dir / "autoencoder"
    if req.init_from and not req.train.autoencoder:  # a fine-tune keeps its model's latent space
        vae, scale = load_autoencoder(resolve_init(req.init_from), device)
        on_event(Log("info", f"using the autoencoder of {req.init_from} (latent scale {scale:.4f})"))
    elif req.train.autoencoder:
        vae, scale = load_autoencoder(req.train.autoencoder, device)
        on_event(Log("info", f"using autoencoder {req.train.autoencoder} (latent scale {scale:.4f})"))
    elif (ae_dir / "config.json").is_file():
        vae, scale = load_autoencoder(ae_dir, device)
    else:
        on_event(Log("info", f"training the RGBA autoencoder first ({req.train.ae_steps} steps)"))
        vae, scale = train_autoencoder(source, ae_dir, req.model.preset, req.train.ae_steps, device, seed=req.train.seed,
                                       mixed_precision=req.run.mixed_precision, on_event=on_event,
                                       should_stop=should_stop)
    if req.train.decoder_steps and (req.init_from or req.train.autoencoder):
        # the decoder serves the native size (and the draft size too, tuned_decoder): it learns from both
        frames = training_source(req, native) if native != size else source
        vae = tuned_decoder(req, frames, vae, ae_dir, device, on_event, should_stop)
    vae = vae.eval().requires_grad_(False)
    train_ids, val_ids = split_ids(n)
    cache = encoded_clips(req, source, size, vae, scale, device, run_dir / "cache", on_event, should_stop)
    summary = {**(source.describe() if hasattr(source, "describe") else {}), **cache.summary()}
    if style:
        tag = req.train.style_tag.strip(" ,")
        cache.captions = styled_captions(cache.captions, tag)
        on_event(Log("info", f"only the style deltas train, at the draft size {size} px, on captions ending \", {tag}\""))
        return TrainData(cache, train_ids, val_ids, vae, scale, {**summary, "style_tag": tag})
    data = TrainData(cache, train_ids, val_ids, vae, scale, summary)
    draft = int(req.model.draft_size or 0)
    if req.train.draft_only:
        on_event(Log("info", f"every step at the draft size {draft} px, where the model lays its stickers out; its "
                             f"size deltas stay the base's and refine them at {native} px"))
        return data
    if draft and req.train.trainable == "deltas":  # at the draft size the deltas are off: nothing there trains
        on_event(Log("info", f"only the size deltas train: no steps at the draft size {draft} px, where the "
                             "network stays its base's"))
        return data
    if not draft:
        return data
    drafts = training_source(req, draft)
    if len(drafts) != n:  # the two caches must hold the same clips in the same order (one train/held-out split)
        raise InputError(f"{req.train.data} gives {len(drafts)} clips at {draft} px but {n} at {req.model.size} px")
    every = int(req.train.draft_every)
    on_event(Log("info", f"the same {n} clips at the draft size {draft} px (one step in {every} trains on them)"))
    return TwoSizeTrainData(data, encoded_clips(req, drafts, draft, vae, scale, device, run_dir / "cache-draft",
                                                on_event, should_stop), every)


def styled_captions(captions: list[str], tag: str) -> list[str]:
    """Every caption ending ", <tag>" (one already ending with the tag, case aside, is kept as it is): the prompts
    that switch the style deltas on are what they learn from."""
    tag = tag.strip(" ,")
    return [c if c.lower().rstrip(" .").endswith(tag.lower()) else f"{c.rstrip(' ,')}, {tag}" for c in captions]


def encoded_clips(req: TrainRequest, source, size: int, vae, scale: float, device: torch.device, folder: Path,
                  on_event, should_stop) -> LatentCache:
    """``source``'s clips at ``size`` px → their latent cache (built, or for a big run's resume read back from
    ``folder``)."""
    from rdtf_engine.data.sources import RenderPool

    n = len(source)
    t_prep, phases = time.time(), {}

    def progress(done: int, total: int) -> None:
        on_event(Progress("encode-data", done, total))
        rate = done / max(time.time() - t_prep, 1e-6)
        split = ", ".join(f"{k} {v:.0f} s" for k, v in phases.items())
        on_event(Log("info", f"encoded {done}/{total} clips ({rate:.1f} clips/s; {split})"))

    # Only big runs persist their cache (GB-sized for builtin:emoji); it makes resumed chunks start in seconds.
    persist = n >= PERSIST_MIN_CLIPS
    key = json.dumps([req.train.data, size, req.train.max_clips, req.train.seed, scale, n])
    cache = load_latent_cache(folder, key, device) if persist else None
    if cache is not None:
        on_event(Log("info", f"reusing the latent cache of {len(cache)} clips"))
        return cache
    # Procedural clips render in worker processes (all cores), overlapped with encoding.
    with RenderPool.for_source(source) as pool:
        cache = build_latent_cache(source, vae, scale, device, progress=progress, should_stop=should_stop,
                                   pool=pool, phases=phases)
    if persist:
        save_latent_cache(cache, folder, key)
    return cache


def prepare_stream(req: TrainRequest, device: torch.device, on_event) -> StreamedTrainData:
    """``--data shards:DIR``: clips encoded ahead (``rdtf data encode-shards``) in the latent space of this run's
    autoencoder (its ``init_from``'s or ``--autoencoder``), streamed a window of shards at a time."""
    import os

    from rdtf_engine.data.latent_shards import LatentShards
    from rdtf_engine.training.autoencoder import load_autoencoder

    shards = LatentShards(shards_folder(req.train.data))
    if not (req.init_from or req.train.autoencoder):
        raise InputError("training on encoded shards needs the autoencoder they were encoded with: give "
                         "--init-from MODEL or --autoencoder FOLDER")
    if req.model.draft_size:
        raise InputError("encoded shards hold one size: training at a draft size too needs the clips themselves "
                         "(--draft-size 0, or train from the source)")
    if req.train.decoder_steps:
        raise InputError("encoded shards hold latents, not frames: a decoder cannot be tuned on them "
                         "(leave --decoder-steps at 0)")
    vae, scale = load_autoencoder(req.train.autoencoder or resolve_init(req.init_from), device)
    shards.check(vae, scale, req.model.size)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    ix = shards.index
    summary = {"source": "latent-shards", "data": ix["data"], "clips": ix["clips"], "frames": ix["frames"],
               "shards": len(ix["train"])}
    data = StreamedTrainData(shards, req.train.seed, req.train.batch_size, device, rank, world,
                             vae.eval().requires_grad_(False), scale, summary)
    on_event(Log("info", f"streaming {ix['clips']} encoded clips from {len(ix['train'])} shards, "
                         f"{data.steps_per_window} steps a window"))
    return data


# Decoder tuning: up to DECODER_FRAMES frames of the run's own clips (a 24-sticker pack's windows give ≈ 3,000;
# 128 px RGBA uint8 is 64 KiB a frame) at a batch that keeps a GPU busy, or a CPU's two cores.
DECODER_FRAMES = 3000
DECODER_BATCH = {"cuda": 32, "cpu": 4}
DECODER_LR = 1e-4


def tuned_decoder(req: TrainRequest, source, base_vae, ae_dir: Path, device: torch.device, on_event, should_stop):
    """``decoder_steps``: the base autoencoder with its decoder tuned on this run's frames, saved in ``ae_dir``
    (a resumed run reuses it; the encoder, latent scale and so the latent cache are the base's)."""
    from rdtf_engine.training.autoencoder import load_autoencoder, train_autoencoder

    if (ae_dir / "config.json").is_file():
        vae, _ = load_autoencoder(ae_dir, device)
        on_event(Log("info", "using the decoder this run tuned on its data"))
        return vae
    steps = int(req.train.decoder_steps)
    on_event(Log("info", f"tuning the autoencoder's decoder on the training frames ({steps} steps; the encoder "
                         "and latent space stay the base's)"))
    minutes = req.run.max_minutes * DECODER_TIME_SHARE if req.run.max_minutes else 0.0
    # the pipeline decodes text → video drafts at the draft size: the decoder keeps that size too
    draft_source = training_source(req, int(req.model.draft_size)) if req.model.draft_size else None
    vae, _ = train_autoencoder(source, ae_dir, "fine-tune", steps, device,
                               batch_size=DECODER_BATCH.get(device.type, DECODER_BATCH["cpu"]), lr=DECODER_LR,
                               seed=req.train.seed, max_frames=DECODER_FRAMES,
                               mixed_precision=req.run.mixed_precision, on_event=on_event, should_stop=should_stop,
                               max_minutes=minutes, init_vae=base_vae,
                               decoder_only=True, draft_source=draft_source)
    return vae
