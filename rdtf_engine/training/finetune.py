"""Fine-tuning (``init_from``): the base model's architecture, weights and provenance, and what may train.

``resolve_architecture`` is the one place a fine-tune inherits its base's preset, size, temporal layer and
reference attention (CLI and app both send a request with those fields left None and get the same run).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch

from rdtf_engine.core.config import ModelCard, ModelConfig, config_reference_mode
from rdtf_engine.core.errors import TrainingError
from rdtf_engine.core.requests import TrainRequest
from rdtf_engine.model.size_deltas import PREFIXES

# Parameter-name parts of the layers a "trainable: attention" fine-tune updates (model/dfgn.py's names): the
# spatial self/cross attention (attn), the temporal attention (temp_attn) and temporal (STI) layers, conv_in's
# temporal transformer and the reference-attention blocks; about 55 % of the small preset's weights. The ResNet
# blocks, up/down sampling, embeddings and conv in/out stay the base model's.
ATTENTION_PARTS = (".attn.", ".temp_attn.", ".temporal.", "transformer_in.", ".ref_attn.")
# "trainable: text": only what maps the caption into the picture — the text projection and the keys and values
# of the text cross-attention (a "custom diffusion" style tune: a pack's captions learn their characters' look
# while every layer that draws and moves stays the base's); ≈ 5 % of the small preset's weights.
TEXT_PARTS = ("text_proj.", ".attn2.to_k.", ".attn2.to_v.")
# "trainable: deltas": only the size deltas (model/size_deltas.py): the base's draft-size network stays exact.
# "trainable: style": only the style deltas, which act on the draft size for a styled prompt alone.
# "trainable: few-step": only the few-step deltas, which a consistency-distillation run trains.
DELTAS, STYLE, FEW_STEP = PREFIXES


def init_model(name: str) -> tuple[Path, ModelCard]:
    """``init_from``: a model folder path, a run or an installed model's name → (its folder, its card)."""
    from rdtf_engine.model.store import resolve_model, validate_model_folder

    folder = resolve_model(name)
    return folder, validate_model_folder(folder)


def resolve_init(name: str) -> Path:
    return init_model(name)[0]


def base_model_config(name: str) -> ModelConfig:
    """The architecture of the model ``name`` (its reference mode from its DFGN config: older models "off")."""
    return folder_model_config(*init_model(name))


def folder_model_config(folder: Path, card: ModelCard) -> ModelConfig:
    """The architecture of a model already found and validated (``init_model``'s folder and card)."""
    unet_cfg = json.loads((folder / "unet" / "config.json").read_text("utf-8"))
    return dataclasses.replace(card.model_config(config_reference_mode(unet_cfg)),
                               size_delta_rank=int(unet_cfg.get("size_delta_rank", 0)),
                               style_delta_rank=int(unet_cfg.get("style_delta_rank", 0)),
                               few_step_rank=int(unet_cfg.get("few_step_delta_rank", 0)))


def resolve_architecture(req: TrainRequest) -> TrainRequest:
    """Every ``model`` field left None → the base model's (a fine-tune), else the default (from scratch).

    A fine-tune of a size-delta base (the shipped 256 px default: a 128 px network plus low-rank deltas that act
    at 256 px) that names no size becomes a model of the base's draft size, its plain network exactly — unless
    it trains ``draft_only``: then it keeps the base's native size, draft size and deltas."""
    base = base_model_config(req.init_from) if req.init_from else None
    keep = req.train.draft_only or req.train.objective == "consistency"  # a distilled model draws as its base
    return dataclasses.replace(req, model=req.model.resolved(base, keep_native=keep))


def init_weights(model: torch.nn.Module, req: TrainRequest, device: torch.device) -> str:
    """Copy the DFGN weights of ``req.init_from`` into ``model`` (fp16 files are upcast); → a log line.

    Only a model of the same architecture can seed a run: a preset / temporal-layer / frame-count mismatch is a
    clear TrainingError, never a silently partial load."""
    from rdtf_engine.model.store import load_model_folder

    folder = resolve_init(req.init_from)
    unet, _, card = load_model_folder(folder, device="cpu")
    mine, theirs = model.state_dict(), unet.state_dict()
    for prefix in PREFIXES:  # a fine-tune at the base's draft size, where its size deltas are off (and its style
        if not any(k.startswith(prefix) for k in mine):  # deltas, tag-only, are left behind)
            theirs = {k: v for k, v in theirs.items() if not k.startswith(prefix)}
    # Reference-attention blocks ("all") and size or style deltas that the base predates keep their fresh init:
    # zero output = identity.
    new = [k for k in mine if k not in theirs and (".ref_attn." in k or k.startswith(PREFIXES))]
    bad = [k for k in mine if k not in new and (k not in theirs or theirs[k].shape != mine[k].shape)]
    if bad or len(theirs) != len(mine) - len(new):
        m = req.model
        raise TrainingError(f"--init-from {req.init_from}: its network ({card.preset}, {card.temporal}, "
                            f"{card.num_frames} frames) does not match this run ({m.preset}, {m.temporal}, "
                            f"{m.num_frames} frames); first mismatch: {(bad or ['extra keys'])[0]}")
    model.load_state_dict({k: v.to(device=device, dtype=mine[k].dtype) for k, v in theirs.items()}, strict=not new)
    kinds = {"reference-attention": sum(".ref_attn." in k for k in new), "size-delta": sum(k.startswith(DELTAS) for k in new),
             "style-delta": sum(k.startswith(STYLE) for k in new),
             "few-step-delta": sum(k.startswith(FEW_STEP) for k in new)}
    grown = "".join(f"; {n} new {kind} tensors start as identity" for kind, n in kinds.items() if n)
    return f"initialised from {folder} ({card.name}, {card.base_steps + card.steps} steps){grown}"


def apply_trainable(model: torch.nn.Module, trainable: str, keep_deltas: bool = False) -> int:
    """Freeze what ``trainable`` keeps fixed ("all": nothing); → the number of trainable parameters.
    ``keep_deltas`` (a draft-only fine-tune): the size and style deltas stay frozen too, whatever else trains."""
    parts = {"attention": ATTENTION_PARTS, "text": TEXT_PARTS, "deltas": ("." + DELTAS,),
             "style": ("." + STYLE,), "few-step": ("." + FEW_STEP,)}.get(trainable, ())
    for name, p in model.named_parameters():
        kept = keep_deltas and name.startswith(PREFIXES)
        p.requires_grad_(not kept and (trainable == "all" or any(part in f".{name}" for part in parts)))
    n = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if n == 0:
        raise TrainingError(f"trainable={trainable!r} leaves no parameter of this network to train")
    return n


# How a base with a draft size draws (ModelCard): a fine-tune that keeps the base's draft size and deltas draws
# the same way, so these card fields travel with it.
DRAWING_FIELDS = ("draft_given", "refine_strength", "refine_guidance")
# A consistency-distilled model is its base plus few-step deltas: it draws everything else exactly as its base.
GUIDANCE_FIELDS = ("guidance_text", "guidance_image")
DISTILLED_FIELDS = (*DRAWING_FIELDS, *GUIDANCE_FIELDS, "style_tag", "style_given", "style_below_t")


def inherited_card(req: TrainRequest, run_dir: Path) -> tuple[ModelCard, bool]:
    """(the card a fine-tune inherits from, whether it is the run's own): the base's, or on resume the run's own
    exported model's — the base may be gone by then, and the run's card remembers what it inherited."""
    from rdtf_engine.model.store import validate_model_folder

    own = run_dir / "model"
    if req.run.resume and (own / "config.json").is_file():
        return validate_model_folder(own), True
    return init_model(req.init_from)[1], False


def drawing_of(req: TrainRequest, run_dir: Path) -> dict:
    """The card fields a fine-tune inherits from its base ({} without ``init_from``): a consistency-distillation
    run all its ``DISTILLED_FIELDS``; any other fine-tune the base's guidance where the run asks none (a pack model
    tuned again keeps the guidance it was measured at), plus its ``DRAWING_FIELDS`` when it keeps the base's draft
    size."""
    if not req.init_from:
        return {}
    card, _ = inherited_card(req, run_dir)
    if req.train.objective == "consistency":
        return {k: getattr(card, k) for k in DISTILLED_FIELDS}
    drawing = {k: getattr(card, k) for k in GUIDANCE_FIELDS if not getattr(req.train, k) and getattr(card, k)}
    if req.model.draft_size and int(card.draft_size or 0) == int(req.model.draft_size):
        drawing.update({k: getattr(card, k) for k in DRAWING_FIELDS})
    return drawing


def base_of(req: TrainRequest, run_dir: Path) -> tuple[str, int]:
    """(base model name, its total steps) recorded in the cards of a run started with ``init_from``."""
    if not req.init_from:
        return "", 0
    card, own = inherited_card(req, run_dir)
    return (card.base_model, card.base_steps) if own else (card.name, card.base_steps + card.steps)
