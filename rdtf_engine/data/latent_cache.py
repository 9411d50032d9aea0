"""Encode every training clip once with the frozen autoencoder and precompute its key frames.

The autoencoder is frozen during DFGN training (as the paper's VAE is), so latents are computed once and kept
on the training device: a flat (total_frames, 4, h, w) tensor plus per-clip offsets. Key frames for every
k ∈ 3…8 are precomputed per clip, as the authors store ``keyframe_idx`` (PAPER.md §3.3), from per-frame
features of our own autoencoder (flattened latents, in place of VGG-16 fc features).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from ..errors import Cancelled, InputError
from ..model.autoencoder import encode_frames, rgba_to_tensor
from .keyframes import extract_all, uniform_keyframes

KS = tuple(range(3, 9))


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

    def clip_latents(self, i: int, idx: Sequence[int]) -> torch.Tensor:
        """(len(idx), 4, h, w) latents of frames ``idx`` of clip ``i``."""
        base = self.offsets[i]
        sel = torch.as_tensor([base + j for j in idx], device=self.latents.device)
        return self.latents.index_select(0, sel).float()

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
    indices: Optional[Sequence[int]] = None,
    chunk: int = 256,
    progress: Optional[Callable[[int, int], None]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
    render: Optional[Callable[[Sequence[int]], list]] = None,
) -> LatentCache:
    """Encode clips ``indices`` of ``source`` (a Sequence of Clip). ``render`` may batch-render clips in
    parallel (procedural sources); by default clips are fetched one by one."""
    indices = list(range(len(source))) if indices is None else list(indices)
    if not indices:
        raise InputError("the training data is empty")
    store_dtype = torch.float16 if device.type == "cuda" else torch.float32
    lat_chunks: list[torch.Tensor] = []
    offsets, lengths, captions, keyframes, labels = [], [], [], [], []
    total = 0
    for start in range(0, len(indices), chunk):
        if should_stop is not None and should_stop():
            raise Cancelled("stopped while preparing the training data")
        ids = indices[start : start + chunk]
        clips = render(ids) if render is not None else [source[i] for i in ids]
        frames = np.concatenate([c.frames for c in clips])  # (sum F, H, W, 4)
        lat = encode_frames(vae, rgba_to_tensor(frames), scale)  # (sum F, 4, h, w)
        pos = 0
        for c in clips:
            n = c.num_frames
            feats = lat[pos : pos + n].flatten(1).cpu().numpy()  # (F, 4·h·w) per-frame features
            keyframes.append(extract_all(feats, ks=KS))
            offsets.append(total + pos)
            lengths.append(n)
            captions.append(c.caption)
            labels.append(dict(c.labels))
            pos += n
        total += pos
        lat_chunks.append(lat.to(device=device, dtype=store_dtype))
        if progress is not None:
            progress(min(start + chunk, len(indices)), len(indices))
    return LatentCache(torch.cat(lat_chunks), offsets, lengths, captions, keyframes, labels)
