"""How a clip is enlarged onto a preset's canvas: the upscalers an export can use and the ones measured beside them.

- ``learned`` (the default): the shipped 2× network (``model/upscaler.py``) as many times as the scale allows
  (128 → 512 px: twice), then premultiplied Lanczos for what is left (and for any shrink). Chosen by measurement
  on held-out artist frames (docs/results.md, "Upscaling to 512 px"). Used only when a clip is enlarged by 2× or
  more; when torch or the weights are unavailable the export falls back to Lanczos and says so.
- ``lanczos``: premultiplied Lanczos (Pillow resizes RGBA premultiplied), what every export did before.
- ``bicubic`` and ``unsharp`` (Lanczos, then a mild unsharp mask whose settings were chosen on validation frames
  of the training split) are candidates of the measurement only.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from rdtf_engine.formats.timing import fit_canvas

EXPORT_UPSCALERS = ("learned", "lanczos")
CANDIDATES = ("lanczos", "bicubic", "unsharp", "learned")
MIN_LEARNED_SCALE = 2.0  # below 2× the network has no pass to make: Lanczos alone
# Unsharp mask (radius in source px, percent, threshold): the best PSNR of a 15-setting grid on 256 validation
# frames of the Fluent training split (``rdtf eval-upscale --tune-unsharp``: 33.0 dB, Lanczos alone 32.1 dB).
UNSHARP = (0.5, 80, 0)


def resize_frames(frames: np.ndarray, width: int, height: int, method: str = "lanczos",
                  unsharp: tuple[float, int, int] = UNSHARP, model=None) -> np.ndarray:
    """(N, H, W, 4) uint8 straight RGBA → (N, height, width, 4) by ``method`` (one of ``CANDIDATES``); every
    method resamples premultiplied so transparent pixels' hidden colour never bleeds into the outline.
    ``unsharp``: (radius in *source* px, percent, threshold), so one setting means the same at 2× and 4×;
    ``model``: the learned upscaler to use (default the shipped one)."""
    if method == "learned":
        return _learned(frames, width, height, model)
    if method not in CANDIDATES:
        raise ValueError(f"unknown upscaler {method!r}")
    filt = Image.Resampling.BICUBIC if method == "bicubic" else Image.Resampling.LANCZOS
    out = np.empty((len(frames), height, width, 4), np.uint8)
    scale = width / frames.shape[2]
    for i, fr in enumerate(frames):
        im = Image.fromarray(fr, "RGBA").convert("RGBa").resize((width, height), filt)
        if method == "unsharp":
            im = _sharpen_premultiplied(im, unsharp[0] * scale, unsharp[1], unsharp[2])
        out[i] = np.asarray(im.convert("RGBA"))
    return out


def shrink(frames: np.ndarray, factor: int = 2) -> np.ndarray:
    """(N, H, W, 4) → (N, H/factor, W/factor, 4) by premultiplied Lanczos: how the model's training frames are
    made from real ones, so the measurement's and the learned upscaler's small frames look like generated ones."""
    h, w = frames.shape[1:3]
    return resize_frames(frames, w // factor, h // factor, "lanczos")


def _sharpen_premultiplied(im: Image.Image, radius: float, percent: int, threshold: int) -> Image.Image:
    """Unsharp mask on all four premultiplied channels (the outline sharpens with the colour), then RGB ≤ alpha
    again: sharpening overshoots, and a premultiplied colour brighter than its alpha does not exist."""
    p = np.asarray(im.filter(ImageFilter.UnsharpMask(radius, percent, threshold))).copy()  # (H, W, 4) RGBa
    p[..., :3] = np.minimum(p[..., :3], p[..., 3:4])
    return Image.fromarray(p, "RGBa")


def learned_passes(scale: float) -> int:
    """How many 2× network passes an enlargement by ``scale`` gets (0 below 2×): never past the target."""
    return math.floor(math.log2(scale) + 1e-9) if scale >= MIN_LEARNED_SCALE else 0


def _learned(frames: np.ndarray, width: int, height: int, model=None) -> np.ndarray:
    from rdtf_engine.model.upscaler import builtin_upscaler, upscale_2x

    h, w = frames.shape[1:3]
    passes = learned_passes(min(width / w, height / h))
    up = upscale_2x(model or builtin_upscaler(), frames, passes) if passes else frames
    if up.shape[1:3] == (height, width):
        return up
    return resize_frames(up, width, height, "lanczos")


def learned_available() -> str | None:
    """None when the learned upscaler can run here, else why not (torch missing, weights unusable)."""
    try:
        from rdtf_engine.model.upscaler import builtin_upscaler
    except ImportError as exc:
        return f"torch is not installed ({exc.name})"
    from rdtf_engine.core.errors import ModelError

    try:
        builtin_upscaler()
    except ModelError as exc:
        return str(exc)
    return None


def upscale_canvas(frames: np.ndarray, width: int, height: int, pad: bool, upscaler: str) -> tuple[np.ndarray, str]:
    """``fit_canvas`` with a choice of upscaler → (frames, a note for the export report: "" when the clip is not
    enlarged by 2× or more, which is resized by Lanczos exactly as always; else which upscaler made it)."""
    h, w = frames.shape[1:3]
    scale = min(width / w, height / h)
    if learned_passes(scale) == 0:
        return fit_canvas(frames, width, height, pad=pad), ""
    if upscaler != "learned":
        return fit_canvas(frames, width, height, pad=pad), "Lanczos upscale"
    why = learned_available()
    if why is not None:
        return fit_canvas(frames, width, height, pad=pad), f"Lanczos upscale: learned upscaler unavailable, {why}"
    nw, nh = (max(1, round(w * scale)), max(1, round(h * scale))) if pad else (width, height)
    big = _learned(frames, nw, nh)  # (F, nh, nw, 4): exactly the size fit_canvas would resize to
    return fit_canvas(big, width, height, pad=pad), "learned upscaler"
