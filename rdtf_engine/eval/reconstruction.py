"""How well an RGBA autoencoder reproduces real sticker frames: PSNR, alpha IoU, edge sharpness, a picture.

Frames are compared premultiplied (what the network sees; a fully transparent pixel has no colour to get
wrong), in [0, 1]. ``sharpness`` is the pack evaluation's edge measure at export size, so a decoder that blurs
shows up as a lower number than the real frames' own.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rdtf_engine.eval.pack_metrics import sharpness
from rdtf_engine.model.autoencoder import rgba_to_tensor, tensor_to_rgba

ALPHA_ON = 0.5  # a pixel is "in the sticker" at alpha ≥ 0.5


def psnr(real: np.ndarray, recon: np.ndarray) -> float:
    """(N, H, W, 4) uint8 straight RGBA pair → PSNR in dB of the premultiplied RGBA (peak 1.0)."""
    a, b = _premultiplied01(real), _premultiplied01(recon)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def alpha_iou(real: np.ndarray, recon: np.ndarray) -> float:
    """Intersection over union of the alpha ≥ 0.5 masks, over all frames."""
    ra, rb = real[..., 3] >= 255 * ALPHA_ON, recon[..., 3] >= 255 * ALPHA_ON
    union = np.logical_or(ra, rb).sum()
    return 1.0 if union == 0 else float(np.logical_and(ra, rb).sum() / union)


def _premultiplied01(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float32) / 255.0
    return np.concatenate([f[..., :3] * f[..., 3:4], f[..., 3:4]], axis=-1)


@torch.no_grad()
def reconstruct(vae, frames: np.ndarray, device: torch.device, batch: int = 16) -> np.ndarray:
    """(N, H, W, 4) uint8 → the autoencoder's (N, H, W, 4) uint8 reconstruction (posterior mode), turned back
    into straight RGBA by the same ``tensor_to_rgba`` that makes every generated sticker."""
    out = []
    for s in range(0, len(frames), batch):
        x = rgba_to_tensor(frames[s: s + batch]).to(device)  # (b, 4, H, W) premultiplied [-1, 1]
        out.append(tensor_to_rgba(vae.decode(vae.encode(x).latent_dist.mode()).sample))
    return np.concatenate(out)


def reconstruction_report(clips: Sequence[np.ndarray], recons: Sequence[np.ndarray]) -> dict[str, float]:
    """Per-clip frame stacks (real, reconstructed) → mean PSNR, alpha IoU and sharpness (real beside)."""
    return {
        "psnr_db": float(np.mean([psnr(a, b) for a, b in zip(clips, recons)])),
        "alpha_iou": float(np.mean([alpha_iou(a, b) for a, b in zip(clips, recons)])),
        "sharpness": float(np.mean([sharpness(b) for b in recons])),
        "sharpness_real": float(np.mean([sharpness(a) for a in clips])),
        "clips": len(clips), "frames": int(sum(len(c) for c in clips)),
    }
