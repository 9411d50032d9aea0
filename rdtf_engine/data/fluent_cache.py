"""``rdtf data pack-cache fluent``: the fetched Fluent files as a compact webdataset shard cache.

A GPU host without a package registry takes at most 64 MiB of files per call, so ``rdtf data pack-cache fluent``
writes the usable files (reserved faces never, stills never) as webdataset-style tar shards (≤ 15 MiB each):
one sample per file, keyed by its code-point stem, holding

- ``<stem>.webp``: the animation re-encoded at ``size`` px keeping every ``every``-th frame (each kept frame
  lasts the frames it stands for, so the loop's timing is kept), lossy WebP at ``quality`` (100 = lossless)
  with the alpha plane at ``alpha_quality`` (100 = lossless);
- ``<stem>.json``: {frames, frame_ms, every, source_frames, source_sha256, package}.

``index.json`` beside the shards lists them with their sha256, the packing settings, the licence and the source
manifest's package versions; ``captions.txt`` every caption subject the cache can yield, one a line (the words
a pruned text encoder carried to such a host must keep). ``fluent_store.PackedStore`` reads the cache.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rdtf_engine.core.atomic import make_dir, remove_tree_quietly, replace_dir, write_text_atomic
from rdtf_engine.core.errors import DependencyError, InputError
from rdtf_engine.data.fluent_names import sequence_name
from rdtf_engine.data.fluent_split import code_points
from rdtf_engine.data.fluent_store import INDEX, MIN_FRAMES, FetchedStore, split_of

CAPTIONS = "captions.txt"
SKIN_TONES = range(0x1F3FB, 0x1F400)  # the Fitzpatrick modifiers
SHARD_BYTES = 15 * 2**20  # per shard (the GPU host takes files ≤ 16 MiB)


def has_skin_tone(seq: tuple[int, ...]) -> bool:
    return any(cp in SKIN_TONES for cp in seq)


# ---------------------------------------------------------------------------------------------- writer
def pack_sample(clip_frames: np.ndarray, durations: list[int], size: int, every: int, quality: int,
                alpha_quality: int = 100) -> bytes:
    """(F, H, W, 4) uint8 frames → an animated WebP of every ``every``-th frame at ``size`` px."""
    from PIL import Image

    from rdtf_engine.formats.timing import fit_canvas

    keep = fit_canvas(clip_frames[::every], size, size)  # (ceil(F / every), size, size, 4)
    durs = [int(sum(durations[i: i + every])) for i in range(0, len(durations), every)]
    images = [Image.fromarray(f, "RGBA") for f in keep]
    buf = io.BytesIO()
    # libwebp's minimize_size / allow_mixed search took 8× longer here for ≈ 1 % fewer bytes: left off
    images[0].save(buf, "WEBP", save_all=True, append_images=images[1:], duration=durs, loop=0,
                   lossless=quality >= 100, quality=min(int(quality), 100), alpha_quality=int(alpha_quality),
                   method=4)
    return buf.getvalue()


_STORE: FetchedStore | None = None
_SETTINGS: tuple[int, int, int, int] = (256, 8, 70, 100)


def _init_packer(folder: str, settings: tuple[int, int, int, int]) -> None:
    global _STORE, _SETTINGS
    _STORE, _SETTINGS = FetchedStore.open(Path(folder)), settings


def _pack_one(stem: str) -> tuple[str, bytes, dict[str, Any]]:
    """Decode one fetched file (safe decoders) and re-encode it → (stem, webp, json meta)."""
    from rdtf_engine.formats.loader import decode_bytes

    assert _STORE is not None and split_of(stem) is not None  # reserved faces are never written
    size, every, quality, alpha_quality = _SETTINGS
    clip = decode_bytes(_STORE.read(stem), stem + ".webp")
    webp = pack_sample(clip.frames, list(clip.durations_ms), size, every, quality, alpha_quality)
    durs = [int(sum(clip.durations_ms[i: i + every])) for i in range(0, clip.num_frames, every)]
    meta = {"frames": len(durs), "frame_ms": durs, "every": every, "source_frames": clip.num_frames,
            "source_sha256": _STORE.manifest["files"][stem]["sha256"],
            "package": _STORE.manifest["files"][stem]["package"]}
    return stem, webp, meta


def pack_cache(
    out: Path,
    size: int = 256,
    every: int = 8,
    quality: int = 70,
    splits: tuple[str, ...] = ("train", "holdout"),
    progress: Callable[[int, int], None] | None = None,
    alpha_quality: int = 100,
    part: tuple[int, int] = (1, 1),
    workers: int = 0,
    variants: str = "all",
) -> dict[str, Any]:
    """Write the shard cache of the fetched files of ``splits`` into ``out`` (replaced whole) → its index.

    ``part`` = (k, n) keeps the k-th of n interleaved parts of the file list (sorted by stem), for runs that
    carry one part per call when the whole set does not fit one transfer. ``variants="base"`` drops the skin-tone
    variants (the same animation recoloured: about 45 % of the files) to fit more distinct motion in one transfer.
    Files are decoded and re-encoded in
    ``workers`` processes (0 = all cores) and written in stem order, so the shards do not depend on it."""
    import webdataset as wds

    if not 16 <= size <= 1024 or not 1 <= every <= 32 or not 1 <= quality <= 100 or not 1 <= alpha_quality <= 100:
        raise InputError("pack-cache needs 16 ≤ size ≤ 1024, 1 ≤ every ≤ 32 and qualities in 1…100")
    k, n_parts = part
    if not 1 <= k <= n_parts:
        raise InputError(f"--part must be K/N with 1 ≤ K ≤ N, got {k}/{n_parts}")
    store = FetchedStore.open()
    if store is None:
        raise DependencyError("pack-cache reads the fetched Fluent files: run `rdtf data fetch fluent` first")
    stems = sorted(s for s, it in store.items.items() if it.frames >= MIN_FRAMES and split_of(s) in splits)
    if variants not in ("all", "base"):
        raise InputError(f"--variants must be all or base, got {variants!r}")
    if variants == "base":
        stems = [s for s in stems if not has_skin_tone(code_points(s))]
    stems = stems[k - 1:: n_parts]
    if not stems:
        raise InputError(f"no Fluent files in splits {', '.join(splits)}")
    out = Path(out)
    make_dir(out.parent)
    build = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    os.chmod(build, 0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    t0 = time.perf_counter()
    settings = (size, every, quality, alpha_quality)
    workers = min(workers or (os.cpu_count() or 1), 16, max(1, len(stems) // 8))
    try:
        # webdataset counts payload bytes only and rolls over after passing maxsize; tar headers add ≈ 4 KB a
        # sample (≈ 10 % here), so aim 20 % low to stay under SHARD_BYTES
        with wds.ShardWriter(str(build / "fluent-%04d.tar"), maxsize=int(0.8 * SHARD_BYTES), verbose=0) as sink:
            for n, (stem, webp, meta) in enumerate(_packed(stems, str(store.folder), settings, workers)):
                sink.write({"__key__": stem, "webp": webp, "json": json.dumps(meta).encode()})
                if progress is not None:
                    progress(n + 1, len(stems))
        shards = [{"name": p.name, "bytes": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
                  for p in sorted(build.glob("fluent-*.tar"))]
        index = {"dataset": "fluent-packed", "format": 1, "size": size, "every": every, "quality": quality,
                 "alpha_quality": alpha_quality, "splits": list(splits), "part": f"{k}/{n_parts}",
                 "variants": variants,
                 "files": len(stems), "shards": shards, "bytes": sum(s["bytes"] for s in shards),
                 "seconds": round(time.perf_counter() - t0, 1), "license": "MIT",
                 "attribution": store.manifest.get("attribution", ""),
                 "packages": {p["name"]: p["version"] for p in store.manifest["packages"]}}
        write_text_atomic(build / INDEX, json.dumps(index, indent=1))
        # every caption subject the cache can yield, one a line: what a pruned text encoder must keep
        subjects = sorted({sequence_name(code_points(s)) for s in stems})
        write_text_atomic(build / CAPTIONS, "\n".join(["the a an", *subjects]) + "\n")
        replace_dir(build, out)
    finally:
        remove_tree_quietly(build)
    return index


def _packed(stems: list[str], folder: str, settings: tuple[int, int, int, int], workers: int):
    """(stem, webp, meta) in stem order, from a spawn pool (no inherited threads or locks) or in-process."""
    if workers <= 1:
        _init_packer(folder, settings)
        yield from map(_pack_one, stems)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers, _init_packer, (folder, settings)) as pool:
        yield from pool.imap(_pack_one, stems, chunksize=2)
