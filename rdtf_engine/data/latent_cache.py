"""Encode every training clip once with the frozen autoencoder and precompute its key frames.

The autoencoder is frozen during DFGN training (as the paper's VAE is), so latents are computed once and kept
on the training device: a flat (total_frames, 4, h, w) tensor plus per-clip offsets. Key frames for every
k ∈ 3…8 are precomputed per clip, as the authors store ``keyframe_idx`` (docs/method.md §4.3), from per-frame
features of our own autoencoder (flattened latents, in place of VGG-16 fc features).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rdtf_engine.core.errors import Cancelled, InputError
from rdtf_engine.data.keyframes import extract_all, uniform_keyframes
from rdtf_engine.model.autoencoder import encode_rgba

KS = tuple(range(3, 9))
VAL_FRACTION = 0.05
MAX_VAL_CLIPS = 64


def split_ids(n: int) -> tuple[list[int], list[int]]:
    """Deterministic split: every 20th clip (up to 64) is held out for the validation denoising loss."""
    if n < 2:
        return list(range(n)), []
    step = max(2, round(1 / VAL_FRACTION))
    val = [i for i in range(n) if i % step == step - 1][:MAX_VAL_CLIPS] or [n - 1]
    vs = set(val)
    return [i for i in range(n) if i not in vs], val


def store_dtype(device: torch.device) -> torch.dtype:
    """The dtype training keeps latents in: fp16 on CUDA (half the memory), fp32 on the CPU (fast there)."""
    return torch.float16 if device.type == "cuda" else torch.float32


@dataclass
class LatentCache:
    latents: torch.Tensor  # (total_frames, 4, h, w), fp16 on CUDA / fp32 on CPU
    offsets: list[int]  # clip i occupies latents[offsets[i] : offsets[i] + lengths[i]]
    lengths: list[int]
    captions: list[str]
    keyframes: list[dict[int, list[int]]]  # per clip: k → k frame indices in temporal order
    labels: list[dict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.offsets)

    def to(self, device: torch.device) -> LatentCache:
        """The same clips with their latents on ``device`` in its ``store_dtype``."""
        return LatentCache(self.latents.to(device=device, dtype=store_dtype(device)), self.offsets, self.lengths,
                           self.captions, self.keyframes, self.labels)

    def fixed_frames(self, i: int, n: int) -> list[int]:
        """Evenly spaced frames (ping-pong for short clips): the --no-dual-mask arm's fixed-length clips."""
        return uniform_keyframes(self.lengths[i], n)

    def summary(self) -> dict:
        hist = np.bincount(np.asarray(self.lengths), minlength=1)
        return {"clips": len(self), "frames": int(sum(self.lengths)),
                "frame_count_histogram": {int(k): int(v) for k, v in enumerate(hist) if v}}


def build_latent_cache(
    source,
    vae,
    scale: float,
    device: torch.device,
    indices: Sequence[int] | None = None,
    chunk: int = 0,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    pool=None,
    phases: dict[str, float] | None = None,
) -> LatentCache:
    """Encode clips ``indices`` of ``source`` (a Sequence of Clip). ``pool`` (a ``data.sources.RenderPool``)
    renders procedural clips in worker processes, one chunk ahead of the encoder; by default clips are
    fetched one by one. ``phases`` (if given) accumulates seconds spent waiting for rendered clips, encoding
    and clustering, to show which one bounds data preparation."""
    import time

    phases = {} if phases is None else phases
    for name in ("render", "encode", "keyframes"):
        phases.setdefault(name, 0.0)
    indices = list(range(len(source))) if indices is None else list(indices)
    # Each chunk forks worker pools (render, k-means): big chunks on a many-core GPU host amortise that.
    chunk = chunk or (1024 if device.type == "cuda" else 256)
    if not indices:
        raise InputError("the training data is empty")
    dtype = store_dtype(device)
    lat_chunks: list[torch.Tensor] = []
    offsets, lengths, captions, keyframes, labels = [], [], [], [], []
    total = 0
    chunks = [indices[a : a + chunk] for a in range(0, len(indices), chunk)]
    pending = pool.submit(chunks[0]) if pool is not None else None
    for k, ids in enumerate(chunks):
        if should_stop is not None and should_stop():
            raise Cancelled("stopped while preparing the training data")
        t0 = time.perf_counter()
        if pending is not None:
            clips = pending.get()
            # Workers render chunk k+1 while this process encodes chunk k (≤ 2 chunks of clips in memory).
            pending = pool.submit(chunks[k + 1]) if k + 1 < len(chunks) else None
        else:
            clips = [source[i] for i in ids]
        frames = np.concatenate([c.frames for c in clips])  # (sum F, H, W, 4)
        t1 = time.perf_counter()
        lat = encode_rgba(vae, frames, scale, batch=256 if device.type == "cuda" else 64)  # (sum F, 4, h, w)
        # Per-frame clustering features: latents pooled to 4×8×8 = 256-d (coarse layout and colour, like the
        # VGG fc features the authors cluster; 16× cheaper k-means than the full 4×32×32 latent at 256 px).
        feats = torch.nn.functional.adaptive_avg_pool2d(lat, (min(8, lat.shape[-2]), min(8, lat.shape[-1])))
        feats = feats.flatten(1).cpu().numpy()
        t2 = time.perf_counter()
        bounds = np.cumsum([0] + [c.num_frames for c in clips])
        per_clip = [feats[a:b] for a, b in itertools.pairwise(bounds)]
        if pool is not None and pool.workers > 1:
            # The pool's workers cluster chunk k right after rendering chunk k+1 (tasks run in order); no
            # second pool is forked per chunk.
            keyframes.extend(pool.map(_kf_one, per_clip).get())
        else:
            keyframes.extend(_keyframes_parallel(per_clip))
        phases["render"] += t1 - t0
        phases["encode"] += t2 - t1
        phases["keyframes"] += time.perf_counter() - t2
        pos = 0
        for c in clips:
            n = c.num_frames
            offsets.append(total + pos)
            lengths.append(n)
            captions.append(c.caption)
            labels.append(dict(c.labels))
            pos += n
        total += pos
        lat_chunks.append(lat.to(device=device, dtype=dtype))
        if progress is not None:
            progress(min((k + 1) * chunk, len(indices)), len(indices))
    return LatentCache(torch.cat(lat_chunks), offsets, lengths, captions, keyframes, labels)


def _kf_one(feats: np.ndarray) -> dict[int, list[int]]:
    return extract_all(feats, ks=KS)


def _keyframes_parallel(feats: list[np.ndarray]) -> list[dict[int, list[int]]]:
    """k-means for every clip and k; in worker processes when there are many clips and cores (GPU hosts)."""
    import multiprocessing as mp
    import os
    from concurrent.futures import ProcessPoolExecutor

    workers = min(os.cpu_count() or 1, 16)
    if len(feats) < 64 or workers <= 2 or "fork" not in mp.get_all_start_methods():
        return [_kf_one(f) for f in feats]
    # fork: children only run numpy k-means, never CUDA, so inheriting the parent's CUDA context is harmless.
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("fork")) as ex:
        return list(ex.map(_kf_one, feats, chunksize=8))


def save_latent_cache(cache: LatentCache, folder, key: str) -> None:
    """Persist a cache (safetensors + JSON) so resumed chunks of a long run skip re-rendering and re-encoding.
    ``key`` identifies data + autoencoder; a cache with another key is never reused."""
    import json
    import os
    from pathlib import Path

    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".latents.tmp"
    save_file({"latents": cache.latents.detach().half().contiguous().cpu()}, str(tmp))
    os.replace(tmp, folder / "latents.safetensors")
    meta = {"key": key, "offsets": cache.offsets, "lengths": cache.lengths, "captions": cache.captions,
            "keyframes": [{str(k): v for k, v in kf.items()} for kf in cache.keyframes], "labels": cache.labels}
    (folder / ".latents.json.tmp").write_text(json.dumps(meta), "utf-8")
    os.replace(folder / ".latents.json.tmp", folder / "latents.json")


def load_latent_cache(folder, key: str, device: torch.device) -> LatentCache | None:
    """The cache saved under ``folder`` if its key matches and it is intact, else None (rebuild)."""
    import json
    from pathlib import Path

    from safetensors.torch import load_file

    folder = Path(folder)
    try:
        meta = json.loads((folder / "latents.json").read_text("utf-8"))
        if meta.get("key") != key:
            return None
        lat = load_file(str(folder / "latents.safetensors"))["latents"]
    except Exception:  # noqa: BLE001 - missing, partial or corrupt: rebuilding is always correct
        return None
    dtype = store_dtype(device)
    kfs = [{int(k): v for k, v in kf.items()} for kf in meta["keyframes"]]
    return LatentCache(lat.to(device=device, dtype=dtype), meta["offsets"], meta["lengths"], meta["captions"],
                       kfs, meta["labels"])
