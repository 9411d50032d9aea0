"""Browser-correct compositing of GIF and APNG frames; Pillow only decodes each frame's own pixels.

Pillow 13's own GIF/APNG compositing differs from browsers (and from the APNG spec): a GIF frame with
disposal 0 inherits the previous frame's disposal, "restore to background" paints the opaque background
colour instead of clearing to transparent, and APNG ``blend_op OVER`` / ``dispose_op PREVIOUS`` come out wrong
for semi-transparent frames (tests/io/test_decode.py shows each case against ffmpeg and a reference). So each
frame's sub-image is cut out of the file as a tiny standalone GIF/PNG (Pillow's C decoders do the LZW/zlib
work), and the canvas arithmetic happens here, in numpy, by the specs.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

from rdtf_engine.core.errors import FormatError
from rdtf_engine.formats.containers import PNG_SIGNATURE, ContainerInfo
from rdtf_engine.formats.frame_collector import FrameCollector

# Indices → a non-grey dummy palette, so Pillow keeps the frame in "P" mode and hands back raw indices.
_DUMMY_PALETTE = bytes(v for i in range(256) for v in (i, 255 - i, 7))


def composite_gif(data: bytes, info: ContainerInfo, collector: FrameCollector) -> None:
    width, height = info.width, info.height
    if not width or not height:  # a zero logical screen: browsers fall back to the first frame's size
        width, height = max(p["x"] + p["w"] for p in info.parts), max(p["y"] + p["h"] for p in info.parts)
    global_pal = _gif_palette(data, info.palette)
    canvas = np.zeros((height, width, 4), np.uint8)
    for part, delay in zip(info.parts, info.durations_ms):
        collector.deadline.check()
        idx = _gif_indices(data, part)
        pal = _gif_palette(data, part["lct"]) if part["lct"] else global_pal
        x0, y0 = part["x"], part["y"]
        x1, y1 = min(width, x0 + part["w"]), min(height, y0 + part["h"])  # browsers clip to the screen
        saved = canvas[y0:y1, x0:x1].copy() if part["disposal"] == 3 else None
        if x1 > x0 and y1 > y0:
            sub = idx[: y1 - y0, : x1 - x0]
            draw = np.ones(sub.shape, bool) if part["transparent"] is None else sub != part["transparent"]
            region = canvas[y0:y1, x0:x1]
            region[draw] = pal[sub[draw]]
        collector.add(canvas, delay)
        if part["disposal"] == 2:
            canvas[y0:y1, x0:x1] = 0  # browsers clear to transparent, not to the background colour
        elif saved is not None:
            canvas[y0:y1, x0:x1] = saved


def _gif_palette(data: bytes, span) -> np.ndarray:
    pal = np.zeros((256, 4), np.uint8)
    pal[:, 3] = 255  # out-of-range indices show black, as in browsers
    if span is None:
        ramp = np.arange(256, dtype=np.uint8)
        pal[:, 0] = pal[:, 1] = pal[:, 2] = ramp
        return pal
    rgb = np.frombuffer(data[span[0] : span[1]], np.uint8).reshape(-1, 3)[:256]
    pal[: len(rgb), :3] = rgb
    return pal


def _gif_indices(data: bytes, part: dict) -> np.ndarray:
    w, h = part["w"], part["h"]
    if w == 0 or h == 0:
        return np.zeros((h, w), np.uint8)
    start, end = part["data"]
    mini = (b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF7, 0, 0) + _DUMMY_PALETTE
            + b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, part["packed"] & 0x40) + data[start:end] + b"\x3b")
    with Image.open(io.BytesIO(mini), formats=["GIF"]) as im:
        im.load()
        if im.mode != "P":
            raise FormatError(f"unexpected GIF frame mode {im.mode}")
        return np.asarray(im)


def composite_apng(data: bytes, info: ContainerInfo, collector: FrameCollector) -> None:
    width, height = info.width, info.height
    canvas = np.zeros((height, width, 4), np.uint8)
    parts = [p for p in info.parts if p["data"]]
    if not parts:
        raise FormatError("APNG has no frame data")
    for i, (part, delay) in enumerate(zip(parts, info.durations_ms)):
        collector.deadline.check()
        x0, y0, w, h = part["x"], part["y"], part["w"], part["h"]
        if w == 0 or h == 0 or x0 + w > width or y0 + h > height:
            raise FormatError(f"APNG frame {i + 1} ({w}x{h} at {x0},{y0}) lies outside the {width}x{height} canvas")
        rgba = _apng_frame(data, info, part)
        dispose = part["dispose"]
        if i == 0 and dispose == 2:
            dispose = 1  # spec: PREVIOUS on the first frame is treated as BACKGROUND
        saved = canvas[y0 : y0 + h, x0 : x0 + w].copy() if dispose == 2 else None
        region = canvas[y0 : y0 + h, x0 : x0 + w]
        region[:] = rgba if part["blend"] == 0 else _over(region, rgba)
        collector.add(canvas, delay)
        if dispose == 1:
            canvas[y0 : y0 + h, x0 : x0 + w] = 0
        elif saved is not None:
            canvas[y0 : y0 + h, x0 : x0 + w] = saved


def _png_chunk(t: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)


def _apng_frame(data: bytes, info: ContainerInfo, part: dict) -> np.ndarray:
    ihdr = struct.pack(">II", part["w"], part["h"]) + info.png_chunks["IHDR"][8:13]
    chunks = [PNG_SIGNATURE, _png_chunk(b"IHDR", ihdr)]
    for name in ("PLTE", "tRNS"):
        if name in info.png_chunks:
            chunks.append(_png_chunk(name.encode(), info.png_chunks[name]))
    body = b"".join(data[s:e] for s, e in part["data"])  # one zlib stream may span several chunks
    chunks += [_png_chunk(b"IDAT", body), _png_chunk(b"IEND", b"")]
    with Image.open(io.BytesIO(b"".join(chunks)), formats=["PNG"]) as im:
        im.load()
        if im.mode in ("I;16", "I"):
            im = im.point(lambda v: v / 256).convert("L")
        return np.asarray(im.convert("RGBA"))


def _over(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Straight-alpha "source over destination" (APNG_BLEND_OP_OVER)."""
    sa = src[..., 3:4].astype(np.float32) / 255.0
    da = dst[..., 3:4].astype(np.float32) / 255.0
    out_a = sa + da * (1.0 - sa)
    rgb = (src[..., :3] * sa + dst[..., :3] * da * (1.0 - sa)) / np.maximum(out_a, 1e-6)
    out = np.empty_like(dst)
    out[..., :3] = np.clip(np.round(rgb), 0, 255)
    out[..., 3:4] = np.clip(np.round(out_a * 255.0), 0, 255)
    return out
