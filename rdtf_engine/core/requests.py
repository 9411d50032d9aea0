"""Requests: what a caller (CLI, worker, app) asks the engine to do. Small, JSON-able dataclasses.

``from_dict`` ignores unknown keys so an older app can talk to a newer worker; validation lives in
``validate()`` and raises ``InputError`` with a message naming the bad field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rdtf_engine.core.errors import InputError

MAX_FRAMES = 24  # the timeline's cap; the model itself works on windows of ``num_frames`` (8)
MIN_SIZE, MAX_SIZE = 32, 512
# Sampling defaults, chosen on the shipped default model with `rdtf eval`'s metrics (docs/results.md, round 4;
# 24 held-out clips): text guidance 7.5 → 4 raised t2v motion accuracy 79 % → 88 %; for given frames, text 4 and
# image 3 instead of 7.5 / 1.5 raised it2v identity 46 % → 71 % (strong text guidance pulls the clip towards
# the model's own idea of the words, away from the given picture). Image guidance 3 → 5 was chosen on
# `builtin:emoji-dev` with the reference-attention model (it2v identity 78 → 84 %, motion 81 → 84 %, 32 clips).
DEFAULT_GUIDANCE_TEXT = 4.0
DEFAULT_GUIDANCE_IMAGE = 5.0
# With frames given, the share of the sampling steps run from the given frames' noised prior (img2img strength).
DEFAULT_STRENGTH = 1.0

T = TypeVar("T")


def check_strength(strength: float) -> None:
    """img2img strength is a share of the sampling steps: (0, 1]."""
    if not 0.0 < float(strength) <= 1.0:
        raise InputError(f"strength must be above 0 and at most 1, got {strength}")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


def to_dict(obj: Any) -> dict[str, Any]:
    return dataclasses.asdict(obj)


@dataclass
class GenerateRequest:
    """Text (+ optional condition frames) → RGBA frames.

    ``cond_frames`` are paths to RGBA images (or None) per output frame slot: the frames the user locked or
    gave (start/end image). A slot with a path is a "1" in the condition mask. ``init_image`` is shorthand for
    "frame 0 given" (image&text→video).
    """

    prompt: str
    model: str = "default"
    frames: int = 8
    size: int = 256
    steps: int = 20
    seed: int | None = None
    guidance_text: float = DEFAULT_GUIDANCE_TEXT
    guidance_image: float = DEFAULT_GUIDANCE_IMAGE
    strength: float = DEFAULT_STRENGTH  # with frames given: share of the steps run from their prior (img2img)
    scheduler: str = "dpm"  # "dpm" (DPM-Solver++, fast default) | "ddim" (the paper's 50-step sampler)
    duration_ms: int = 100
    init_image: str | None = None
    cond_frames: list[str | None] = field(default_factory=list)
    out: str | None = None
    device: str = "auto"
    preview_every: int = 0  # >0: Preview events with the current estimate every N denoising steps

    def validate(self) -> None:
        if not isinstance(self.prompt, str):
            raise InputError("prompt must be text")
        if not (1 <= int(self.frames) <= MAX_FRAMES):
            raise InputError(f"frames must be between 1 and {MAX_FRAMES}, got {self.frames}")
        if not (MIN_SIZE <= int(self.size) <= MAX_SIZE) or int(self.size) % 8:
            raise InputError(f"size must be a multiple of 8 between {MIN_SIZE} and {MAX_SIZE}, got {self.size}")
        if not (1 <= int(self.steps) <= 1000):
            raise InputError(f"steps must be between 1 and 1000, got {self.steps}")
        if self.scheduler not in ("dpm", "ddim"):
            raise InputError(f"scheduler must be 'dpm' or 'ddim', got {self.scheduler!r}")
        if not (0.0 <= float(self.guidance_text) <= 30.0 and 0.0 <= float(self.guidance_image) <= 30.0):
            raise InputError("guidance scales must be between 0 and 30")
        check_strength(self.strength)
        if not (8 <= int(self.duration_ms) <= 10_000):
            raise InputError(f"duration_ms must be between 8 and 10000, got {self.duration_ms}")
        if self.cond_frames and len(self.cond_frames) != int(self.frames):
            raise InputError(f"cond_frames has {len(self.cond_frames)} slots but frames is {self.frames}")


@dataclass
class TrainRequest:
    """Train a DFGN (and, if needed, its RGBA autoencoder) on a data source.

    ``data``: a folder/zip of stickers, an imported dataset folder, or ``builtin:shapes`` / ``builtin:emoji``.
    ``autoencoder``: a folder with a trained autoencoder; None trains one first (``ae_steps``).
    """

    data: str
    out: str
    preset: str = "tiny"
    steps: int = 1000
    batch_size: int = 4
    lr: float = 2e-4
    size: int = 64
    num_frames: int = 8
    seed: int = 0
    resume: bool = False
    dual_mask: bool = True
    curriculum: str = "adaptive"  # "none" | "linear" | "adaptive" (the paper's Table 4 arms)
    temporal: str = "sti"  # "sti" | "conv3d" (the paper's Table 3 ablation)
    # DFGN reference attention (model/reference.py): "off" | "on" | "all" (a bool from older runs: True = "on");
    # None = init_from's, else off
    reference_attention: str | bool | None = None
    autoencoder: str | None = None
    init_from: str | None = None  # a model to fine-tune: its DFGN weights (and its autoencoder unless given)
    continue_curriculum: bool = False  # with init_from: take up the base's curriculum instead of restarting it
    ae_steps: int = 500
    grad_accum: int = 1
    ema_decay: float = 0.999
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU) | "no" | "bf16" | "fp16"
    sample_every: int = 0  # 0 = never
    checkpoint_every: int = 100
    max_minutes: float = 0.0  # >0: stop cleanly (with a checkpoint) after this wall time, for chunked runs
    max_clips: int = 0  # 0 = all clips of the source
    device: str = "auto"

    def validate(self) -> None:
        from rdtf_engine.core.config import (  # local: config imports nothing heavy, but keep requests light
            PRESETS,
            reference_mode,
        )

        if self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.curriculum not in ("none", "linear", "adaptive"):
            raise InputError(f"curriculum must be none, linear or adaptive, got {self.curriculum!r}")
        if self.temporal not in ("sti", "conv3d"):
            raise InputError(f"temporal must be sti or conv3d, got {self.temporal!r}")
        reference_mode(self.reference_attention)
        if self.continue_curriculum and not self.init_from:
            raise InputError("continue_curriculum needs init_from: only a fine-tune has a curriculum to continue")
        if int(self.steps) < 1 or int(self.batch_size) < 1 or int(self.grad_accum) < 1:
            raise InputError("steps, batch_size and grad_accum must be at least 1")
        if not (MIN_SIZE <= int(self.size) <= MAX_SIZE) or int(self.size) % 8:
            raise InputError(f"size must be a multiple of 8 between {MIN_SIZE} and {MAX_SIZE}, got {self.size}")
        if not (2 <= int(self.num_frames) <= 16):
            raise InputError(f"num_frames must be between 2 and 16, got {self.num_frames}")
        if not (float(self.lr) > 0):
            raise InputError("lr must be positive")


@dataclass
class ExportRequest:
    """Write a clip (animated file or folder of PNG frames) for a platform preset."""

    input: str
    preset: str
    out: str
    options: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
