"""Frame arrays → GIF / PNG / APNG / WebP / WebM bytes, in memory (callers write atomically).

Each encoder takes RGBA frames + per-frame ms durations + a ``loop`` given as *plays* (0 = forever, 1 = once,
n = n times) and returns (bytes, notes). Notes record anything the format forced (GIF's 10 ms delay grid,
merged frames that could not be kept apart). Duplicate consecutive frames are made to differ invisibly first,
because Pillow and libwebp silently merge them (docs/io.md, "Format details").
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
from PIL import Image

from rdtf_engine.core.errors import DependencyError, ExportError
from rdtf_engine.formats.palette import build_palette, matte_1bit, palette_rgb_neighbour, remap
from rdtf_engine.formats.png_writer import encode_png
from rdtf_engine.formats.recipe import PNG_KEYWORD, WEBM_TAG, gif_comment, recipe_text, xmp_packet
from rdtf_engine.formats.timing import break_duplicate_frames, spread_total

GIF_MIN_DELAY_MS = 20  # browsers play 0-10 ms GIF delays at 100 ms; 20 ms is the shortest delay they honour


def gif_durations(durations: Sequence[int]) -> list[int]:
    """GIF delays are centiseconds: round to 10 ms with the error carried forward (total kept), >= 20 ms."""
    return spread_total(sum(durations), list(durations), step=10, minimum=GIF_MIN_DELAY_MS)


def encode_gif(
    frames: np.ndarray,
    durations: Sequence[int],
    *,
    loop: int = 0,
    colors: int = 256,
    matte: tuple[int, int, int] = (255, 255, 255),
    recipe: dict | None = None,
) -> tuple[bytes, list[str]]:
    notes: list[str] = []
    flat = matte_1bit(frames, matte)
    pal = build_palette(flat, colors)
    idx = remap(flat, pal)
    clear = np.flatnonzero(pal[:, 3] == 0)
    idx, merged = _separate_gif_duplicates(idx, pal)
    if merged:
        notes.append(f"{merged} fully transparent repeated frame(s) merged (GIF cannot tell them apart)")
    delays = gif_durations(durations)
    if list(delays) != [int(d) for d in durations]:
        notes.append("GIF delays rounded to 10 ms steps (min 20 ms), total duration kept")
    rgb = np.zeros((256, 3), dtype=np.uint8)
    rgb[: len(pal)] = pal[:, :3]
    images = []
    for frame in idx:
        im = Image.fromarray(frame, "P")
        im.putpalette(rgb.tobytes())
        images.append(im)
    kwargs: dict[str, Any] = {"save_all": True, "append_images": images[1:], "duration": delays,
                              "disposal": 2, "optimize": False}
    if len(clear):
        kwargs["transparency"] = int(clear[0])
    if loop != 1:  # no NETSCAPE block = play once; its count is *extra* plays, 0 = forever
        kwargs["loop"] = 0 if loop == 0 else loop - 1
    if recipe:
        kwargs["comment"] = gif_comment(recipe)
    buf = io.BytesIO()
    images[0].save(buf, "GIF", **kwargs)
    return buf.getvalue(), notes


def _separate_gif_duplicates(idx: np.ndarray, pal: np.ndarray) -> tuple[np.ndarray, int]:
    """Swap one visible pixel of a repeated frame to its nearest other palette colour; a fully transparent
    repeated frame has no pixel to change, so it is left to merge (it looks the same either way)."""
    merged = 0
    out = idx
    for i in range(1, idx.shape[0]):
        if not np.array_equal(out[i], out[i - 1]):
            continue
        visible = np.argwhere(pal[out[i]][..., 3] == 255)
        if len(visible) == 0:
            merged += 1
            continue
        if out is idx:
            out = idx.copy()
        y, x = visible[0]
        out[i, y, x] = palette_rgb_neighbour(pal, int(out[i, y, x]))
    return out, merged


def encode_apng(
    frames: np.ndarray,
    durations: Sequence[int],
    *,
    loop: int = 0,
    colors: int | None = None,
    recipe: dict | None = None,
    animated: bool = True,
    level: int = 9,
) -> tuple[bytes, list[str]]:
    """Truecolour RGBA APNG, or a shared-palette APNG (full alpha per entry) when ``colors`` is set."""
    notes: list[str] = []
    if animated:
        frames, changed = break_duplicate_frames(frames)
        if changed:
            notes.append(f"{changed} repeated frame(s) kept as separate frames (1-level alpha nudge)")
    texts = {PNG_KEYWORD: recipe_text(recipe)} if recipe else None
    if colors:
        pal = build_palette(frames, colors)
        idx = remap(frames, pal)
        if animated:
            idx = _separate_indexed(idx, pal)
        return encode_png(idx, durations, palette=pal, loop=loop, animated=animated, texts=texts, level=level), notes
    return encode_png(frames, durations, loop=loop, animated=animated, texts=texts, level=level), notes


def _separate_indexed(idx: np.ndarray, pal: np.ndarray) -> np.ndarray:
    # Two nudged frames can quantise back to the same indices; our writer keeps them anyway, but LINE
    # rejects identical-data frames, so make them differ in the index data as well.
    for i in range(1, idx.shape[0]):
        if np.array_equal(idx[i], idx[i - 1]):
            idx[i, 0, 0] = palette_rgb_neighbour(pal, int(idx[i, 0, 0])) if len(pal) > 1 else idx[i, 0, 0]
    return idx


def encode_webp(
    frames: np.ndarray,
    durations: Sequence[int],
    *,
    loop: int = 0,
    quality: int = 90,
    lossless: bool = False,
    animated: bool = True,
    method: int = 4,
    recipe: dict | None = None,
) -> tuple[bytes, list[str]]:
    notes: list[str] = []
    kwargs: dict[str, Any] = {"quality": int(quality), "method": int(method), "lossless": bool(lossless)}
    if recipe:
        kwargs["xmp"] = xmp_packet(recipe)
    buf = io.BytesIO()
    if not animated:
        Image.fromarray(frames[0], "RGBA").save(buf, "WEBP", **kwargs)
        return buf.getvalue(), notes
    frames, changed = break_duplicate_frames(frames)
    if changed:
        notes.append(f"{changed} repeated frame(s) kept as separate frames (1-level alpha nudge)")
    images = [Image.fromarray(f, "RGBA") for f in frames]
    images[0].save(buf, "WEBP", save_all=True, append_images=images[1:], duration=[int(d) for d in durations],
                   loop=int(loop), minimize_size=False, allow_mixed=False, **kwargs)
    return buf.getvalue(), notes


def webm_tick_rate(durations: Sequence[int], max_fps: int) -> int:
    """The integer tick rate (<= max_fps) that places frame starts closest to their true times.

    Players and Telegram read the stream's frame rate from its timebase, so timestamps live on a 1/rate grid
    that never claims more than ``max_fps``; a clip of 100 ms frames gets rate 10, exactly."""
    starts = np.concatenate([[0.0], np.cumsum(durations)])
    best, best_err = max_fps, float("inf")
    for rate in range(1, max_fps + 1):  # ascending: the lowest rate that is as exact as any wins
        ticks = np.round(starts * rate / 1000.0)
        if (np.diff(ticks) < 1).any():
            continue
        err = float(np.abs(ticks * 1000.0 / rate - starts).sum())
        if err < best_err - 1e-6:
            best, best_err = rate, err
    return best


def encode_webm(
    frames: np.ndarray,
    durations: Sequence[int],
    *,
    crf: int = 30,
    bitrate: int | None = None,
    max_fps: int = 30,
    recipe: dict | None = None,
    speed: int = 4,
) -> tuple[bytes, list[str]]:
    """VP9 + alpha (yuva420p) in WebM, no audio: Telegram's video-sticker format."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise DependencyError("WebM export needs the 'av' package (pip install av)") from exc
    f, h, w = frames.shape[:3]
    if w % 2 or h % 2:
        raise ExportError(f"VP9 with alpha needs even dimensions, got {w}x{h}")
    rate = webm_tick_rate(durations, max_fps)
    starts = np.concatenate([[0.0], np.cumsum(durations)])
    ticks = np.round(starts * rate / 1000.0).astype(int)
    for i in range(1, len(ticks)):
        ticks[i] = max(ticks[i], ticks[i - 1] + 1)
    buf = io.BytesIO()
    container = av.open(buf, mode="w", format="webm")
    try:
        if recipe:
            container.metadata[WEBM_TAG] = recipe_text(recipe)
        stream = container.add_stream("libvpx-vp9", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuva420p"
        stream.codec_context.time_base = Fraction(1, rate)
        options = {"crf": str(int(crf)), "b": str(int(bitrate)) if bitrate else "0", "deadline": "good",
                   "cpu-used": str(speed), "row-mt": "1", "auto-alt-ref": "0", "lag-in-frames": "0",
                   "g": str(max(1, f)), "threads": "2"}
        stream.options = options
        length = {int(ticks[i]): int(ticks[i + 1] - ticks[i]) for i in range(f)}
        for i in range(f):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frames[i]), format="rgba")
            frame.pts = int(ticks[i])
            frame.time_base = Fraction(1, rate)
            _mux(container, stream, stream.encode(frame), length)
        _mux(container, stream, stream.encode(None), length)
    except av.error.FFmpegError as exc:
        raise ExportError(f"the VP9 encoder failed: {exc}") from None
    finally:
        container.close()
    return buf.getvalue(), []


def _mux(container, stream, packets, length: dict[int, int]) -> None:
    for packet in packets:
        # Packet durations make the last frame last as long as intended (else Matroska ends it after 1 tick).
        packet.duration = length.get(int(packet.pts), 1) if packet.pts is not None else 1
        container.mux(packet)
