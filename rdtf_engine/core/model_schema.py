"""Typed, bounded schemas for the JSON files of a model folder (card, DFGN config, autoencoder config, index).

A model folder comes from anywhere (a download, a friend's training run), so its JSON is parsed like any other
hostile input: each file is read with a byte cap and strict UTF-8, must be a JSON object without duplicate
keys, and every field the loader uses is checked for its type and range *before* anything is built from it.
A bad value is a ``ModelError`` naming the file and the field (``unet/config.json: block_out_channels[2] must
be an integer in 1..4096, got 1e+30``), never an allocation or a library traceback. Unknown keys are ignored
everywhere (diffusers adds ``_class_name``/``_diffusers_version``; newer engines may add fields); only the
checked fields are passed on, so nothing unchecked reaches a constructor.

Ranges are generous for real models (the 0.96 B ``paper`` preset fits with room) and small enough that no
single field can ask for an absurd buffer (e.g. ``num_train_timesteps`` ≤ 10,000 instead of a 4 GB β table).
Weight shapes are not trusted from the config either: the loader builds the network without memory and
compares every parameter shape with the safetensors headers (store.py).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rdtf_engine.core.config import CURRICULA, PRESETS, DiffusionConfig, ModelCard, TextConfig
from rdtf_engine.core.errors import ModelError

MAX_CONFIG_BYTES = 1 << 20  # a card with a data summary is ~4 KB; configs ~1 KB
MAX_INDEX_BYTES = 16 << 20  # the index of the paper preset (≈ 2,000 tensors) is ~200 KB
MAX_TEXT = 4096  # characters in any free-text field


@dataclass(frozen=True)
class Field:
    """One JSON field: ``kind`` int | float | bool | str | list | dict; numbers in [lo, hi]; str in ``choices``
    (or any string up to MAX_TEXT); list items checked by ``item`` with a length in [min_len, max_len]."""

    kind: str
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] = ()
    item: Field | None = None
    min_len: int = 0
    max_len: int = 0
    nullable: bool = False
    required: bool = False


def _int(lo: int, hi: int, required: bool = False) -> Field:
    return Field("int", lo, hi, required=required)


def _float(lo: float, hi: float, nullable: bool = False) -> Field:
    return Field("float", lo, hi, nullable=nullable)


def _list(item: Field, min_len: int, max_len: int) -> Field:
    return Field("list", item=item, min_len=min_len, max_len=max_len)


BOOL = Field("bool")
TEXT = Field("str")
CHANNELS = _int(1, 4096)

TEXT_SCHEMA = {
    "encoder": Field("str", choices=(TextConfig.encoder,)),
    "embed_dim": _int(1, 4096),
    "max_tokens": _int(1, 512),
    "word_dropout": _float(0.0, 1.0),
    "uncond_prob": _float(0.0, 1.0),
}
DIFFUSION_SCHEMA = {
    "num_train_timesteps": _int(2, 10_000),
    "beta_start": _float(1e-8, 0.5),
    "beta_end": _float(1e-8, 0.999),
    "beta_schedule": Field("str", choices=("linear", "scaled_linear", "squaredcos_cap_v2")),
    "prediction_type": Field("str", choices=("epsilon", "v_prediction", "sample")),
}
CARD_SCHEMA = {
    "name": Field("str", required=True),
    "preset": Field("str", choices=PRESETS, required=True),
    "size": _int(8, 2048, required=True),
    "num_frames": _int(1, 256, required=True),
    "temporal": Field("str", choices=("sti", "conv3d")),
    "dual_mask": BOOL,
    "curriculum": Field("str", choices=CURRICULA),
    "steps": _int(0, 10**12),
    "data": TEXT,
    "data_summary": Field("dict"),
    "text": Field("dict"),
    "diffusion": Field("dict"),
    "latent_scale": _float(1e-6, 1e6),
    "base_model": TEXT,
    "base_steps": _int(0, 10**12),
    "guidance_text": _float(0.0, 30.0),
    "guidance_image": _float(0.0, 30.0),
    "draft_size": _int(0, 2048),
    "anchor": TEXT,
    "motion_weight": _float(0.0, 100.0),
    "refine_strength": _float(0.05, 1.0),
    "refine_guidance": _float(0.0, 30.0),
    "draft_given": BOOL,
    "style_tag": TEXT,
    "style_given": BOOL,
    "style_below_t": _int(1, 1000),
    "few_step_steps": _int(0, 50),
    "few_step_guidance": _float(0.0, 30.0),
    "refine_sampler": Field("str", choices=("", "lcm")),
    "created": TEXT,
    "engine_version": TEXT,
}
# DFGN.__init__ arguments (model/dfgn.py). Level count ≤ 6: the latent grid is 8× smaller than the frame.
UNET_SCHEMA = {
    "sample_channels": _int(1, 64),
    "cond_channels": _int(1, 64),
    "out_channels": _int(1, 64),
    "block_out_channels": _list(CHANNELS, 1, 6),
    "layers_per_block": _int(1, 8),
    "cross_attn_levels": _list(BOOL, 1, 6),
    "attention_head_dim": _int(1, 1024),
    "text_embed_dim": _int(1, 4096),
    "cross_attention_dim": CHANNELS,
    "num_frames": _int(1, 256),
    "temporal_layer": Field("str", choices=("sti", "conv3d")),
    "sti_heads": _int(1, 128),
    "sti_head_dim": _int(1, 1024),
    "sti_out_norm": BOOL,
    "norm_num_groups": _int(1, 1024),
    "cond_hidden": _int(1, 4096),
    "cond_heads": _int(1, 128),
    "reference_attention": BOOL,
    "reference_attention_all_levels": BOOL,
    "size_delta_rank": _int(0, 256),
    "size_delta_off_latent": _int(0, 256),
    "style_delta_rank": _int(0, 256),
    "few_step_delta_rank": _int(0, 256),
}
# diffusers AutoencoderKL arguments this engine writes (RGBA in/out, 4 latent channels).
VAE_SCHEMA = {
    "in_channels": _int(1, 64),
    "out_channels": _int(1, 64),
    "latent_channels": _int(1, 64),
    "block_out_channels": _list(CHANNELS, 1, 6),
    "down_block_types": _list(Field("str", choices=("DownEncoderBlock2D",)), 1, 6),
    "up_block_types": _list(Field("str", choices=("UpDecoderBlock2D",)), 1, 6),
    "layers_per_block": _int(1, 8),
    "act_fn": Field("str", choices=("silu", "swish", "gelu", "relu", "mish")),
    "norm_num_groups": _int(1, 1024),
    "sample_size": _int(1, 8192),
    "scaling_factor": _float(1e-6, 1e6),
    "shift_factor": _float(-1e6, 1e6, nullable=True),
    "force_upcast": BOOL,
    "use_quant_conv": BOOL,
    "use_post_quant_conv": BOOL,
    "mid_block_add_attention": BOOL,
}
CLASS_NAMES = {"unet": "DFGN", "vae": "AutoencoderKL"}


def read_json(path: Path, label: str, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """A JSON file → its value. Byte cap, strict UTF-8, no NaN/Infinity, no duplicate keys; else ModelError."""
    try:
        with open(path, "rb") as f:
            raw = f.read(max_bytes + 1)
    except OSError as exc:
        raise ModelError(f"{label}: cannot be read ({exc.strerror or exc})") from exc
    if len(raw) > max_bytes:
        raise ModelError(f"{label}: larger than {max_bytes >> 10} KiB; not a model config")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelError(f"{label}: not UTF-8 text (byte {exc.start})") from exc
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except ValueError as exc:  # JSONDecodeError, a duplicate key, NaN/Infinity
        raise ModelError(f"{label}: not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise ModelError(f"{label}: nested too deeply") from exc


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate key")
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def check_object(data: Any, schema: dict[str, Field], label: str) -> dict[str, Any]:
    """Validate ``data`` against ``schema`` → the known fields present (unknown keys are ignored)."""
    if not isinstance(data, dict):
        raise ModelError(f"{label}: must be a JSON object, got {_kind(data)}")
    out: dict[str, Any] = {}
    for key, spec in schema.items():
        if key not in data:
            if spec.required:
                raise ModelError(f"{label}: missing field {key!r}")
            continue
        out[key] = check_value(data[key], spec, f"{label}: {key}")
    return out


def check_value(value: Any, spec: Field, where: str) -> Any:
    """One field value → itself (tuples for lists), or ModelError saying what ``where`` must be."""
    if value is None and spec.nullable:
        return None
    if spec.kind == "bool":
        if isinstance(value, bool):
            return value
        raise ModelError(f"{where} must be true or false, got {_show(value)}")
    if spec.kind in ("int", "float"):
        return _number(value, spec, where)
    if spec.kind == "str":
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise ModelError(f"{where} must be a string of at most {MAX_TEXT} characters, got {_show(value)}")
        if spec.choices and value not in spec.choices:
            raise ModelError(f"{where} must be one of {', '.join(spec.choices)}, got {_show(value)}")
        return value
    if spec.kind == "dict":
        if not isinstance(value, dict):
            raise ModelError(f"{where} must be a JSON object, got {_kind(value)}")
        return value
    if not isinstance(value, list) or not spec.min_len <= len(value) <= spec.max_len:
        raise ModelError(f"{where} must be a list of {spec.min_len}..{spec.max_len} items, got {_show(value)}")
    return tuple(check_value(v, spec.item, f"{where}[{i}]") for i, v in enumerate(value))


def _number(value: Any, spec: Field, where: str) -> int | float:
    ok_type = isinstance(value, int) if spec.kind == "int" else isinstance(value, (int, float))
    what = "an integer" if spec.kind == "int" else "a number"
    if isinstance(value, bool) or not ok_type or not math.isfinite(value):
        raise ModelError(f"{where} must be {what} in {_range(spec)}, got {_show(value)}")
    if not spec.lo <= value <= spec.hi:
        raise ModelError(f"{where} must be {what} in {_range(spec)}, got {_show(value)}")
    return float(value) if spec.kind == "float" else int(value)


def _range(spec: Field) -> str:
    fmt = (lambda v: f"{int(v):,}") if spec.kind == "int" else (lambda v: f"{v:g}")
    return f"{fmt(spec.lo)}..{fmt(spec.hi)}"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, float) else f"{value:g}"
    return text if len(text) <= 40 else text[:37] + "..."


def parse_card(path: Path) -> ModelCard:
    """A model folder's top-level ``config.json`` → its ModelCard (typed, bounded)."""
    label = "config.json"
    card = check_object(read_json(path, label), CARD_SCHEMA, label)
    text = check_object(card.pop("text", {}), TEXT_SCHEMA, f"{label}: text")
    diffusion = check_object(card.pop("diffusion", {}), DIFFUSION_SCHEMA, f"{label}: diffusion")
    d = DiffusionConfig(**diffusion)
    if not d.beta_start < d.beta_end:
        raise ModelError(f"{label}: diffusion.beta_start must be below beta_end ({d.beta_start:g} ≥ {d.beta_end:g})")
    return ModelCard(**card, text=TextConfig(**text), diffusion=d)


def parse_module_config(path: Path, sub: str) -> dict[str, Any]:
    """``unet/config.json`` or ``vae/config.json`` → the checked constructor arguments (lists as lists)."""
    label = f"{sub}/config.json"
    data = read_json(path, label)
    if not isinstance(data, dict):
        raise ModelError(f"{label}: must be a JSON object, got {_kind(data)}")
    cls = data.get("_class_name", CLASS_NAMES[sub])
    if cls != CLASS_NAMES[sub]:
        raise ModelError(f"{label}: _class_name must be {CLASS_NAMES[sub]}, got {_show(cls)}")
    schema = UNET_SCHEMA if sub == "unet" else VAE_SCHEMA
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in check_object(data, schema, label).items()}
    if sub == "unet" and len(cfg.get("cross_attn_levels", ())) != len(cfg.get("block_out_channels", ())):
        raise ModelError(f"{label}: cross_attn_levels needs one entry per block_out_channels level")
    if sub == "vae":
        n = len(cfg.get("block_out_channels", ()))
        for key in ("down_block_types", "up_block_types"):
            if key in cfg and len(cfg[key]) != n:
                raise ModelError(f"{label}: {key} needs one entry per block_out_channels level")
    return cfg


def parse_index(path: Path, label: str) -> dict[str, str]:
    """A sharded-weights ``*.safetensors.index.json`` → its weight map {tensor name: shard file name}."""
    data = read_json(path, label, MAX_INDEX_BYTES)
    if not isinstance(data, dict) or not isinstance(data.get("weight_map"), dict) or not data["weight_map"]:
        raise ModelError(f"{label}: must be a JSON object with a non-empty weight_map")
    out: dict[str, str] = {}
    for name, shard in data["weight_map"].items():
        if not isinstance(shard, str):
            raise ModelError(f"{label}: weight_map[{_show(name)}] must be a file name, got {_show(shard)}")
        out[name] = shard
    return out
