"""Training data larger than memory: encoded clips as webdataset tar shards, read a window of shards at a time.

``rdtf data encode-shards --data SRC --model MODEL --out DIR`` encodes every clip of SRC once with MODEL's
autoencoder (its latent space and scale) and writes it, with its key frames for every k (``latent_cache.py``), as
tar shards; ``rdtf train --data shards:DIR --init-from MODEL`` then keeps only one window of shards on the device
(and the next one in host memory, read by a background thread) instead of every clip: the run's memory is set by
the window, not by the dataset.

Folder::

    index.json        {"dataset": "latent-shards", "format": 2, "size": px, "latent_shape": [4, h, w], "scale",
                       "encoder": sha256 of the encoder's weights, "data", "clips", "frames",
                       "train": [{"name", "clips", "sha256"}, …], "val": {"name", "clips", "sha256"}}
    train-00000.tar   one webdataset sample, ``clips``: clips.safetensors ({"latents": (Σn, 4, h, w) fp16, the
    …                 clips' frames one after another; "lengths": (clips,) int32}) and clips.json (per clip: key,
                      caption, key frames, labels) — the safetensors format, never pickle
    val.tar           the held-out clips (every 20th, at most 64, as an in-memory run splits them)

One sample per shard, not one per clip: a window of 8 shards × 256 clips as per-clip samples took ≈ 0.7 s of
Python tar parsing (2 CPU cores), and on one H200 the background thread doing it shared the interpreter lock
with a launch-bound training loop — streaming ran at 0.53× the in-memory cache's steps/s. As one block a
shard is one tar member, one safetensors load and one JSON list.

Window j of a run (training step s uses window j = s // steps_per_window) lies in epoch e = j // windows_per_epoch
and holds the train shards ``order_e[w·W : (w+1)·W]`` (w = j mod windows_per_epoch, W = ``WINDOW_SHARDS``,
``order_e`` a permutation of the shards seeded by (seed, e)); under DDP process r of R reads every R-th of them.
A window depends on the step alone, so a resumed run reloads exactly the window it stopped in.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from rdtf_engine.core.errors import InputError, UnsafeInputError
from rdtf_engine.data.latent_cache import KS, LatentCache, build_latent_cache, split_ids
from rdtf_engine.data.render_pool import RenderPool

PREFIX = "shards:"
INDEX = "index.json"
FORMAT = 2  # 1: one sample per clip (a window read ≈ 3× slower on 2 cores); refused: encode again
WINDOW_SHARDS = 8  # shards a process holds at a time (per window); the next window is read while this one trains
MAX_CLIP_FRAMES = 4096


def shards_folder(data: str) -> Path | None:
    """``shards:DIR`` → DIR, anything else → None."""
    return Path(data[len(PREFIX):]).expanduser() if data.startswith(PREFIX) else None


def encoder_fingerprint(vae) -> str:
    """sha256 of the encoder's weights (encoder + quant_conv): shards only train a run whose latent space it is."""
    h = hashlib.sha256()
    for name, t in sorted(vae.state_dict().items()):
        if name.startswith(("encoder.", "quant_conv.")):
            h.update(name.encode())
            h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def encode_shards(source, vae, scale: float, out: Path, *, data: str, size: int, clips_per_shard: int = 256,
                  progress: Callable[[int, int], None] | None = None,
                  should_stop: Callable[[], bool] | None = None) -> dict[str, Any]:
    """Encode every clip of ``source`` and write the shard folder ``out`` (replaced whole, atomically) → index."""
    import webdataset as wds

    from rdtf_engine.core.atomic import make_dir, remove_tree_quietly, replace_dir, write_text_atomic

    if not 1 <= int(clips_per_shard) <= 100_000:
        raise InputError(f"clips per shard must be between 1 and 100000, got {clips_per_shard}")
    n = len(source)
    if n == 0:
        raise InputError(f"no usable clips in {data}")
    train_ids, val_ids = split_ids(n)
    out = Path(out)
    make_dir(out.parent)
    build = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    done, frames, h_w = 0, 0, None
    # The autoencoder's own device encodes (a GPU host's card), while procedural clips render on every core:
    # on one H200 host, encoding on the CPU with clips rendered one by one ran at ≈ 20 clips/s.
    device = next(vae.parameters()).device
    pool = RenderPool.for_source(source)
    try:
        def write(name: str, ids: list[int]) -> dict[str, Any]:
            nonlocal done, frames, h_w
            cache = build_latent_cache(source, vae, scale, device, indices=ids, should_stop=should_stop, pool=pool)
            clips = [{"key": int(clip_id), "caption": cache.captions[i], "labels": cache.labels[i],
                      "keyframes": {str(k): v for k, v in cache.keyframes[i].items()}} for i, clip_id in enumerate(ids)]
            with wds.TarWriter(str(build / name)) as sink:
                sink.write({"__key__": "clips", "safetensors": _block_bytes(cache.latents, cache.lengths),
                            "json": json.dumps(clips).encode()})
            done, frames, h_w = done + len(ids), frames + sum(cache.lengths), list(cache.latents.shape[1:])
            if progress is not None:
                progress(done, n)
            path = build / name
            return {"name": name, "clips": len(ids), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}

        groups = [train_ids[a:a + clips_per_shard] for a in range(0, len(train_ids), clips_per_shard)]
        train = [write(f"train-{k:05d}.tar", g) for k, g in enumerate(groups)]
        val = write("val.tar", val_ids) if val_ids else None
        # the source by name, never a local path (the folder may be shared)
        label = data if data.startswith("builtin:") else Path(data).name
        index = {"dataset": "latent-shards", "format": FORMAT, "size": int(size), "latent_shape": h_w,
                 "scale": float(scale), "encoder": encoder_fingerprint(vae), "data": label, "clips": n,
                 "frames": frames, "train": train, "val": val}
        write_text_atomic(build / INDEX, json.dumps(index, indent=1))
        replace_dir(build, out)
    finally:
        pool.close()
        remove_tree_quietly(build)
    return index


def _block_bytes(latents: torch.Tensor, lengths: list[int]) -> bytes:
    """A shard's clips as one safetensors blob: latents (Σn, 4, h, w) fp16, lengths (clips,) int32."""
    from safetensors.torch import save

    return save({"latents": latents.detach().to(torch.float16).contiguous().cpu(),
                 "lengths": torch.tensor([int(n) for n in lengths], dtype=torch.int32)})


class LatentShards:
    """An opened shard folder: its index, checked; windows of its train shards; the held-out clips."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        try:
            index = json.loads((self.folder / INDEX).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{self.folder} is not a shard folder made by `rdtf data encode-shards` ({exc})") from exc
        if not isinstance(index, dict) or index.get("dataset") != "latent-shards":
            raise InputError(f"{self.folder}/{INDEX} is not a latent shard index (format {FORMAT})")
        if index.get("format") != FORMAT:
            raise InputError(f"{self.folder} holds latent shards of format {index.get('format')}; this version reads "
                             f"format {FORMAT}: encode them again (`rdtf data encode-shards`)")
        if not index.get("train"):
            raise InputError(f"{self.folder} holds no training shards")
        self.index = index

    def check(self, vae, scale: float, size: int) -> None:
        """The run must use the latent space the clips were encoded in, at their size."""
        if int(size) != int(self.index["size"]):
            raise InputError(f"the shards hold {self.index['size']} px clips; this run trains at {size} px")
        if abs(float(scale) - float(self.index["scale"])) > 1e-6 or encoder_fingerprint(vae) != self.index["encoder"]:
            raise InputError("the shards were encoded with another autoencoder than this run's: encode them again "
                             "with this run's base model (`rdtf data encode-shards --model …`)")

    def window_shards(self, window: int, seed: int, rank: int = 0, world: int = 1) -> list[dict[str, Any]]:
        """The train shards of ``window`` that process ``rank`` of ``world`` reads (see the module doc)."""
        shards = self.index["train"]
        per = max(WINDOW_SHARDS, world)
        per_epoch = math.ceil(len(shards) / per)
        epoch, w = divmod(int(window), per_epoch)
        order = list(range(len(shards)))
        random.Random(f"{seed}-{epoch}").shuffle(order)
        mine = order[w * per:(w + 1) * per][rank::world] or order[rank % len(order):][:1]
        return [shards[i] for i in mine]

    def steps_per_window(self, batch_size: int, world: int = 1) -> int:
        """About one pass over a window's clips per process, the same for every process and every resume."""
        shards = self.index["train"]
        per_shard = sum(s["clips"] for s in shards) / len(shards)
        return max(1, round(per_shard * max(WINDOW_SHARDS, world) / world / max(1, batch_size)))

    def load(self, shards: list[dict[str, Any]], device: torch.device | None = None) -> LatentCache:
        """The clips of ``shards`` as one ``LatentCache`` (checked against the index: a damaged shard is an error),
        fp16 in host memory, or on ``device`` in the dtype a run keeps its latents in."""
        parts = [self._read(s) for s in shards]
        lat = [p[0] for p in parts]
        offsets, lengths, captions, keyframes, labels, total = [], [], [], [], [], 0
        for _, metas in parts:
            for m in metas:
                offsets.append(total)
                lengths.append(m["frames"])
                captions.append(m["caption"])
                keyframes.append(m["keyframes"])
                labels.append(m["labels"])
                total += m["frames"]
        cache = LatentCache(torch.cat(lat), offsets, lengths, captions, keyframes, labels)
        return cache if device is None else cache.to(device)

    def held_out(self, device: torch.device) -> LatentCache | None:
        return self.load([self.index["val"]], device) if self.index.get("val") else None

    def _read(self, shard: dict[str, Any]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        path = self.folder / Path(str(shard["name"])).name  # a name in the index never leaves the folder
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != shard["sha256"]:
            raise UnsafeInputError(f"shard {path.name} is damaged (sha256 mismatch)")
        try:
            return self._samples(path.name, raw, shard)
        except tarfile.TarError as exc:
            raise UnsafeInputError(f"shard {path.name} is not a readable tar file ({exc})") from exc

    def _samples(self, name: str, raw: bytes, shard: dict[str, Any]) -> tuple[torch.Tensor, list[dict[str, Any]]]:
        from safetensors import SafetensorError
        from safetensors.torch import load
        from webdataset.tariterators import group_by_keys, tar_file_expander

        # webdataset's own tar reader over the bytes just checked (read once, never extracted to disk)
        try:
            samples = list(group_by_keys(tar_file_expander([{"url": name, "stream": io.BytesIO(raw)}])))
            if len(samples) != 1:
                raise ValueError(f"{len(samples)} samples, not one block")
            block = load(samples[0]["safetensors"])
            lat, lengths = block["latents"], [int(n) for n in block["lengths"].tolist()]  # (Σn, 4, h, w) fp16
            clips = json.loads(samples[0]["json"])
            metas = [{"frames": n, "caption": str(c.get("caption", "")), "labels": dict(c.get("labels") or {}),
                      "keyframes": {int(k): [int(i) for i in v] for k, v in c["keyframes"].items()}}
                     for n, c in zip(lengths, clips, strict=True)]
        except (KeyError, ValueError, TypeError, AttributeError, SafetensorError) as exc:
            raise UnsafeInputError(f"shard {name} is unreadable ({exc})") from exc
        shape = tuple(self.index["latent_shape"])
        if lat.dtype != torch.float16 or lat.ndim != 4 or tuple(lat.shape[1:]) != shape or \
                sum(lengths) != lat.shape[0] or len(metas) != int(shard["clips"]):
            raise UnsafeInputError(f"shard {name} does not match the index ({len(metas)} clips, "
                                   f"latents {tuple(lat.shape)})")
        for k, m in enumerate(metas):
            n, kf = m["frames"], m["keyframes"]
            if not 1 <= n <= MAX_CLIP_FRAMES or not set(kf) <= set(KS) or \
                    any(not all(0 <= i < n for i in v) for v in kf.values()):
                raise UnsafeInputError(f"shard {name}: clip {k} does not match the index")
        return lat, metas
