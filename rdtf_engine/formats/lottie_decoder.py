"""Telegram ``.tgs`` (gzipped Lottie JSON) and plain Lottie JSON → RGBA frames via rlottie-python.

A .tgs is tiny on disk (Telegram caps it at 64 KB) but gzip can inflate it arbitrarily, so it is inflated with
a hard output cap *before* any JSON parsing. Lottie can point image assets at files on disk; rlottie would
read them, so any asset that is not embedded (``data:`` URI) is refused. rlottie renders premultiplied
alpha; frames are un-premultiplied to the straight RGBA a ``Clip`` holds.
"""

from __future__ import annotations

import json
import zlib

import numpy as np

from rdtf_engine.core.errors import DependencyError, FormatError, LimitError, UnsafeInputError
from rdtf_engine.formats.frame_collector import FrameCollector
from rdtf_engine.formats.limits import Caps, check_canvas


def inflate_tgs(data: bytes, caps: Caps) -> bytes:
    cap = caps.max_lottie_json_bytes
    try:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper
        out = d.decompress(data, cap + 1)
    except zlib.error as exc:
        raise FormatError(f"not a valid gzip-compressed Telegram sticker: {exc}") from None
    if len(out) > cap or d.unconsumed_tail:
        raise LimitError(f"the sticker inflates to more than {cap:,} bytes of JSON (gzip bomb?)")
    if not d.eof:
        raise FormatError("truncated .tgs file (gzip stream ends early)")
    return out


def parse_lottie(text: bytes, caps: Caps, what: str = "sticker") -> dict:
    if len(text) > caps.max_lottie_json_bytes:
        raise LimitError(f"{what}: Lottie JSON is over {caps.max_lottie_json_bytes:,} bytes")
    try:
        doc = json.loads(text.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(f"{what} is not valid Lottie JSON: {str(exc)[:120]}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise FormatError(f"{what} is JSON but not a Lottie animation (no layers)")
    try:
        w, h = int(doc["w"]), int(doc["h"])
        fr, ip, op = float(doc["fr"]), float(doc.get("ip", 0)), float(doc["op"])
    except (KeyError, TypeError, ValueError):
        raise FormatError(f"{what}: Lottie header lacks w/h/fr/op") from None
    check_canvas(w, h, caps, what)
    if not (0 < fr <= 240) or not (op > ip):
        raise FormatError(f"{what}: Lottie frame rate {fr} or frame range {ip}..{op} is invalid")
    for asset in doc.get("assets") or []:
        path = asset.get("p") if isinstance(asset, dict) else None
        if isinstance(path, str) and "layers" not in asset and not path.startswith("data:"):
            raise UnsafeInputError(f"{what}: Lottie references an external file ({path[:60]!r}); refused")
    return doc


def decode_lottie(data: bytes, fmt: str, collector: FrameCollector) -> dict:
    caps, what = collector.caps, collector.what
    text = inflate_tgs(data, caps) if fmt == "tgs" else data
    doc = parse_lottie(text, caps, what)
    try:
        from rlottie_python import LottieAnimation
    except ImportError as exc:  # pragma: no cover - rlottie-python is a declared dependency
        raise DependencyError(
            "rendering Telegram .tgs stickers needs the 'rlottie-python' package (pip install rlottie-python)"
        ) from exc
    w, h = int(doc["w"]), int(doc["h"])
    fr = float(doc["fr"])
    total = round(float(doc["op"]) - float(doc.get("ip", 0)))
    wanted = _frame_numbers(total, collector.budget, caps.max_frames)
    if len(wanted) * w * h > caps.max_total_pixels:
        raise LimitError(f"{what}: {len(wanted)} frames of {w}x{h} exceed the frames x pixels cap")
    anim = LottieAnimation.from_data(json.dumps(doc))
    try:
        rendered_total = int(anim.lottie_animation_get_totalframe())
        if rendered_total <= 0:
            raise FormatError(f"{what}: the Lottie renderer could not load this animation")
        step_ms = 1000.0 / fr
        for i, n in enumerate(wanted):
            nxt = wanted[i + 1] if i + 1 < len(wanted) else total
            img = anim.render_pillow_frame(frame_num=min(n, rendered_total - 1), width=w, height=h)
            collector.add(unpremultiply(np.asarray(img.convert("RGBA"))), (nxt - n) * step_ms)
    finally:
        del anim
    return {"fps": fr, "original_frames": total, "tgs": bool(doc.get("tgs"))}


def _frame_numbers(total: int, budget: int | None, cap: int) -> list[int]:
    """Which Lottie frames to render: all of them, or ``budget`` spread evenly over the loop."""
    if total > cap and not budget:
        raise LimitError(f"the animation has {total} frames; the cap is {cap}")
    if budget and total > budget:
        return sorted({int(j * total / budget) for j in range(budget)})
    return list(range(total))


def unpremultiply(rgba: np.ndarray) -> np.ndarray:
    out = rgba.copy()
    a = rgba[..., 3:4].astype(np.uint16)
    nz = a[..., 0] > 0
    rgb = rgba[..., :3].astype(np.uint16)
    scaled = np.minimum(255, (rgb * 255 + a // 2) // np.maximum(a, 1))
    out[..., :3] = np.where(nz[..., None], scaled, 0).astype(np.uint8)
    return out
