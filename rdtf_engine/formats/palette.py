"""One shared palette for a whole animation (GIF, palette APNG), built by libimagequant.

Per-frame palettes make colours flicker between frames and defeat inter-frame compression, so the palette is
learnt once from a subsample of *all* frames. PyPI Pillow lacks libimagequant and FASTOCTREE is poor on
sticker art, so the ``imagequant`` package builds it; mapping pixels onto it uses Pillow's C remapper for
opaque pixels (no dithering: dithering "crawls" between frames and costs bytes on flat art) and numpy for
the few semi-transparent edge pixels.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from rdtf_engine.core.errors import DependencyError

SAMPLE_PIXELS = 300_000  # enough to see every region of every frame; keeps quantisation well under a second


def matte_1bit(frames: np.ndarray, matte: tuple[int, int, int], threshold: int = 128) -> np.ndarray:
    """GIF has 1-bit alpha: blend soft edges onto ``matte`` (the expected chat background), then threshold.

    Blending first means an anti-aliased edge keeps its shape against that background instead of becoming a
    dark or light halo; pixels under ``threshold`` become fully transparent.
    """
    out = frames.copy()
    a = frames[..., 3:4].astype(np.uint16)
    rgb = frames[..., :3].astype(np.uint16)
    m = np.asarray(matte, dtype=np.uint16)
    out[..., :3] = ((rgb * a + m * (255 - a) + 127) // 255).astype(np.uint8)
    opaque = frames[..., 3] >= threshold
    out[..., 3] = np.where(opaque, 255, 0).astype(np.uint8)
    out[~opaque] = 0
    return out


def build_palette(frames: np.ndarray, max_colors: int) -> np.ndarray:
    """A shared RGBA palette (K, 4) uint8 for all frames; fully transparent entries collapse into one."""
    try:
        import imagequant
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise DependencyError("GIF export needs the 'imagequant' package (pip install imagequant)") from exc
    f, h, w = frames.shape[:3]
    stride = max(1, math.ceil(math.sqrt(f * h * w / SAMPLE_PIXELS)))
    sub = np.ascontiguousarray(frames[:, ::stride, ::stride])
    sample = sub.reshape(-1, sub.shape[2], 4)
    _, flat = imagequant.quantize_raw_rgba_bytes(
        sample.tobytes(), sample.shape[1], sample.shape[0], dithering_level=0.0, max_colors=int(max_colors)
    )
    pal = np.asarray(flat, dtype=np.uint8).reshape(-1, 4)
    visible = pal[pal[:, 3] > 0]
    if (frames[..., 3] == 0).any() or len(visible) == 0:
        return np.concatenate([visible[: max(0, int(max_colors) - 1)], np.zeros((1, 4), np.uint8)])
    return visible


def remap(frames: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Map every pixel to its nearest palette entry → (F, H, W) uint8 indices."""
    pal = np.asarray(palette, dtype=np.uint8)
    opaque_ids = np.flatnonzero(pal[:, 3] == 255)
    clear_ids = np.flatnonzero(pal[:, 3] == 0)
    out = np.zeros(frames.shape[:3], dtype=np.uint8)
    pal_img = _pillow_palette(pal[opaque_ids, :3]) if len(opaque_ids) else None
    for i, frame in enumerate(frames):
        alpha = frame[..., 3]
        clear = alpha == 0
        rest = (alpha > 0) & (alpha < 255)
        idx = np.zeros(alpha.shape, dtype=np.uint8)
        if pal_img is not None:
            rgb = Image.fromarray(np.ascontiguousarray(frame[..., :3]), "RGB")
            q = np.asarray(rgb.quantize(palette=pal_img, dither=Image.Dither.NONE))
            q = np.where(q >= len(opaque_ids), 0, q)  # padded entries duplicate entry 0
            idx = opaque_ids[q].astype(np.uint8)
        else:
            rest |= alpha == 255
        if clear.any():
            idx[clear] = clear_ids[0] if len(clear_ids) else _nearest(frame[clear], pal)
        if rest.any():
            idx[rest] = _nearest(frame[rest], pal)
        out[i] = idx
    return out


def _pillow_palette(rgb: np.ndarray) -> Image.Image:
    full = np.zeros((256, 3), dtype=np.uint8)
    full[:] = rgb[0]
    full[: len(rgb)] = rgb
    img = Image.new("P", (1, 1))
    img.putpalette(full.tobytes())
    return img


def _nearest(pixels: np.ndarray, pal: np.ndarray) -> np.ndarray:
    """Nearest entry in premultiplied RGBA space (so a faint edge pixel matches a faint entry).

    Pixels are snapped to a 5-bit colour / 3-bit alpha grid first: a 256-entry palette cannot resolve finer
    steps, and the few distinct grid cells (not millions of noisy pixels) go through the distance search,
    found with a presence table instead of a sort.
    """
    px = pixels.reshape(-1, 4).astype(np.int32)
    keys = ((px[:, 3] >> 5) << 15) | ((px[:, 0] >> 3) << 10) | ((px[:, 1] >> 3) << 5) | (px[:, 2] >> 3)
    present = np.zeros(1 << 18, dtype=bool)
    present[keys] = True
    cells = np.flatnonzero(present)
    centre = np.stack([((cells >> 10) & 31) * 8 + 4, ((cells >> 5) & 31) * 8 + 4, (cells & 31) * 8 + 4,
                       (cells >> 15) * 32 + 16], axis=1).astype(np.float32)

    def premul(x: np.ndarray) -> np.ndarray:
        x = x.astype(np.float32)
        return np.concatenate([x[:, :3] * x[:, 3:4] / 255.0, x[:, 3:4]], axis=1)

    p, q = premul(centre), premul(pal)
    q_norm = (q * q).sum(axis=1)
    lut = np.zeros(1 << 18, dtype=np.uint8)
    for s in range(0, len(p), 65536):
        chunk = p[s : s + 65536]
        # |p - q|^2 = |p|^2 - 2 p.q + |q|^2; |p|^2 is constant per pixel, so argmin needs only the rest.
        lut[cells[s : s + 65536]] = (q_norm[None, :] - 2.0 * chunk @ q.T).argmin(axis=1)
    return lut[keys]


def palette_rgb_neighbour(palette: np.ndarray, index: int) -> int:
    """The visible palette entry closest in colour to ``index`` (used to make a duplicate GIF frame differ)."""
    pal = palette.astype(np.int32)
    d = ((pal[:, :3] - pal[index, :3]) ** 2).sum(axis=1) + np.where(pal[:, 3] == 255, 0, 1 << 30)
    d[index] = 1 << 31
    return int(d.argmin())
