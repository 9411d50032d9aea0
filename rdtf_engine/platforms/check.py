"""``check_file``: does a file meet a platform preset? Every rule listed with pass/fail and the measured value.

Facts come from the file itself: loop counts, delays and metadata from the raw container (``containers.py``
or the WebM demuxer), frame count and pixels from a full decode. Raw delays are used, not the browser-
normalised ones, because platforms validate what is stored. ``export`` runs the same code on its output
before it reports success.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rdtf_engine.core.errors import RdtfError
from rdtf_engine.formats.limits import DEFAULT_CAPS, Caps, read_file_capped
from rdtf_engine.formats.loader import decode_bytes
from rdtf_engine.formats.recipe import parse_recipe
from rdtf_engine.formats.sniff import IMAGE_FORMATS, VIDEO_FORMATS, detect_format, walk
from rdtf_engine.platforms.presets import Preset, get_preset

EXPECTED_FORMAT = {"webm": ("webm",), "webp": ("webp",), "apng": ("apng",), "png": ("png",), "gif": ("gif",)}


def check_file(path: str | os.PathLike[str], preset: str, *, caps: Caps = DEFAULT_CAPS) -> dict:
    p = get_preset(preset)
    data = read_file_capped(Path(path), caps)
    return check_bytes(data, p, caps=caps)


def check_bytes(data: bytes, preset: Preset, *, caps: Caps = DEFAULT_CAPS) -> dict:
    try:
        info, frames, recipe = inspect_bytes(data, caps)
    except RdtfError as exc:
        rules = [_rule("readable", False, f"{type(exc).__name__}: {exc}")]
        return {"preset": preset.name, "ok": False, "rules": rules, "recipe": None,
                "info": {"format": None, "frames": 0, "size": None, "durations": [], "bytes": len(data)}}
    rules = evaluate(preset, info, frames)
    return {"preset": preset.name, "ok": all(r["ok"] for r in rules), "rules": rules, "recipe": recipe,
            "info": info}


def inspect_bytes(data: bytes, caps: Caps = DEFAULT_CAPS) -> tuple[dict, np.ndarray, dict | None]:
    fmt = detect_format(data)
    facts: dict = {}
    texts: dict[str, str] = {}
    loop_plays: int | None = None
    if fmt in IMAGE_FORMATS:
        cinfo = walk(data, fmt)
        fmt = cinfo.format
        texts = dict(cinfo.texts)
        if cinfo.loop is not None:
            # GIF's NETSCAPE count is extra plays (0 = forever); APNG/WebP store plays directly.
            loop_plays = cinfo.loop if fmt != "gif" or cinfo.loop == 0 else cinfo.loop + 1
        elif fmt == "gif":
            loop_plays = 1
    elif fmt in VIDEO_FORMATS:
        from rdtf_engine.formats.video_decoder import read_video_facts

        facts = read_video_facts(data, fmt)
        texts = facts.get("metadata", {})
    clip = decode_bytes(data, "file", caps=caps)
    raw = [float(d) for d in clip.labels.get("raw_durations_ms", clip.durations_ms)]
    if fmt in VIDEO_FORMATS and len(facts.get("durations", [])) == clip.num_frames:
        raw = [round(float(d), 3) for d in facts["durations"]]
    h, w = clip.frames.shape[1:3]
    info = {
        "format": fmt,
        "frames": clip.num_frames,
        "size": [int(w), int(h)],
        "durations": [round(d, 3) for d in raw],
        "duration_ms": round(sum(raw), 3),
        "bytes": len(data),
        "loop": loop_plays,
        "animated": clip.num_frames > 1 or fmt in ("apng", "webm", "mkv", "mp4"),
    }
    if facts:
        info.update(codec=facts["codec"], alpha=facts["alpha"], audio=facts["audio"], streams=facts["streams"])
    return info, clip.frames, parse_recipe(texts)


def _rule(name: str, ok: bool, detail: str) -> dict:
    return {"name": name, "ok": bool(ok), "detail": detail}


def _coverage(frame: np.ndarray) -> float:
    return float((frame[..., 3] >= 128).mean())


def evaluate(p: Preset, info: dict, frames: np.ndarray) -> list[dict]:
    rules = []
    fmt, n, (w, h) = info["format"], info["frames"], info["size"]
    total = info["duration_ms"]
    rules.append(_rule("format", fmt in EXPECTED_FORMAT[p.container], f"{fmt}, needs {p.container}"))
    if p.animated:
        rules.append(_rule("animated", n >= 2 or fmt == "webm", f"{n} frame(s)"))
    else:
        rules.append(_rule("static", n == 1, f"{n} frame(s)"))
    if p.codec:
        rules.append(_rule("codec", info.get("codec") == p.codec, f"{info.get('codec')}, needs {p.codec}"))
    if p.no_audio:
        rules.append(_rule("no_audio", not info.get("audio") and info.get("streams", 1) == 1,
                           "no audio stream" if not info.get("audio") else "has an audio stream"))
    rules.append(_rule("dimensions", *_dimensions(p, w, h)))
    if p.max_bytes is not None:
        rules.append(_rule("bytes", info["bytes"] <= p.max_bytes,
                           f"{info['bytes']:,} B, cap {p.max_bytes:,} B (export aims at {p.target_bytes:,})"))
    if p.animated:
        rules.extend(_timing_rules(p, info, n, total))
    if p.first_frame_complete and n > 1:
        cov = [_coverage(f) for f in frames]
        med = float(np.median(cov))
        ok = cov[0] > 0 and cov[0] >= 0.5 * med
        rules.append(_rule("first_frame_complete", ok,
                           f"frame 1 covers {cov[0]:.0%} of the canvas, clip median {med:.0%} "
                           "(the platform shows frame 1 as the still and ends on it)"))
    if p.no_identical_frames and n > 1:
        same = [i + 1 for i in range(1, n) if np.array_equal(frames[i], frames[i - 1])]
        rules.append(_rule("no_identical_frames", not same,
                           "all consecutive frames differ" if not same else f"frames {same} repeat the previous"))
    return rules


def _dimensions(p: Preset, w: int, h: int) -> tuple[bool, str]:
    got = f"{w}x{h}"
    if p.user_sized:
        return True, got
    if p.canvas == "exact":
        return (w, h) == (p.width, p.height), f"{got}, needs exactly {p.width}x{p.height}"
    if p.canvas == "one_side":
        return max(w, h) == p.width and min(w, h) <= p.width, f"{got}, needs one side {p.width} and the other <= it"
    if p.canvas == "square_max":
        return w == h and p.min_side <= w <= p.width, f"{got}, needs a square {p.min_side}-{p.width} px"
    ok = w <= p.width and h <= p.height and max(w, h) >= p.min_side
    return ok, f"{got}, needs <= {p.width}x{p.height} with one side >= {p.min_side}"


def _timing_rules(p: Preset, info: dict, n: int, total: float) -> list[dict]:
    rules = []
    if p.max_duration_ms is not None or p.min_duration_ms is not None:
        lo, hi = p.min_duration_ms or 0, p.max_duration_ms or float("inf")
        rules.append(_rule("duration", lo <= total <= hi + 0.5, f"{total / 1000:.3f} s, allowed "
                           f"{lo / 1000:g}-{hi / 1000:g} s"))
    if p.whole_seconds:
        rules.append(_rule("whole_seconds", abs(total - round(total / 1000) * 1000) < 0.5,
                           f"{total / 1000:.3f} s, must be a whole number of seconds"))
    if p.max_frames is not None or p.min_frames > 1:
        hi_f = p.max_frames or 10**9
        rules.append(_rule("frames", p.min_frames <= n <= hi_f, f"{n}, allowed {p.min_frames}-{hi_f}"))
    if p.max_fps is not None and total > 0:
        fps = n * 1000.0 / total
        rules.append(_rule("fps", fps <= p.max_fps + 1e-6, f"{fps:.2f} fps average, cap {p.max_fps:g}"))
    if p.min_frame_ms is not None:
        shortest = min(info["durations"]) if info["durations"] else 0
        rules.append(_rule("frame_duration", shortest >= p.min_frame_ms,
                           f"shortest frame {shortest:g} ms, needs >= {p.min_frame_ms} ms"))
    if p.container == "gif":
        shortest = min(info["durations"]) if info["durations"] else 0
        rules.append(_rule("gif_delays", shortest >= 20, f"shortest delay {shortest:g} ms; browsers slow "
                           "delays under 20 ms to 100 ms"))
    if p.container != "webm":
        loop = info.get("loop")
        allowed = "forever" if p.loops == (0,) else f"{min(p.loops)}-{max(p.loops)} plays"
        shown = "forever" if loop == 0 else f"{loop} play(s)" if loop is not None else "no loop info"
        rules.append(_rule("loop", loop in p.loops, f"{shown}, allowed {allowed}"))
        if p.max_playback_x_loops_ms and loop:
            rules.append(_rule("playback_x_loops", total * loop <= p.max_playback_x_loops_ms + 0.5,
                               f"{total / 1000:g} s x {loop} = {total * loop / 1000:g} s, cap "
                               f"{p.max_playback_x_loops_ms / 1000:g} s"))
    return rules
