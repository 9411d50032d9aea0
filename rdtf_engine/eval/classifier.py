"""A small motion classifier trained only on real (procedural) clips: the backbone of our offline metrics.

No pretrained video network (I3D for FVD, CLIP) is available offline, so motion adherence and the Fréchet
distance are measured with this network instead: it sees a clip as 8 frames at 64 px (RGBA, premultiplied)
plus the 8 cyclic frame differences, runs factorised (2+1)-D convolutions with *circular* temporal padding
(stickers loop, so the start frame is arbitrary) and pools over time and space; the result is invariant
to cyclic shifts of the frames. Its 128-d penultimate activation is the feature space of the Fréchet
distance.

Saved as ``motion_classifier.safetensors`` + ``motion_classifier.json`` (classes, input geometry, summary).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rdtf_engine.core.atomic import write_bytes_atomic
from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError, ModelError

WEIGHTS_FILE = "motion_classifier.safetensors"
CONFIG_FILE = "motion_classifier.json"
FORMAT_VERSION = 1


# ---------------------------------------------------------------------------------------------- inputs
def sample_frame_indices(durations_ms: Sequence[int], num_frames: int) -> np.ndarray:
    """Indices of the frames on screen at times j · D / num_frames (D = loop length): time-based resampling,
    so uneven durations and any frame count map onto the same clock."""
    ends = np.cumsum(np.asarray(durations_ms, np.float64))
    times = np.arange(num_frames) * ends[-1] / num_frames
    return np.minimum(np.searchsorted(ends, times, side="right"), len(ends) - 1)


def clip_tensor(clip: Clip, size: int, num_frames: int) -> torch.Tensor:
    """Clip → (4, T, size, size) float32 premultiplied RGBA in [0, 1]."""
    idx = sample_frame_indices(clip.durations_ms, num_frames)
    x = torch.from_numpy(np.ascontiguousarray(clip.frames[idx])).float().div_(255)  # (T, H, W, 4)
    x = x.permute(0, 3, 1, 2)  # (T, 4, H, W)
    x = torch.cat([x[:, :3] * x[:, 3:], x[:, 3:]], 1)  # premultiply: resizing straight RGB would bleed
    if x.shape[-1] != size or x.shape[-2] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.permute(1, 0, 2, 3).contiguous()  # (4, T, size, size)


def clips_tensor(clips: Sequence[Clip], size: int, num_frames: int) -> torch.Tensor:
    """(N, 4, T, size, size) float32."""
    return torch.stack([clip_tensor(c, size, num_frames) for c in clips])


# ---------------------------------------------------------------------------------------------- network
class _Block(nn.Module):
    """Spatial 3×3 conv (stride 2) → temporal 3-tap conv with circular padding, residual over the latter.

    Both are run as 2-D convolutions (frames folded into the batch; the temporal taps as a 1×1 conv over
    the channel-stacked frames t-1, t, t+1): CPU conv3d kernels are ~10× slower for these shapes.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.spatial = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.n1 = nn.GroupNorm(8, cout)
        self.temporal = nn.Conv2d(3 * cout, cout, 1)
        self.n2 = nn.GroupNorm(8, cout)

    @staticmethod
    def _norm(gn: nn.GroupNorm, h: torch.Tensor) -> torch.Tensor:
        # Statistics over the whole clip (T, H, W), not per frame: per-frame norms would erase fades.
        return gn(h.transpose(1, 2)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C, H, W) → (B, T, C', H/2, W/2)
        b, t = x.shape[:2]
        h = self.spatial(x.flatten(0, 1)).unflatten(0, (b, t))  # (B, T, C', H/2, W/2)
        h = F.silu(self._norm(self.n1, h))
        taps = torch.cat([torch.roll(h, 1, 1), h, torch.roll(h, -1, 1)], 2)  # loop-aware: frame T-1 meets 0
        y = self.temporal(taps.flatten(0, 1)).unflatten(0, (b, t))
        return h + F.silu(self._norm(self.n2, y))


class MotionClassifier(nn.Module):
    def __init__(self, classes: Sequence[str], input_size: int = 64, num_frames: int = 8, width: int = 32,
                 feature_dim: int = 128) -> None:
        super().__init__()
        self.classes = list(classes)
        self.input_size, self.num_frames, self.width, self.feature_dim = input_size, num_frames, width, feature_dim
        chans = [width, 2 * width, 3 * width, 4 * width]
        blocks, cin = [], 8  # 4 premultiplied RGBA + 4 cyclic frame differences
        for c in chans:
            blocks.append(_Block(cin, c))
            cin = c
        self.blocks = nn.Sequential(*blocks)
        self.proj = nn.Linear(cin, feature_dim)
        self.head = nn.Linear(feature_dim, len(self.classes))
        self.summary: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        return {"classes": self.classes, "input_size": self.input_size, "num_frames": self.num_frames,
                    "width": self.width, "feature_dim": self.feature_dim}

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 4, T, S, S) premultiplied RGBA → (B, feature_dim) penultimate features."""
        x = x.transpose(1, 2)  # (B, T, 4, S, S)
        d = torch.roll(x, -1, dims=1) - x  # frame t+1 − frame t, cyclic
        h = self.blocks(torch.cat([x, d], 2))  # (B, T, 4w, S/16, S/16)
        return F.silu(self.proj(h.mean(dim=(1, 3, 4))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @torch.no_grad()
    def embed(self, clips: Sequence[Clip], batch_size: int = 64) -> tuple[np.ndarray, list[str]]:
        """Clips → ((N, feature_dim) float64 features, predicted motion names)."""
        dev = next(self.parameters()).device
        was_training = self.training
        self.eval()
        feats, preds = [], []
        for s in range(0, len(clips), batch_size):
            x = clips_tensor(clips[s:s + batch_size], self.input_size, self.num_frames).to(dev)
            f = self.features(x)
            feats.append(f.double().cpu().numpy())
            preds += [self.classes[k] for k in self.head(f).argmax(1).tolist()]
        self.train(was_training)
        return (np.concatenate(feats) if feats else np.zeros((0, self.feature_dim))), preds

    def accuracy(self, clips: Sequence[Clip]) -> float:
        """Share of clips (with a known ``motion`` label) whose motion is predicted correctly."""
        known = [c for c in clips if c.labels.get("motion") in self.classes]
        if not known:
            return float("nan")
        _, preds = self.embed(known)
        return float(np.mean([p == c.labels["motion"] for p, c in zip(preds, known)]))


# ---------------------------------------------------------------------------------------------- training
def train_motion_classifier(source: Sequence[Clip], steps: int, device: str | torch.device = "cpu", *,
                            batch_size: int = 32, max_clips: int = 2048, input_size: int = 64,
                            num_frames: int = 8, width: int = 32, feature_dim: int = 128, lr: float = 3e-3,
                            seed: int = 0, workers: int = 0,
                            on_log: Callable[[dict[str, Any]], None] | None = None) -> MotionClassifier:
    """Train on the first ``max_clips`` clips of ``source`` (rendered once, kept as uint8) for ``steps``
    AdamW steps with one-cycle cosine LR, horizontal flips and RGB channel shuffles (motion, not colour,
    must decide the class). Returns the model in eval mode with ``model.summary`` filled in."""
    if steps < 1:
        raise InputError("steps must be positive")
    from rdtf_engine.data.sources import ClipSource, render_many

    n = min(len(source), max_clips)
    if n < 2:
        raise InputError("the classifier needs at least 2 clips")
    t0 = time.time()
    if isinstance(source, ClipSource):
        clips = render_many(source, range(n), workers)
    else:
        clips = [source[i] for i in range(n)]
    found = sorted({c.labels["motion"] for c in clips if "motion" in c.labels})
    classes = list(getattr(source, "motions", ()) or found)
    keep = [c for c in clips if c.labels.get("motion") in classes]
    if not keep:
        raise InputError("no clips with a motion label to train the motion classifier on")
    # uint8 cache: (N, 4, T, S, S) — 2048 clips at 64 px × 8 frames ≈ 270 MB
    data = (clips_tensor(keep, input_size, num_frames) * 255).round().to(torch.uint8)
    labels = torch.tensor([classes.index(c.labels["motion"]) for c in keep])
    render_s = time.time() - t0

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dev = torch.device(device)
    model = MotionClassifier(classes, input_size, num_frames, width, feature_dim).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    model.train()
    ema_loss, ema_acc = None, None
    for step in range(steps):
        idx = torch.randint(len(keep), (batch_size,), generator=g)
        x = data[idx].to(dev).float().div_(255)  # (B, 4, T, S, S)
        flip = torch.rand(batch_size, generator=g) < 0.5
        x[flip] = x[flip].flip(-1)
        perm = torch.randperm(3, generator=g).tolist()
        x = torch.cat([x[:, perm], x[:, 3:]], 1)
        y = labels[idx].to(dev)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        acc = (logits.argmax(1) == y).float().mean().item()
        ema_loss = loss.item() if ema_loss is None else 0.95 * ema_loss + 0.05 * loss.item()
        ema_acc = acc if ema_acc is None else 0.95 * ema_acc + 0.05 * acc
        if on_log and (step % 50 == 0 or step == steps - 1):
            on_log({"step": step, "loss": loss.item(), "train_acc": ema_acc})
    model.eval()
    model.summary = {"source": getattr(source, "name", "clips"), "clips": len(keep), "steps": steps,
                     "batch_size": batch_size, "train_loss": ema_loss, "train_acc": ema_acc,
                     "render_s": round(render_s, 2), "train_s": round(time.time() - t0 - render_s, 2)}
    return model


# ---------------------------------------------------------------------------------------------- save / load
def save_classifier(model: MotionClassifier, folder: str | os.PathLike) -> Path:
    """Write ``motion_classifier.safetensors`` + ``.json`` into ``folder`` (created); returns the folder."""
    from safetensors.torch import save

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_bytes_atomic(out / WEIGHTS_FILE, save(state))
    cfg = {"format_version": FORMAT_VERSION, **model.config(), "summary": model.summary}
    write_bytes_atomic(out / CONFIG_FILE, json.dumps(cfg, indent=2).encode())
    return out


def load_classifier(folder: str | os.PathLike, device: str | torch.device = "cpu") -> MotionClassifier:
    """Load a classifier saved by :func:`save_classifier` (eval mode); :class:`ModelError` if unusable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(folder)
    wpath, cpath = d / WEIGHTS_FILE, d / CONFIG_FILE
    if not wpath.is_file() or not cpath.is_file():
        raise ModelError(f"{d} has no motion classifier ({WEIGHTS_FILE} and {CONFIG_FILE} expected)")
    try:
        cfg = json.loads(cpath.read_text())
        if cfg.get("format_version") != FORMAT_VERSION:
            raise ModelError(f"{cpath}: unsupported classifier format {cfg.get('format_version')!r}")
        model = MotionClassifier(cfg["classes"], cfg["input_size"], cfg["num_frames"], cfg["width"],
                                 cfg["feature_dim"])
        model.load_state_dict(load_file(str(wpath)))
    except ModelError:
        raise
    except (ValueError, KeyError, TypeError, RuntimeError, OSError, SafetensorError) as e:
        raise ModelError(f"cannot load the motion classifier from {d}: {e}") from e
    model.summary = cfg.get("summary", {})
    return model.to(device).eval()
