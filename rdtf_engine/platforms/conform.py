"""Bring a clip within a preset's timeline and canvas rules before any byte squeezing.

These are the trades that do not depend on bytes: a still for a static preset, speeding a clip up to a
duration cap, whole seconds for LINE, frame-count and frame-rate caps, the canvas. Each one is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError
from rdtf_engine.formats.timing import (
    cap_fps,
    enforce_min_duration,
    repeat_to_min_frames,
    resample_clip,
    retime,
)
from rdtf_engine.platforms.presets import Preset, canvas_size
from rdtf_engine.platforms.upscale import EXPORT_UPSCALERS, upscale_canvas

GIF_MAX_FPS = 50.0  # GIF delays below 20 ms are played at 100 ms by browsers


@dataclass
class ExportOptions:
    fps: float | None = None
    loop: int | None = None  # plays; 0 = forever
    size: int | None = None
    quality: int | None = None  # WebP quality / VP9 quality, 1-100
    colors: int | None = None  # GIF / palette APNG colours, 2-256
    max_kb: float | None = None  # an extra byte cap (KB = 1000 B), e.g. for plain presets
    matte: tuple[int, int, int] = (255, 255, 255)  # GIF edge matte (the chat background)
    upscaler: str = "learned"  # how a clip enlarged 2× or more reaches the canvas (platforms/upscale.py)
    extra: dict[str, Any] = field(default_factory=dict)


_KNOWN = {"fps", "loop", "size", "quality", "colors", "colours", "max_kb", "matte", "upscaler"}


def parse_options(raw: dict[str, Any], preset: Preset) -> ExportOptions:
    unknown = sorted(set(raw) - _KNOWN)
    if unknown:
        raise InputError(f"unknown export option(s) {', '.join(unknown)}; known: {', '.join(sorted(_KNOWN))}")
    o = ExportOptions()
    try:
        if raw.get("fps") is not None:
            o.fps = float(raw["fps"])
            if not 0.2 <= o.fps <= 100:
                raise InputError(f"fps must be between 0.2 and 100, got {o.fps:g}")
        if raw.get("loop") is not None:
            o.loop = int(raw["loop"])
            if o.loop not in preset.loops:
                allowed = "0 (forever)" if preset.loops == (0,) else f"{min(preset.loops)}-{max(preset.loops)}"
                raise InputError(f"{preset.name} allows loop {allowed}, got {o.loop}")
        if raw.get("size") is not None:
            o.size = int(raw["size"])
            if not (preset.user_sized or preset.canvas == "square_max"):
                raise InputError(f"{preset.name} has a fixed canvas ({preset.width}x{preset.height}); drop --size")
            if not 16 <= o.size <= (1024 if preset.user_sized else preset.width):
                raise InputError(f"size must be between 16 and {1024 if preset.user_sized else preset.width}")
        if raw.get("quality") is not None:
            o.quality = int(raw["quality"])
            if not 1 <= o.quality <= 100:
                raise InputError(f"quality must be between 1 and 100, got {o.quality}")
        colors = raw.get("colors", raw.get("colours"))
        if colors is not None:
            o.colors = int(colors)
            if not 2 <= o.colors <= 256:
                raise InputError(f"colors must be between 2 and 256, got {o.colors}")
        if raw.get("max_kb") is not None:
            o.max_kb = float(raw["max_kb"])
            if not 0 < o.max_kb < 1e9:  # also refuses nan and inf
                raise InputError(f"max_kb must be a positive number of KB, got {o.max_kb:g}")
        if raw.get("matte") is not None:
            m = raw["matte"]
            if isinstance(m, str):
                m = m.lstrip("#")
                m = tuple(int(m[i : i + 2], 16) for i in (0, 2, 4))
            o.matte = tuple(int(c) for c in m)[:3]  # type: ignore[assignment]
            if len(o.matte) != 3 or not all(0 <= c <= 255 for c in o.matte):
                raise InputError("matte must be an RGB colour such as #ffffff")
        if raw.get("upscaler") is not None:
            if raw["upscaler"] not in EXPORT_UPSCALERS:
                raise InputError(f"upscaler must be one of {', '.join(EXPORT_UPSCALERS)}, got {raw['upscaler']!r}")
            o.upscaler = raw["upscaler"]
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"bad export option: {exc}") from None
    return o


def conform(clip: Clip, preset: Preset, opts: ExportOptions) -> tuple[Clip, int, list[str]]:
    """(conformed clip, loop plays, trades) for ``preset``; frames end up on the preset's canvas."""
    trades: list[str] = []
    if not preset.animated:
        if clip.num_frames > 1:
            trades.append(f"static sticker: kept frame 1 of {clip.num_frames}")
        clip = Clip(clip.frames[:1], clip.durations_ms[:1], clip.caption, dict(clip.labels))
    else:
        clip = _conform_timeline(clip, preset, opts, trades)
    h, w = clip.frames.shape[1:3]
    cw, ch, pad = canvas_size(preset, w, h, opts.size)
    if (cw, ch) != (w, h):
        frames, used = upscale_canvas(clip.frames, cw, ch, pad, opts.upscaler)
        notes = ["transparent padding"] * (pad and w * ch != h * cw) + [used] * bool(used)
        trades.append(f"canvas: {w}x{h} → {cw}x{ch}" + (f" ({'; '.join(notes)})" if notes else ""))
        clip = Clip(frames, clip.durations_ms, clip.caption, dict(clip.labels))
    return clip, _loop(clip, preset, opts), trades


def _conform_timeline(clip: Clip, preset: Preset, opts: ExportOptions, trades: list[str]) -> Clip:
    n0, t0 = clip.num_frames, sum(clip.durations_ms)
    if clip.num_frames == 1:
        clip = repeat_to_min_frames(clip, 2)
        trades.append("single image: shown as a 2-frame animation")
    if opts.fps:
        n = max(1, round(t0 * opts.fps / 1000.0))
        if n < clip.num_frames:
            clip = resample_clip(clip, n)
        elif n > clip.num_frames:
            clip = repeat_to_min_frames(clip, n)
    total = sum(clip.durations_ms)
    target = total
    if preset.whole_seconds:
        target = 1000.0 * min(max(round(total / 1000.0), 1), (preset.max_duration_ms or 4000) // 1000)
    elif preset.max_duration_ms is not None and total > preset.max_duration_ms:
        target = preset.max_duration_ms
    elif preset.min_duration_ms is not None and total < preset.min_duration_ms:
        target = preset.min_duration_ms
    if target != total:
        clip = retime(clip, target)
        trades.append(f"duration: {total / 1000:.2f} s → {target / 1000:g} s (played "
                      f"{'faster' if target < total else 'slower'})")
    if preset.max_frames and clip.num_frames > preset.max_frames:
        clip = resample_clip(clip, preset.max_frames)
    max_fps = min(preset.max_fps or 1e9, GIF_MAX_FPS if preset.container == "gif" else 1e9)
    if max_fps < 1e9:
        clip = cap_fps(clip, max_fps)
    if preset.min_frame_ms:
        clip = enforce_min_duration(clip, preset.min_frame_ms)
    if clip.num_frames < preset.min_frames:
        clip = repeat_to_min_frames(clip, preset.min_frames)
    if clip.num_frames != max(n0, 2):
        trades.append(f"frames: {n0} → {clip.num_frames}")
    return clip


def _loop(clip: Clip, preset: Preset, opts: ExportOptions) -> int:
    if opts.loop is not None:
        loop = opts.loop
    elif preset.max_playback_x_loops_ms:
        total = sum(clip.durations_ms)
        fitting = [n for n in preset.loops if n and total * n <= preset.max_playback_x_loops_ms]
        loop = max(fitting) if fitting else min(preset.loops)
    else:
        loop = preset.default_loop
    if preset.max_playback_x_loops_ms and loop * sum(clip.durations_ms) > preset.max_playback_x_loops_ms:
        raise InputError(f"{preset.name}: {loop} loops of {sum(clip.durations_ms) / 1000:g} s exceed "
                         f"{preset.max_playback_x_loops_ms / 1000:g} s of playback")
    return loop
