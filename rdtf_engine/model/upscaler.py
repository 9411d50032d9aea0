"""A small learned 2× upscaler for premultiplied RGBA sticker frames (ESPCN-style, pixel shuffle).

Why it exists: the model samples at 128 px and every platform preset wants 512 px, so every exported sticker is
a 4× upscale. The network predicts a correction on top of a bicubic 2× upsample (its last layer starts at zero,
so an untrained network *is* bicubic), and is applied twice for 4×. It works on premultiplied RGBA in [0, 1]:
a transparent pixel has no colour, so the outline cannot pick up a halo from hidden RGB. It is trained on real
artist frames (docs/results.md, "Upscaling to 512 px"); ``rdtf train-upscaler`` makes one.

Saved as ``upscaler.safetensors`` + ``upscaler.json`` (architecture, training summary). Loading checks the
weights file by content first (``core.model_trust.check_safetensors``): never pickle.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from rdtf_engine.core.atomic import write_bytes_atomic
from rdtf_engine.core.errors import ModelError
from rdtf_engine.core.model_trust import check_safetensors
from rdtf_engine.core.paths import resources_dir

WEIGHTS_FILE = "upscaler.safetensors"
CONFIG_FILE = "upscaler.json"
FORMAT_VERSION = 1
MAX_WIDTH, MAX_DEPTH = 256, 16  # a config asking for more is not one of ours


class Upscaler(nn.Module):
    """(B, 4, H, W) premultiplied RGBA in [0, 1] → (B, 4, 2H, 2W), valid premultiplied (RGB ≤ alpha)."""

    factor = 2

    def __init__(self, width: int = 32, depth: int = 3) -> None:
        super().__init__()
        self.width, self.depth = int(width), int(depth)
        layers: list[nn.Module] = [nn.Conv2d(4, width, 5, padding=2), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        out = nn.Conv2d(width, 4 * self.factor**2, 3, padding=1)
        nn.init.zeros_(out.weight)  # starts as plain bicubic: training only has to learn the correction
        nn.init.zeros_(out.bias)
        self.body = nn.Sequential(*layers, out, nn.PixelShuffle(self.factor))
        self.summary: dict[str, Any] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = F.interpolate(x, scale_factor=self.factor, mode="bicubic", align_corners=False)  # (B, 4, 2H, 2W)
        return self.body(x) + base

    def config(self) -> dict[str, Any]:
        return {"arch": "espcn-residual-bicubic", "factor": self.factor, "width": self.width, "depth": self.depth}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def to_valid_premultiplied(x: torch.Tensor) -> torch.Tensor:
    """Clamp (B, 4, H, W) to [0, 1] with RGB ≤ alpha, the only premultiplied colours that exist."""
    a = x[:, 3:].clamp(0, 1)
    return torch.cat([torch.minimum(x[:, :3].clamp(0, 1), a), a], 1)


def frames_to_premultiplied(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 4) uint8 straight RGBA → (N, 4, H, W) float32 premultiplied in [0, 1] (Pillow's rounding)."""
    pm = np.stack([np.asarray(Image.fromarray(f, "RGBA").convert("RGBa")) for f in frames])
    return torch.from_numpy(pm).permute(0, 3, 1, 2).float().div_(255)


def premultiplied_to_frames(x: torch.Tensor) -> np.ndarray:
    """(N, 4, H, W) premultiplied in [0, 1] → (N, H, W, 4) uint8 straight RGBA, un-premultiplied by Pillow."""
    pm = to_valid_premultiplied(x).mul(255).round().byte().permute(0, 2, 3, 1).numpy()
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(f), "RGBa").convert("RGBA")) for f in pm])


@torch.no_grad()
def upscale_2x(model: Upscaler, frames: np.ndarray, passes: int = 1, batch: int = 4) -> np.ndarray:
    """(N, H, W, 4) uint8 straight RGBA → (N, H·2^passes, W·2^passes, 4): the network ``passes`` times, each
    pass clamped to valid premultiplied colour (what the next pass was trained on)."""
    out = []
    for s in range(0, len(frames), batch):
        x = frames_to_premultiplied(frames[s: s + batch])  # (b, 4, H, W)
        for _ in range(passes):
            x = to_valid_premultiplied(model(x))
        out.append(premultiplied_to_frames(x))
    return np.concatenate(out)


# ---------------------------------------------------------------------------------------------- save / load
def save_upscaler(model: Upscaler, folder: str | os.PathLike) -> Path:
    """Write ``upscaler.safetensors`` + ``upscaler.json`` into ``folder`` (created, atomically per file)."""
    from safetensors.torch import save

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_bytes_atomic(out / WEIGHTS_FILE, save(state, metadata={"format": "pt"}))
    cfg = {"format_version": FORMAT_VERSION, **model.config(), "summary": model.summary}
    write_bytes_atomic(out / CONFIG_FILE, json.dumps(cfg, indent=2).encode())
    return out


def load_upscaler(folder: str | os.PathLike) -> Upscaler:
    """Load an upscaler saved by :func:`save_upscaler` (eval mode, CPU); :class:`ModelError` if unusable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(folder)
    wpath, cpath = d / WEIGHTS_FILE, d / CONFIG_FILE
    if not wpath.is_file() or not cpath.is_file():
        raise ModelError(f"{d.name}: no upscaler here ({WEIGHTS_FILE} and {CONFIG_FILE} expected)")
    try:
        cfg = json.loads(cpath.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelError(f"{CONFIG_FILE}: not readable JSON ({exc})") from None
    if not isinstance(cfg, dict) or cfg.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{CONFIG_FILE}: unsupported upscaler format")
    width, depth = cfg.get("width"), cfg.get("depth")
    if (cfg.get("arch") != "espcn-residual-bicubic" or cfg.get("factor") != 2
            or not isinstance(width, int) or not isinstance(depth, int)
            or not (1 <= width <= MAX_WIDTH and 1 <= depth <= MAX_DEPTH)):
        raise ModelError(f"{CONFIG_FILE}: not an upscaler configuration this version knows")
    check_safetensors(wpath)  # content check before the library parses it
    model = Upscaler(width, depth)
    try:
        model.load_state_dict(load_file(str(wpath)))
    except (SafetensorError, RuntimeError, KeyError, OSError) as exc:
        raise ModelError(f"{WEIGHTS_FILE}: weights do not fit the configured upscaler ({exc})") from None
    model.summary = cfg.get("summary") or {}
    return model.eval()


def builtin_upscaler_dir() -> Path:
    return resources_dir() / "upscaler"


@lru_cache(maxsize=1)
def builtin_upscaler() -> Upscaler:
    """The shipped upscaler (loaded once per process)."""
    return load_upscaler(builtin_upscaler_dir())
