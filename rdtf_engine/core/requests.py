"""Requests: what a caller (CLI, worker, app) asks the engine to do. Small, JSON-able dataclasses.

Every job is described by exactly one of them, from the app's click (or the CLI's parse) to the pixels:
``GenerateRequest``, ``TrainRequest``, ``ImportRequest``, ``ExportRequest``, ``PackExportRequest``,
``CheckRequest``, ``ModelsRequest``, ``DeviceRequest`` and ``PackRequest``. On the worker's wire a request is
``{"op": OP, "params": to_dict(req)}`` (``to_wire`` / ``from_wire``); ``from_dict`` ignores unknown keys so an
older app can talk to a newer worker.
Validation lives in ``validate()`` (``InputError`` naming the bad field) and runs once, where a request enters
the engine: the CLI's parse or the worker's receive. Everything below passes the request on untouched.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from rdtf_engine.core.config import MAX_SEED, MAX_SIZE, MIN_SIZE, ModelCard, ModelConfig, RunControl, TrainConfig
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.model_schema import CARD_SCHEMA
from rdtf_engine.core.request_fields import check_field_types, from_dict, to_dict

MAX_FRAMES = 24  # the timeline's cap; the model itself works on windows of ``num_frames`` (8)
# Sampling defaults, chosen on the shipped default model with `rdtf eval`'s metrics (docs/results.md, round 4;
# 24 held-out clips): text guidance 7.5 → 4 raised t2v motion accuracy 79 % → 88 %; for given frames, text 4 and
# image 3 instead of 7.5 / 1.5 raised it2v identity 46 % → 71 % (strong text guidance pulls the clip towards
# the model's own idea of the words, away from the given picture). Image guidance 3 → 5 was chosen on
# `builtin:emoji-dev` with the reference-attention model (it2v identity 78 → 84 %, motion 81 → 84 %, 32 clips).
DEFAULT_GUIDANCE_TEXT = 4.0
DEFAULT_GUIDANCE_IMAGE = 5.0
# With frames given, the share of the sampling steps run from the given frames' noised prior (img2img strength).
DEFAULT_STRENGTH = 1.0

# The text encoder reads the first 32 tokens (about 25 words); a longer prompt is cut, and one over this many
# characters is refused before any work, so a pasted essay fails in a second, not after sampling.
MAX_PROMPT_CHARS = 1000

_DEVICE = re.compile(r"(cpu|cuda|mps)(:\d{1,3})?")


def _check_device(device: Any) -> None:
    """The device name's spelling here (no torch import: validating a request must stay instant, e.g. in the
    worker); whether this machine has a requested GPU is asked of torch only when one is named."""
    if device == "auto" or device == "cpu":
        return
    if not isinstance(device, str) or not _DEVICE.fullmatch(device):
        raise InputError(f"unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps")
    from rdtf_engine.core.device import check_device  # local: loads torch, and only for a named GPU

    check_device(device)


def check_strength(strength: float) -> None:
    """img2img strength is a share of the sampling steps: (0, 1]."""
    if not 0.0 < float(strength) <= 1.0:
        raise InputError(f"strength must be above 0 and at most 1, got {strength}")


def model_guidance(card: ModelCard, requested: float | None = None) -> float:
    """The text guidance a sticker is drawn with: the one asked for, else the model's own (a fine-tune's recipe
    may save one in its card), else DEFAULT_GUIDANCE_TEXT."""
    if requested is not None:
        return float(requested)
    return float(card.guidance_text or DEFAULT_GUIDANCE_TEXT)


def model_image_guidance(card: ModelCard, requested: float | None = None) -> float:
    """The image guidance frames given to a sticker are held with: the one asked for, else the model's own (saved
    in its card by its training run), else DEFAULT_GUIDANCE_IMAGE."""
    if requested is not None:
        return float(requested)
    return float(card.guidance_image or DEFAULT_GUIDANCE_IMAGE)


def with_refine_guidance(card: ModelCard, requested: float | None = None) -> ModelCard:
    """``card`` with text → video's refinement drawn at ``requested`` guidance (``ModelCard.refine_guidance``; 0 =
    the sample's own), or unchanged for None: how an evaluation measures another refinement on the same weights."""
    if requested is None:
        return card
    bound = CARD_SCHEMA["refine_guidance"]  # the range a card may hold: one source for the card and the request
    if not bound.lo <= float(requested) <= bound.hi:
        raise InputError(f"refine guidance must be {bound.lo:g} (the sample's own) up to {bound.hi:g}, got {requested}")
    return dataclasses.replace(card, refine_guidance=float(requested))


def check_drawing(frames: int, size: int, scheduler: str | None) -> None:
    """The frame count, pixel size and sampler of a sticker to draw: one set of bounds for a sticker
    (``GenerateRequest``) and for getting ready to draw one (``PrepareRequest``)."""
    if not (1 <= int(frames) <= MAX_FRAMES):
        raise InputError(f"frames must be between 1 and {MAX_FRAMES}, got {frames}")
    if not (MIN_SIZE <= int(size) <= MAX_SIZE) or int(size) % 8:
        raise InputError(f"size must be a multiple of 8 between {MIN_SIZE} and {MAX_SIZE}, got {size}")
    if scheduler is not None and scheduler not in SCHEDULERS:
        raise InputError(f"scheduler must be one of {', '.join(SCHEDULERS)}, got {scheduler!r}")


def _need(req: Any, *names: str) -> None:
    missing = [n for n in names if not getattr(req, n)]
    if missing:
        raise InputError(f"{OPS[type(req)]} needs {' and '.join(repr(n) for n in missing)}")


# Samplers a generation can use (diffusion/schedule.py builds them): DPM-Solver++ 2M, UniPC (bh2, 2nd order),
# DDIM with η = 1 (the paper's 50-step sampler), and "lcm", the few-step sampler of a model with consistency-
# distilled few-step deltas (LCMScheduler; one unguided denoiser call a step, FEW_STEPS of them unless asked).
SCHEDULERS = ("dpm", "unipc", "ddim", "lcm")
FEW_STEPS = 4
# A request that names no sampler or step count gets the one measured best for its task (48 held-out clips,
# docs/performance.md): text alone → UniPC in 10 steps, as good as DPM-Solver++ in 20 (motion, FD, identity of
# seen emoji) at half the time; frames given → DPM-Solver++ 20, because UniPC 10 keeps fewer of the given
# characters (70.8 % against 89.6 %).
AUTO_SAMPLER = {False: ("unipc", 10), True: ("dpm", 20)}  # frames given? → (scheduler, steps)
DEFAULT_STEPS = 20  # a named sampler's steps when none are given (UniPC's 10 is for text alone)


def model_few_steps(card: ModelCard) -> int:
    """The few-step sampler's step count for a model: its card's ``few_step_steps``, else FEW_STEPS."""
    return int(getattr(card, "few_step_steps", 0) or FEW_STEPS)


def sampling(scheduler: str | None, steps: int | None, frames_given: bool, few_steps: int = 0) -> tuple[str, int]:
    """The sampler and step count a generation runs: the request's where given, else the task's default
    (``few_steps``: the model card's ``few_step_steps``, what "lcm" runs unasked; 0 = ``FEW_STEPS``)."""
    auto, auto_steps = AUTO_SAMPLER[bool(frames_given)]
    sched = scheduler or auto
    if steps:
        return sched, int(steps)
    if sched == "lcm":
        return sched, int(few_steps or FEW_STEPS)
    return sched, auto_steps if sched == auto else DEFAULT_STEPS


@dataclass
class GenerateRequest:
    """Text (+ optional condition frames) → RGBA frames.

    ``cond_frames`` are paths to RGBA images (or None) per output frame slot: the frames the user locked or
    gave (start/end image). A slot with a path is a "1" in the condition mask. ``init_image`` is shorthand for
    "frame 0 given" (image&text→video). ``model`` is a shipped model's name, a user model's name or a model
    folder; ``model_sha256`` (optional, from a sticker's recipe) names the exact weights that made a sticker.
    """

    prompt: str
    model: str = "default"
    frames: int = 8
    size: int = 256
    steps: int | None = None  # None: the task's default (``sampling``), recorded resolved
    seed: int | None = None
    guidance_text: float | None = None  # None: the model's own (model_guidance), recorded resolved
    guidance_image: float | None = None  # None: the model's own (model_image_guidance), recorded resolved
    strength: float = DEFAULT_STRENGTH  # with frames given: share of the steps run from their prior (img2img)
    # one of SCHEDULERS: "dpm" (DPM-Solver++ 2M) | "unipc" | "ddim" (the paper's) | "lcm" (a distilled model's few
    # steps); None: the task's (``sampling``)
    scheduler: str | None = None
    duration_ms: int = 100
    init_image: str | None = None
    cond_frames: list[str | None] = field(default_factory=list)
    out: str | None = None
    device: str = "auto"
    preview_every: int = 0  # >0: Preview events with the current estimate every N denoising steps
    frames_dir: str | None = None  # worker: the folder the result's PNG frames go to (default: a temp folder)
    model_sha256: str | None = None

    def validate(self) -> None:
        check_field_types(self)
        if not isinstance(self.prompt, str):
            raise InputError("prompt must be text")
        if not all(p is None or isinstance(p, str) for p in self.cond_frames):
            raise InputError("cond_frames must be a list of file paths or nulls")
        if len(self.prompt) > MAX_PROMPT_CHARS:
            raise InputError(f"prompt is {len(self.prompt):,} characters; at most {MAX_PROMPT_CHARS:,} "
                             "(the model reads only its first 32 tokens, about 25 words)")
        if self.seed is not None and not (isinstance(self.seed, int) and 0 <= self.seed <= MAX_SEED):
            raise InputError(f"seed must be a whole number between 0 and {MAX_SEED}, got {self.seed}")
        check_drawing(self.frames, self.size, self.scheduler)
        if self.steps is not None and not (1 <= int(self.steps) <= 1000):
            raise InputError(f"steps must be between 1 and 1000, got {self.steps}")
        text = DEFAULT_GUIDANCE_TEXT if self.guidance_text is None else float(self.guidance_text)
        image = DEFAULT_GUIDANCE_IMAGE if self.guidance_image is None else float(self.guidance_image)
        if not (0.0 <= text <= 30.0 and 0.0 <= image <= 30.0):
            raise InputError("guidance scales must be between 0 and 30")
        check_strength(self.strength)
        if not (8 <= int(self.duration_ms) <= 10_000):
            raise InputError(f"duration_ms must be between 8 and 10000, got {self.duration_ms}")
        if self.cond_frames and len(self.cond_frames) != int(self.frames):
            raise InputError(f"cond_frames has {len(self.cond_frames)} slots but frames is {self.frames}")
        _check_device(self.device)

    @property
    def gives_frames(self) -> bool:
        """Whether a frame is given (a start image or a locked slot): image & text → video, with a third guidance
        row — what decides, with frames and size, which denoiser graphs the request builds."""
        return bool(self.init_image) or any(self.cond_frames or [])

    def recipe(self, seed: int, model: str, model_sha256: str | None, locked: list[int]) -> dict[str, Any]:
        """What a written sticker carries: this request's settings with the seed resolved and the model named
        by its identity (name + weights hash). No local paths: given frames come from the sticker itself
        (``locked`` lists their indices), the output and the device are the writer's business."""
        rec = {k: v for k, v in to_dict(self).items() if k not in LOCAL_FIELDS}
        rec.update(seed=int(seed), model=model, model_sha256=model_sha256, locked=list(locked))
        return rec

    @classmethod
    def from_recipe(cls, recipe: dict[str, Any], **overrides: Any) -> GenerateRequest:
        """The request that regenerates a sticker from its recipe (given frames: pass ``cond_frames``)."""
        return from_dict(cls, {**{k: v for k, v in recipe.items() if k not in LOCAL_FIELDS}, **overrides})


# Request fields that name local things (files, folders, the device, UI cadence): never embedded in a sticker.
LOCAL_FIELDS = ("init_image", "cond_frames", "out", "device", "preview_every", "frames_dir")


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
        for part in (self.model, self.train, self.run):
            check_field_types(part)  # JSON types first: a request file or the app is never trusted
        self.model.validate()
        self.train.validate()
        self.run.validate()
        if int(self.train.ae_steps) < (0 if (self.train.autoencoder or self.init_from) else 1):
            raise InputError(f"ae_steps must be at least 1 (0 only with autoencoder or init_from), "
                             f"got {self.train.ae_steps}")
        if int(self.train.decoder_steps) and not (self.train.autoencoder or self.init_from):
            raise InputError("decoder_steps tunes the decoder of an existing autoencoder: it needs init_from or "
                             "autoencoder (a run from scratch trains its whole autoencoder: ae_steps)")
        _check_device(self.run.device)
        if self.train.continue_curriculum and not self.init_from:
            raise InputError("continue_curriculum needs init_from: only a fine-tune has a curriculum to continue")
        if self.train.objective == "consistency" and not (self.init_from and int(self.model.few_step_rank or 0)):
            raise InputError("consistency distillation needs the model it distils (init_from) and few-step deltas "
                             "to distil it into (few_step_rank)")
        if self.train.draft_only and not self.init_from:
            raise InputError("draft_only trains the draft network of a model that drafts at a smaller size: it needs "
                             "init_from such a model")


# flat option name → the part of a TrainRequest that holds it
_FLAT_PARTS: dict[str, str] = {f.name: part for part, klass in (("model", ModelConfig), ("train", TrainConfig),
                                                                 ("run", RunControl))
                               for f in dataclasses.fields(klass)}


@dataclass
class ImportRequest:
    """A folder / zip / single sticker file → a training dataset folder (``captions.csv`` + normalised clips)."""

    path: str
    out: str
    size: int = 256
    max_frames: int = 48

    def validate(self) -> None:
        check_field_types(self)  # argparse gives [] for `--max-frames=--`: a type error, not a traceback
        _need(self, "path", "out")
        if not (MIN_SIZE <= int(self.size) <= MAX_SIZE):
            raise InputError(f"size must be between {MIN_SIZE} and {MAX_SIZE}, got {self.size}")
        if int(self.max_frames) < 1:
            raise InputError(f"max_frames must be at least 1, got {self.max_frames}")


@dataclass
class ExportRequest:
    """Write a clip (animated file or folder of PNG frames) for a platform preset. ``recipe``: what the file
    carries (a sticker's recipe, see ``GenerateRequest.recipe``)."""

    input: str
    preset: str
    out: str
    options: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check_field_types(self)
        _need(self, "input", "preset", "out")


@dataclass
class PackExportRequest:
    """Export a whole sticker pack folder (``pack.json``) with a pack preset (``whatsapp-pack``...) to ``out``
    (a .wastickers / .zip file or a folder); ``check_only``: report every problem, write nothing."""

    folder: str
    preset: str
    out: str = ""
    check_only: bool = False

    def validate(self) -> None:
        check_field_types(self)
        _need(self, "folder", "preset")
        if not self.check_only and not self.out:
            raise InputError("export-pack needs 'out' (or check_only)")


@dataclass
class CheckRequest:
    """Does a file meet a platform preset's rules?"""

    path: str
    preset: str

    def validate(self) -> None:
        check_field_types(self)
        _need(self, "path", "preset")


@dataclass
class ModelsRequest:
    """List the installed models; ``dirs``: extra folders of user models or training runs (the app's)."""

    dirs: list[str] = field(default_factory=list)

    def validate(self) -> None:
        check_field_types(self)
        if not all(isinstance(d, str) for d in self.dirs):
            raise InputError("models: dirs must be a list of folder paths")


@dataclass
class DeviceRequest:
    """What the engine computes on (CPU or a GPU, its memory)."""

    def validate(self) -> None:
        return None


@dataclass
class PrepareRequest:
    """Get ready to draw stickers the way ``generate`` would with this model, frame count and size (and a given
    frame or not): load the model and its text encoder and build the denoiser's runtime for those shapes (ONNX
    Runtime sessions or OpenVINO graphs on a CPU, exporting them the first time; CUDA graphs on a GPU), by
    drawing one step of each stage and dropping the result. The app sends it to its engine worker when it opens
    and when another model is picked, so the first sticker takes what every later one takes."""

    model: str = "default"
    frames: int = 8
    size: int = 256
    given: bool = False  # a start image or a kept frame will be given (a third guidance row)
    scheduler: str | None = None  # the sampler the stickers will name (None: the task's); "lcm" has its own graphs
    device: str = "auto"

    def validate(self) -> None:
        check_field_types(self)
        _need(self, "model")
        check_drawing(self.frames, self.size, self.scheduler)
        _check_device(self.device)


PACK_ACTIONS = ("new", "fill", "regen")


@dataclass
class PackRequest:
    """Make or remake stickers of a pack folder (``packs/project.py``), one after another.

    ``new``: start a pack in ``folder`` from ``character`` (an image file, or else a prompt the character is
    generated from once) with one sticker per ``motions`` entry, then make them all; on a folder that already
    holds a pack it resumes (adds motions it lacks, makes what is missing). ``fill``: make every sticker not
    made yet. ``regen``: remake the stickers ``ids`` (empty: every unlocked one), with ``seed`` (one sticker)
    or a fresh random seed each (``reroll``), else with their stored seeds. ``model`` empty: the pack's own.
    ``size`` 0: the model's own size."""

    action: str
    folder: str
    character: str = ""
    motions: list[str] = field(default_factory=list)
    title: str = ""
    author: str = ""
    model: str = ""
    seed: int | None = None
    ids: list[str] = field(default_factory=list)
    reroll: bool = False
    frames: int = 8
    steps: int = 20
    size: int = 0
    device: str = "auto"

    def validate(self) -> None:
        check_field_types(self)
        if self.action not in PACK_ACTIONS:
            raise InputError(f"pack action must be one of {', '.join(PACK_ACTIONS)}, got {self.action!r}")
        _need(self, "folder")
        if self.action == "new" and not self.character.strip():
            raise InputError("a new pack needs a character: a picture file or a prompt")
        if len(self.character) > MAX_PROMPT_CHARS or len(self.title) > 128 or len(self.author) > 128:
            raise InputError("pack character, title or author is too long")
        if not all(isinstance(m, str) and 0 < len(m) <= 200 for m in self.motions) or len(self.motions) > 120:
            raise InputError("motions must be at most 120 texts of 1-200 characters")
        if not all(isinstance(i, str) for i in self.ids):
            raise InputError("ids must be a list of sticker ids")
        if self.seed is not None and not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"seed must be a whole number between 0 and {MAX_SEED}, got {self.seed}")
        if self.action == "regen" and self.seed is not None and len(self.ids) != 1:
            raise InputError("a seed can be given when regenerating one sticker, not several")
        if not (1 <= self.frames <= MAX_FRAMES) or not (1 <= self.steps <= 1000):
            raise InputError(f"frames must be 1-{MAX_FRAMES} and steps 1-1000")
        if self.size and (not MIN_SIZE <= self.size <= MAX_SIZE or self.size % 8):
            raise InputError(f"size must be 0 (the model's) or a multiple of 8 between {MIN_SIZE} and {MAX_SIZE}")
        _check_device(self.device)


Request = (GenerateRequest | TrainRequest | ImportRequest | ExportRequest | PackExportRequest | CheckRequest
           | ModelsRequest | DeviceRequest | PrepareRequest | PackRequest)
# The worker's op name for each request type (and back).
OPS: dict[type, str] = {GenerateRequest: "generate", TrainRequest: "train", ImportRequest: "import",
                        ExportRequest: "export", PackExportRequest: "export-pack", CheckRequest: "check",
                        ModelsRequest: "models", DeviceRequest: "device", PrepareRequest: "prepare",
                        PackRequest: "pack"}
REQUESTS: dict[str, type] = {op: cls for cls, op in OPS.items()}


def to_wire(req: Request) -> tuple[str, dict[str, Any]]:
    """A request → (op, params) for one protocol line."""
    return OPS[type(req)], to_dict(req)


def from_wire(op: str, params: dict[str, Any]) -> Request:
    """(op, params) from a protocol line → the typed request (not validated yet: the receiver does that)."""
    cls = REQUESTS.get(op)
    if cls is None:
        raise InputError(f"unknown op {op!r}")
    return from_dict(cls, params or {})


@dataclass
class Job:
    """One request with the id its caller gave it: what the app submits and the worker queues and runs."""

    id: str
    request: Request
    stop: threading.Event = field(default_factory=threading.Event, repr=False, compare=False)
    dropped: bool = False  # worker: cancelled while queued, already answered, never run

    @property
    def op(self) -> str:
        return OPS[type(self.request)]

    def to_wire(self) -> dict[str, Any]:
        op, params = to_wire(self.request)
        return {"id": self.id, "op": op, "params": params}
