"""``export_clip`` (platform presets, byte-cap search, check before success) and ``write_clip`` (plain writer).

Flow: load the input (animated file or PNG-frames folder) → conform to the preset (timeline, canvas) →
search encodes until the file fits the byte target → ``check`` the bytes against every preset rule →
atomic write. Nothing reaches the output path unless it passed its checks.
"""

from __future__ import annotations

import itertools
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rdtf_engine.core.atomic import write_bytes_atomic, write_dir_atomic
from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import ExportError, InputError
from rdtf_engine.core.events import Log, Progress
from rdtf_engine.core.requests import ExportRequest
from rdtf_engine.formats.encoders import encode_apng, encode_gif, encode_webm, encode_webp
from rdtf_engine.formats.loader import load_clip
from rdtf_engine.formats.recipe import normalise_recipe
from rdtf_engine.formats.timing import resample_clip, scale_frames
from rdtf_engine.platforms.byte_fit import Axis, fit_to_bytes
from rdtf_engine.platforms.check import check_bytes
from rdtf_engine.platforms.conform import ExportOptions, conform, parse_options
from rdtf_engine.platforms.presets import PRESETS, Preset, get_preset

EXTENSIONS = {"webm": ".webm", "webp": ".webp", "apng": ".png", "png": ".png", "gif": ".gif"}
_QUALITY = (90, 80, 70, 60, 50, 40, 30, 20)
_CRF = (24, 30, 36, 42, 48, 54, 60, 63)
_COLOURS = (256, 128, 64, 32, 16)
_FPS = (1.0, 0.75, 0.5, 0.34)
_SIZE = (1.0, 0.85, 0.7, 0.55, 0.4)


def export_clip(req: ExportRequest, on_event: Callable | None = None,
                should_stop: Callable[[], bool] | None = None) -> dict:
    emit = on_event or (lambda _e: None)
    preset = get_preset(req.preset)
    opts = parse_options(dict(req.options or {}), preset)
    recipe = normalise_recipe(req.recipe)
    if not req.input:
        raise InputError("export needs an input clip (animated file or folder of PNG frames)")
    clip = load_clip(req.input)
    out = _output_path(Path(req.out), Path(req.input), preset)
    emit(Log("info", f"exporting {Path(req.input).name} for {preset.title}"))
    data, report = encode_for_preset(clip, preset, opts, recipe, emit, should_stop)
    write_bytes_atomic(out, data)
    report["path"] = str(out)
    emit(Progress("export", 1, 1, f"wrote {out.name} ({len(data):,} B)"))
    return report


def encode_for_preset(clip: Clip, preset: Preset, opts: ExportOptions, recipe: dict | None,
                      emit: Callable = lambda _e: None,
                      should_stop: Callable[[], bool] | None = None) -> tuple[bytes, dict]:
    """The in-memory part of an export: conform, fit, check. Returns (bytes, report without path)."""
    base, loop, trades = conform(clip, preset, opts)
    target = preset.target_bytes
    if opts.max_kb is not None:
        target = min(target or 10**12, int(opts.max_kb * 1000))
    axes = _axes(preset, base, opts, target is not None)
    variants: dict[tuple, Clip] = {}

    def variant(setting: dict) -> Clip:
        key = (setting.get("fps", 1.0), setting.get("size", 1.0))
        if key not in variants:
            variants[key] = _variant(base, preset, *key)
        return variants[key]

    def encode(setting: dict) -> tuple[bytes, list[str]]:
        return _encode(variant(setting), preset, setting, loop, recipe, target)

    def estimate(setting: dict) -> int | None:
        v = variant(setting)
        if preset.container == "webm" or v.num_frames < 8:
            return None  # VP9 rate control makes a partial encode a poor guess; short clips are cheap anyway
        k = 3
        part = Clip(v.frames[:k], v.durations_ms[:k], v.caption)
        b1 = len(_encode(Clip(v.frames[:1], v.durations_ms[:1]), preset, setting, loop, None, None)[0])
        bk = len(_encode(part, preset, setting, loop, None, None)[0])
        return int(b1 + (bk - b1) * (v.num_frames - 1) / (k - 1))

    # An upper bound on encodes for the progress bar (the search usually needs far fewer).
    budget = 1 + len(axes) + sum(len(a.values) for a in axes)

    def on_try(i: int, setting: dict, size: int) -> None:
        emit(Progress("export", i, max(i, budget), f"try {i}: {_describe(setting)} → {size:,} B"))

    result = fit_to_bytes(axes, encode, target, on_try=on_try, should_stop=should_stop,
                          estimate=estimate if target is not None else None, what=f"{preset.name} export")
    report = check_bytes(result.data, preset)
    if not report["ok"]:
        failed = "; ".join(f"{r['name']}: {r['detail']}" for r in report["rules"] if not r["ok"])
        raise ExportError(f"the {preset.name} file did not pass its own check ({failed}); nothing was written")
    return result.data, {
        "preset": preset.name,
        "bytes": len(result.data),
        "checks": report["rules"],
        "ok": report["ok"],
        "trades": trades + result.trades,
        "notes": result.notes,
        "settings": {k: v for k, v in result.setting.items()},
        "encodes": result.encodes,
        "recipe": report["recipe"],
        "info": report["info"],
    }


def _axes(preset: Preset, clip: Clip, opts: ExportOptions, capped: bool) -> list[Axis]:
    axes: list[Axis] = []
    c = preset.container
    if c == "webm":
        start = 0 if opts.quality is None else min(range(len(_CRF)), key=lambda i: abs(_CRF[i] - _crf(opts.quality)))
        vals = _CRF[start:] if capped else _CRF[start : start + 1]
        axes.append(Axis("quality", vals, tuple(f"crf {v}" for v in vals)))
    elif c == "webp":
        top = opts.quality or _QUALITY[0]
        vals = (top,) + tuple(q for q in _QUALITY if q < top) if capped else (top,)
        axes.append(Axis("quality", vals, tuple(f"q{v}" for v in vals)))
    else:
        top: int | None = opts.colors
        if c == "gif":
            first = top or 256
            vals = (first,) + tuple(v for v in _COLOURS if v < first)
        else:
            vals = ((top,) if top else (None,)) + tuple(v for v in _COLOURS if top is None or v < top)
        vals = vals if capped else vals[:1]
        axes.append(Axis("colours", vals, tuple("truecolour" if v is None else f"{v} colours" for v in vals)))
    if capped and preset.animated and clip.num_frames > max(2, preset.min_frames):
        fps = tuple(_unique_counts(clip.num_frames, preset.min_frames))
        axes.append(Axis("fps", fps, tuple(f"{max(preset.min_frames, round(clip.num_frames * f))} frames"
                                          for f in fps)))
    if capped:
        axes.append(Axis("size", _SIZE, tuple(f"{round(s * 100)}% detail" for s in _SIZE)))
    return axes


def _unique_counts(n: int, min_frames: int) -> list[float]:
    seen, out = set(), []
    for f in _FPS:
        count = max(min_frames, 2, round(n * f))
        if count not in seen:
            seen.add(count)
            out.append(f)
    return out


def _crf(quality: int) -> int:
    return round(63 - quality * 0.45)


def _variant(base: Clip, preset: Preset, fps: float, size: float) -> Clip:
    clip = base
    if fps < 1.0:
        clip = resample_clip(clip, max(preset.min_frames, 2, round(clip.num_frames * fps)))
    if size < 1.0:
        if preset.user_sized or preset.canvas == "square_max":
            from rdtf_engine.formats.timing import fit_canvas

            h, w = clip.frames.shape[1:3]
            nw, nh = max(preset.min_side, round(w * size)), max(preset.min_side, round(h * size))
            clip = Clip(fit_canvas(clip.frames, nw, nh, pad=True), clip.durations_ms, clip.caption)
        else:
            clip = Clip(scale_frames(clip.frames, size), clip.durations_ms, clip.caption)
    return clip


def _encode(clip: Clip, preset: Preset, setting: dict, loop: int, recipe: dict | None,
            target: int | None) -> tuple[bytes, list[str]]:
    frames, durs = clip.frames, clip.durations_ms
    c = preset.container
    if c == "webm":
        total_s = max(0.1, sum(durs) / 1000.0)
        bitrate = int(target * 8 * 0.92 / total_s) if target else None  # constrained quality: crf + a ceiling
        return encode_webm(frames, durs, crf=setting["quality"], bitrate=bitrate,
                           max_fps=int(preset.max_fps or 60), recipe=recipe)
    if c == "webp":
        return encode_webp(frames, durs, loop=loop, quality=setting["quality"], animated=preset.animated,
                           recipe=recipe)
    if c == "gif":
        return encode_gif(frames, durs, loop=loop, colors=setting["colours"], recipe=recipe)
    return encode_apng(frames, durs, loop=loop, colors=setting["colours"], recipe=recipe,
                       animated=preset.animated)


def _describe(setting: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items())


def _output_path(out: Path, source: Path, preset: Preset) -> Path:
    ext = EXTENSIONS[preset.container]
    if out.is_dir() or str(out).endswith(os.sep):
        stem = source.stem if source.is_file() else source.name
        return out / f"{stem}-{preset.name}{ext}"
    if out.suffix.lower() != ext:
        raise InputError(f"{preset.name} writes {preset.container.upper()}: name the output *{ext}, not {out.name}")
    return out


def write_clip(clip: Clip, path: str | os.PathLike[str], fmt: str | None = None, *, loop: int = 0,
               recipe: dict | None = None, **opts: Any) -> dict:
    """Plain writer: .gif, .png (APNG), .webp, .webm, or a folder of PNG frames (+ durations.json)."""
    target = Path(path)
    kind = (fmt or _format_from_name(target)).lower()
    rec = normalise_recipe(recipe)
    if kind == "frames":
        return _write_frames(clip, target, rec)
    if kind not in ("gif", "png", "apng", "webp", "webm"):
        raise InputError(f"cannot write {kind!r}; use gif, png (APNG), webp, webm or a folder")
    frames, durs = clip.frames, list(clip.durations_ms)
    if kind == "gif":
        data, notes = encode_gif(frames, durs, loop=loop, colors=int(opts.get("colors", 256)), recipe=rec)
    elif kind in ("png", "apng"):
        data, notes = encode_apng(frames, durs, loop=loop, recipe=rec, colors=opts.get("colors"),
                                  animated=clip.num_frames > 1 or kind == "apng")
    elif kind == "webp":
        data, notes = encode_webp(frames, durs, loop=loop, quality=int(opts.get("quality", 90)),
                                  lossless=bool(opts.get("lossless", False)), animated=clip.num_frames > 1,
                                  recipe=rec)
    else:
        h, w = frames.shape[1:3]
        if w % 2 or h % 2:  # VP9 4:2:0 needs even sides: pad one transparent row/column
            frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)))
        data, notes = encode_webm(frames, durs, crf=int(opts.get("crf", 30)), recipe=rec)
    write_bytes_atomic(target, data)
    return {"path": str(target), "bytes": len(data), "format": kind, "frames": clip.num_frames, "notes": notes}


def _format_from_name(path: Path) -> str:
    ext = path.suffix.lower()
    if not ext:
        return "frames"
    return {".gif": "gif", ".png": "png", ".apng": "apng", ".webp": "webp", ".webm": "webm"}.get(ext, ext[1:])


def _write_frames(clip: Clip, folder: Path, recipe: dict | None) -> dict:
    from rdtf_engine.formats.png_writer import encode_png
    from rdtf_engine.formats.recipe import PNG_KEYWORD, recipe_text

    texts = {PNG_KEYWORD: recipe_text(recipe)} if recipe else None
    files = ((f"{i:03d}.png", encode_png(frame[None], animated=False, texts=texts))
             for i, frame in enumerate(clip.frames))
    durations = [("durations.json", json.dumps({"durations_ms": list(clip.durations_ms)}).encode())]
    # a temp sibling swapped in whole: a full disk never leaves old and new frames mixed
    write_dir_atomic(folder, itertools.chain(files, durations), replaceable=_is_frames_folder)
    return {"path": str(folder), "bytes": None, "format": "frames", "frames": clip.num_frames, "notes": []}


def _is_frames_folder(folder: Path) -> bool:
    """An existing folder may be replaced by new frames only when it holds nothing but frames we write."""
    return all(re.fullmatch(r"\d{3,}\.png|durations\.json", p.name) for p in folder.iterdir())


def list_presets() -> list[dict]:
    return [{"name": p.name, "title": p.title, "container": p.container, "max_bytes": p.max_bytes,
             "notes": p.notes, "sources": list(p.sources)} for p in PRESETS.values()]
