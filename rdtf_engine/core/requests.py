"""Requests: what a caller (CLI, worker, app) asks the engine to do. Small, JSON-able dataclasses.

``from_dict`` ignores unknown keys so an older app can talk to a newer worker; validation lives in
``validate()`` and raises ``InputError`` with a message naming the bad field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from rdtf_engine.core.config import MAX_SIZE, MIN_SIZE, ModelConfig, RunControl, TrainConfig
from rdtf_engine.core.errors import InputError

MAX_FRAMES = 24  # the timeline's cap; the model itself works on windows of ``num_frames`` (8)
# Sampling defaults, chosen on the shipped default model with `rdtf eval`'s metrics (docs/results.md, session 4;
# 24 held-out clips): text guidance 7.5 → 4 raised t2v motion accuracy 79 % → 88 %; for given frames, text 4 and
# image 3 instead of 7.5 / 1.5 raised it2v identity 46 % → 71 % (strong text guidance pulls the clip towards
# the model's own idea of the words, away from the given picture). Image guidance 3 → 5 in session 8, chosen on
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
    if "from_dict" in vars(cls):  # a request with parts (TrainRequest) reads itself, old flat forms included
        return cls.from_dict(data)  # type: ignore[attr-defined]
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
    """Train a DFGN (and, if needed, its RGBA autoencoder): the architecture (``model``), what and how to learn
    (``train``), how the run executes (``run``) and, for a fine-tune, the model to start from (``init_from``: its
    DFGN weights, its autoencoder unless ``train.autoencoder`` is given, and its architecture for every
    ``model`` field left None). Serialised with ``to_dict``; ``from_dict`` also reads the flat requests of
    older apps and runs (``{"data": …, "out": …, "preset": …}``)."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    run: RunControl = field(default_factory=RunControl)
    init_from: str | None = None  # a model to fine-tune: a model folder, a run or an installed model's name

    @classmethod
    def of(cls, **flat: Any) -> TrainRequest:
        """From flat keyword arguments (``data=…, out=…, preset=…, steps=…``): each goes to its part."""
        unknown = set(flat) - _FLAT_PARTS.keys() - {"init_from"}
        if unknown:
            raise InputError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        parts: dict[str, dict[str, Any]] = {"model": {}, "train": {}, "run": {}}
        for k, v in flat.items():
            if k != "init_from":
                parts[_FLAT_PARTS[k]][k] = v
        return cls(ModelConfig(**parts["model"]), TrainConfig(**parts["train"]), RunControl(**parts["run"]),
                   flat.get("init_from"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainRequest:
        """A nested request (``to_dict``'s) or a flat one; unknown keys are ignored (older/newer callers)."""
        if not any(isinstance(data.get(k), dict) for k in ("model", "train", "run")):
            return cls.of(**{k: v for k, v in data.items() if k in _FLAT_PARTS or k == "init_from"})
        return cls(from_dict(ModelConfig, data.get("model") or {}), from_dict(TrainConfig, data.get("train") or {}),
                   from_dict(RunControl, data.get("run") or {}), data.get("init_from"))

    def validate(self) -> None:
        self.model.validate()
        self.train.validate()
        if self.train.continue_curriculum and not self.init_from:
            raise InputError("continue_curriculum needs init_from: only a fine-tune has a curriculum to continue")


# flat option name → the part of a TrainRequest that holds it
_FLAT_PARTS: dict[str, str] = {f.name: part for part, klass in (("model", ModelConfig), ("train", TrainConfig),
                                                                 ("run", RunControl))
                               for f in dataclasses.fields(klass)}


@dataclass
class ExportRequest:
    """Write a clip (animated file or folder of PNG frames) for a platform preset."""

    input: str
    preset: str
    out: str
    options: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)
