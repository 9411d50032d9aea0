"""Test corpus built in code: hand-assembled GIF / APNG bytes with odd disposal and blend ops, their expected
composited frames (an independent numpy reference of the browser semantics), busy clips, hostile files.

Nothing here uses the code under test to *produce* the animated inputs, so a decoder bug cannot hide behind
a matching encoder bug.
"""

from __future__ import annotations

import gzip
import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass

import numpy as np


# ---------------------------------------------------------------- GIF, written byte by byte
def _lzw_literal(indices: np.ndarray) -> bytes:
    """GIF LZW data that only uses literal codes (clear code every 200 symbols keeps the width at 9 bits)."""
    clear, eoi, width = 256, 257, 9
    codes = [clear]
    for i, v in enumerate(indices.ravel().tolist()):
        if i and i % 200 == 0:
            codes.append(clear)
        codes.append(int(v))
    codes.append(eoi)
    acc = nbits = 0
    out = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += width
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def _subblocks(data: bytes) -> bytes:
    return b"".join(bytes([len(data[i : i + 255])]) + data[i : i + 255] for i in range(0, len(data), 255)) + b"\0"


@dataclass
class GifFrame:
    x: int
    y: int
    indices: np.ndarray  # (h, w) uint8 into the palette
    delay_cs: int = 10
    disposal: int = 1  # 0/1 keep, 2 clear rect to transparent, 3 restore previous
    transparent: int | None = None


def build_gif(width: int, height: int, palette: np.ndarray, frames: list[GifFrame], loop: int | None = 0,
              comment: bytes = b"") -> bytes:
    pal = np.zeros((256, 3), np.uint8)
    pal[: len(palette)] = palette
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0xF7, 0, 0) + pal.tobytes())
    if loop is not None:
        out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", loop) + b"\x00"
    if comment:
        out += b"\x21\xfe" + _subblocks(comment)
    for f in frames:
        flags = (f.disposal << 2) | (1 if f.transparent is not None else 0)
        out += b"\x21\xf9\x04" + struct.pack("<BHB", flags, f.delay_cs, f.transparent or 0) + b"\x00"
        h, w = f.indices.shape
        out += b"\x2c" + struct.pack("<HHHHB", f.x, f.y, w, h, 0) + b"\x08" + _subblocks(_lzw_literal(f.indices))
    return bytes(out + b"\x3b")


def gif_reference(width: int, height: int, palette: np.ndarray, frames: list[GifFrame]) -> np.ndarray:
    """Browser compositing: transparent start, transparent index leaves the canvas, disposal after display."""
    canvas = np.zeros((height, width, 4), np.uint8)
    out = []
    for f in frames:
        saved = canvas.copy()
        h, w = f.indices.shape
        region = canvas[f.y : f.y + h, f.x : f.x + w]
        draw = np.ones((h, w), bool) if f.transparent is None else f.indices != f.transparent
        region[draw, :3] = palette[f.indices[draw]]
        region[draw, 3] = 255
        out.append(canvas.copy())
        if f.disposal == 2:
            canvas[f.y : f.y + h, f.x : f.x + w] = 0
        elif f.disposal == 3:
            canvas = saved
    return np.stack(out)


# ---------------------------------------------------------------- APNG, written chunk by chunk
def _chunk(t: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)


def _rows(rgba: np.ndarray) -> bytes:
    return zlib.compress(np.concatenate([np.zeros((rgba.shape[0], 1), np.uint8),
                                         rgba.reshape(rgba.shape[0], -1)], axis=1).tobytes())


@dataclass
class ApngFrame:
    x: int
    y: int
    rgba: np.ndarray  # (h, w, 4)
    delay_ms: int = 100
    dispose: int = 0  # 0 none, 1 background (clear), 2 previous
    blend: int = 0  # 0 source, 1 over


def build_apng(width: int, height: int, frames: list[ApngFrame], plays: int = 0, hidden_default: np.ndarray | None
               = None, texts: dict | None = None) -> bytes:
    out = [b"\x89PNG\r\n\x1a\n", _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0))]
    out.append(_chunk(b"acTL", struct.pack(">II", len(frames), plays)))
    for k, v in (texts or {}).items():
        out.append(_chunk(b"tEXt", k.encode() + b"\0" + v.encode("latin-1")))
    seq = 0
    if hidden_default is not None:  # an IDAT that is not part of the animation
        out.append(_chunk(b"IDAT", _rows(hidden_default)))
    for i, f in enumerate(frames):
        h, w = f.rgba.shape[:2]
        out.append(_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, w, h, f.x, f.y, f.delay_ms, 1000, f.dispose,
                                               f.blend)))
        seq += 1
        if i == 0 and hidden_default is None:
            out.append(_chunk(b"IDAT", _rows(f.rgba)))
        else:
            out.append(_chunk(b"fdAT", struct.pack(">I", seq) + _rows(f.rgba)))
            seq += 1
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)


def _over(dst: np.ndarray, src: np.ndarray) -> np.ndarray:
    sa = src[..., 3:4].astype(np.float64) / 255
    da = dst[..., 3:4].astype(np.float64) / 255
    oa = sa + da * (1 - sa)
    rgb = (src[..., :3] * sa + dst[..., :3] * da * (1 - sa)) / np.maximum(oa, 1e-9)
    return np.concatenate([np.round(rgb), np.round(oa * 255)], axis=-1).astype(np.uint8)


def apng_reference(width: int, height: int, frames: list[ApngFrame]) -> np.ndarray:
    canvas = np.zeros((height, width, 4), np.uint8)
    out = []
    for f in frames:
        saved = canvas.copy()
        h, w = f.rgba.shape[:2]
        region = canvas[f.y : f.y + h, f.x : f.x + w]
        region[:] = f.rgba if f.blend == 0 else _over(region, f.rgba)
        out.append(canvas.copy())
        if f.dispose == 1:
            canvas[f.y : f.y + h, f.x : f.x + w] = 0
        elif f.dispose == 2:
            canvas = saved
    return np.stack(out)


# ---------------------------------------------------------------- content
def busy_frames(n: int, size: int = 512, seed: int = 0) -> np.ndarray:
    """Busy sticker art: moving gradients, a dozen moving discs, light noise, anti-aliased round alpha edge."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    blobs = rng.random((12, 5))
    r = np.hypot(yy - size / 2, xx - size / 2)
    alpha = np.clip((size * 0.46 - r) * 128, 0, 255).astype(np.uint8)  # 2 px anti-aliased edge
    out = np.zeros((n, size, size, 4), np.uint8)
    for f in range(n):
        t = 2 * np.pi * f / n
        img = np.empty((size, size, 3), np.float32)
        img[..., 0] = 128 + 100 * np.sin(xx / (size / 22) + t)
        img[..., 1] = 128 + 100 * np.cos(yy / (size / 30) - t)
        img[..., 2] = 128 + 100 * np.sin((xx + yy) / (size / 16) + 2 * t)
        for b in blobs:
            cx = size * (0.2 + 0.6 * b[0]) + size / 12 * np.cos(t + b[2] * 6)
            cy = size * (0.2 + 0.6 * b[1]) + size / 12 * np.sin(t + b[3] * 6)
            img[((xx - cx) ** 2 + (yy - cy) ** 2) < (size * 0.05 * (0.5 + b[4])) ** 2] = 255 * b[[0, 2, 4]]
        img += rng.normal(0, 3, img.shape)
        out[f, ..., :3] = np.clip(img, 0, 255)
        out[f, ..., 3] = alpha
    return out


def simple_frames(n: int, w: int = 48, h: int = 40) -> np.ndarray:
    """Small flat-colour frames with a moving square and a transparent background (lossless-friendly)."""
    out = np.zeros((n, h, w, 4), np.uint8)
    for i in range(n):
        x = (i * 5) % (w - 12)
        out[i, 10:22, x : x + 12] = (200, 40 + 20 * i % 200, 60, 255)
        out[i, 30:34, 4:40] = (10, 120, 250, 128)  # semi-transparent bar
    return out


# ---------------------------------------------------------------- hostile inputs
def gif_header_bomb() -> bytes:
    """A 65535 x 65535 logical screen holding one 1 x 1 frame: tiny file, 17 GB canvas."""
    pal = np.array([[0, 0, 0], [255, 0, 0]], np.uint8)
    return build_gif(65535, 65535, pal, [GifFrame(0, 0, np.ones((1, 1), np.uint8))])


def gif_frames_bomb(frames: int = 600, side: int = 2000) -> bytes:
    """Each frame is 1 x 1 (so Pillow's per-frame bomb check passes) but each composites a 4 Mpx canvas."""
    pal = np.array([[0, 0, 0], [255, 0, 0]], np.uint8)
    return build_gif(side, side, pal, [GifFrame(i % side, 0, np.ones((1, 1), np.uint8)) for i in range(frames)])


def png_header_bomb() -> bytes:
    """IHDR claims 100000 x 100000; the IDAT is a small zlib stream that would inflate forever."""
    body = zlib.compress(b"\0" * 1_000_000, 9)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 100_000, 100_000, 8, 6, 0, 0, 0))
            + _chunk(b"IDAT", body) + _chunk(b"IEND", b""))


def apng_frames_bomb() -> bytes:
    """acTL declares 10 million frames of a 1000 x 1000 canvas."""
    one = np.zeros((1000, 1000, 4), np.uint8)
    data = build_apng(1000, 1000, [ApngFrame(0, 0, one)])
    return data.replace(b"acTL" + struct.pack(">II", 1, 0), b"acTL" + struct.pack(">II", 10_000_000, 0))


def webp_header_bomb() -> bytes:
    """VP8X canvas 16384 x 16384 (max) around a tiny frame."""
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0x10, 0, 0, 0]) + (16383).to_bytes(3, "little") * 2
    vp8l = b"VP8L" + struct.pack("<I", 5) + bytes([0x2F, 0, 0, 0, 0]) + b"\0"
    body = b"WEBP" + vp8x + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tgs_gzip_bomb() -> bytes:
    return gzip.compress(b"{" + b" " * 50_000_000 + b"}", 9)


def lottie_doc(frames: int = 30, fps: int = 30, size: int = 64, external: bool = False) -> dict:
    layer = {"ddd": 0, "ind": 1, "ty": 4, "nm": "s", "sr": 1, "ao": 0, "ip": 0, "op": frames, "st": 0, "bm": 0,
             "ks": {"o": {"a": 0, "k": 100}, "r": {"a": 0, "k": 0}, "a": {"a": 0, "k": [0, 0, 0]},
                    "s": {"a": 0, "k": [100, 100, 100]},
                    "p": {"a": 1, "k": [{"t": 0, "s": [size / 4, size / 2, 0], "i": {"x": [0.5], "y": [0.5]},
                                         "o": {"x": [0.5], "y": [0.5]}},
                                        {"t": frames, "s": [3 * size / 4, size / 2, 0]}]}},
             "shapes": [{"ty": "rc", "d": 1, "s": {"a": 0, "k": [size / 4, size / 4]}, "p": {"a": 0, "k": [0, 0]},
                         "r": {"a": 0, "k": 0}},
                        {"ty": "fl", "c": {"a": 0, "k": [1, 0, 0, 1]}, "o": {"a": 0, "k": 50}, "r": 1}]}
    doc = {"v": "5.5.2", "fr": fps, "ip": 0, "op": frames, "w": size, "h": size, "nm": "t", "ddd": 0,
           "assets": [], "layers": [layer], "tgs": 1}
    if external:
        doc["assets"] = [{"id": "img", "w": 10, "h": 10, "u": "/etc/", "p": "passwd", "e": 0}]
    return doc


def tgs_bytes(**kw) -> bytes:
    return gzip.compress(json.dumps(lottie_doc(**kw)).encode())


def zip_bytes(entries: list[tuple[str, bytes]], symlinks: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            if name in symlinks:
                info.create_system = 3
                info.external_attr = (0o120777 << 16)
            zf.writestr(info, data)
    return buf.getvalue()
