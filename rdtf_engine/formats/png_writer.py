"""A small PNG / APNG writer with exact control over frames, delays, loop count and text chunks.

Pillow's APNG writer merges identical consecutive frames, picks dispose/blend itself and hides delays behind
float milliseconds. Stickers need the opposite: LINE counts frames and loops, Signal needs ``num_plays = 0``,
and the recipe goes in an ``iTXt`` chunk. Frames after the first store only the rectangle that changed
(dispose NONE, blend SOURCE: the rectangle replaces the canvas pixels, alpha included), which is what makes
APNG small for stickers whose background stays still.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def _itxt(keyword: str, text: str) -> bytes:
    return _chunk(b"iTXt", keyword.encode("latin-1") + b"\0\0\0\0\0" + text.encode("utf-8"))


def _filter_rgba(img: np.ndarray) -> bytes:
    """Adaptive PNG filtering (None/Sub/Up/Paeth per row, smallest sum of |signed residual|), vectorised."""
    h, w = img.shape[:2]
    x = img.reshape(h, w * 4).astype(np.int16)
    a = np.zeros_like(x)
    a[:, 4:] = x[:, :-4]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, 4:] = x[:-1, :-4]
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    cands = np.stack([x, x - a, x - b, x - paeth]) & 0xFF  # filter types 0, 1, 2, 4
    cost = np.abs(cands.astype(np.uint8).view(np.int8).astype(np.int32)).sum(axis=2)
    choice = cost.argmin(axis=0)
    rows = cands[choice, np.arange(h)].astype(np.uint8)
    ftype = np.array([0, 1, 2, 4], dtype=np.uint8)[choice]
    return np.concatenate([ftype[:, None], rows], axis=1).tobytes()


def _filter_indexed(img: np.ndarray) -> bytes:
    # Palette images compress best unfiltered (the PNG spec's own recommendation).
    h = img.shape[0]
    return np.concatenate([np.zeros((h, 1), np.uint8), img], axis=1).tobytes()


def _changed_box(prev: np.ndarray, cur: np.ndarray) -> tuple[int, int, int, int] | None:
    diff = prev != cur
    if diff.ndim == 3:
        diff = diff.any(axis=2)
    rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1] + 1), int(rows[-1] + 1)


def encode_png(
    frames: np.ndarray,
    durations_ms: Sequence[int] = (),
    *,
    palette: np.ndarray | None = None,
    loop: int = 0,
    animated: bool = True,
    texts: dict[str, str] | None = None,
    level: int = 9,
) -> bytes:
    """``frames``: (F, H, W, 4) RGBA, or (F, H, W) palette indices with ``palette`` (K, 4) RGBA.

    ``animated=False`` writes frame 0 as a plain PNG. ``loop`` is APNG ``num_plays`` (0 = forever).
    """
    indexed = palette is not None
    f, h, w = frames.shape[:3]
    out = [PNG_SIGNATURE, _chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3 if indexed else 6, 0, 0, 0))]
    if indexed:
        pal = np.asarray(palette, dtype=np.uint8)
        out.append(_chunk(b"PLTE", pal[:, :3].tobytes()))
        alphas = pal[:, 3]
        if (alphas < 255).any():
            last = int(np.flatnonzero(alphas < 255)[-1]) + 1
            out.append(_chunk(b"tRNS", alphas[:last].tobytes()))
    for key, value in (texts or {}).items():
        out.append(_itxt(key, value))
    filt = _filter_indexed if indexed else _filter_rgba
    if not animated or f == 0:
        out.append(_chunk(b"IDAT", zlib.compress(filt(frames[0]), level)))
        out.append(_chunk(b"IEND", b""))
        return b"".join(out)
    out.append(_chunk(b"acTL", struct.pack(">II", f, int(loop))))
    seq = 0
    for i in range(f):
        if i == 0:
            box = (0, 0, w, h)
        else:
            box = _changed_box(frames[i - 1], frames[i]) or (0, 0, 1, 1)  # identical: 1 px, frame still counts
        x0, y0, x1, y1 = box
        delay = max(0, min(65535, int(durations_ms[i])))
        out.append(_chunk(b"fcTL", struct.pack(">IIIIIHHBB", seq, x1 - x0, y1 - y0, x0, y0, delay, 1000, 0, 0)))
        seq += 1
        data = zlib.compress(filt(np.ascontiguousarray(frames[i, y0:y1, x0:x1])), level)
        if i == 0:
            out.append(_chunk(b"IDAT", data))
        else:
            out.append(_chunk(b"fdAT", struct.pack(">I", seq) + data))
            seq += 1
    out.append(_chunk(b"IEND", b""))
    return b"".join(out)
