"""GIF, PNG/APNG and WebP → composited straight-RGBA frames, after the structure walk's caps.

GIF and APNG frames are composited by ``compositor.py`` (browser/spec semantics); still PNGs and WebP go
through Pillow (WebP via libwebp's own animation decoder, the reference implementation). Neither bounds an
animation's total cost, so canvas and frames x pixels are checked from the container structure before the
first frame is decoded.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, UnidentifiedImageError

from rdtf_engine.core.errors import FormatError, LimitError
from rdtf_engine.formats.compositor import composite_apng, composite_gif
from rdtf_engine.formats.containers import ContainerInfo
from rdtf_engine.formats.frame_collector import FrameCollector
from rdtf_engine.formats.limits import check_canvas, check_frame_budget

_PIL_FORMAT = {"gif": "GIF", "png": "PNG", "apng": "PNG", "webp": "WEBP"}
# Errors Pillow raises on corrupt or truncated data. All of them mean "not a readable sticker".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError, KeyError,
                  TypeError, UnidentifiedImageError)


def decode_raster(data: bytes, info: ContainerInfo, collector: FrameCollector) -> None:
    caps, what = collector.caps, collector.what
    width, height = _extent(info)
    check_canvas(width, height, caps, what)
    check_frame_budget(info.frames, width, height, caps, what)
    # Our canvas cap (16.7 Mpx) sits far below Pillow's bomb threshold (89 Mpx), so Pillow's own check is only
    # a second line of defence here.
    try:
        _decode(data, info, collector)
    except Image.DecompressionBombError as exc:
        raise LimitError(f"{what}: {exc}") from None
    except MemoryError:
        raise LimitError(f"{what} needs more memory than is available to decode") from None
    except _DECODE_ERRORS as exc:
        raise FormatError(f"{what} is a damaged or truncated {info.format.upper()}: {_short(exc)}") from None


def _decode(data: bytes, info: ContainerInfo, collector: FrameCollector) -> None:
    if info.format == "gif":
        composite_gif(data, info, collector)
        return
    if info.format == "apng":
        composite_apng(data, info, collector)
        return
    with Image.open(io.BytesIO(data), formats=[_PIL_FORMAT[info.format]]) as im:
        n = int(getattr(im, "n_frames", 1) or 1)
        check_frame_budget(n, im.width, im.height, collector.caps, collector.what)
        check_canvas(im.width, im.height, collector.caps, collector.what)
        raw = info.durations_ms if len(info.durations_ms) == n else None
        for i in range(n):
            collector.deadline.check()
            im.seek(i)
            im.load()
            frame = _to_rgba(im)
            duration = raw[i] if raw is not None else float(im.info.get("duration", 0) or 0)
            collector.add(frame, duration)


def _to_rgba(im: Image.Image) -> np.ndarray:
    if im.mode == "RGBA":
        return np.asarray(im)
    if im.mode in ("P", "PA", "L", "LA", "RGB", "1", "I;16", "I"):
        if im.mode in ("I;16", "I"):
            im = im.point(lambda v: v / 256).convert("L")  # 16-bit grey PNG
        return np.asarray(im.convert("RGBA"))
    return np.asarray(im.convert("RGBA"))


def _extent(info: ContainerInfo) -> tuple[int, int]:
    """Canvas incl. frames placed outside the declared screen (decoders may grow the canvas for those)."""
    w, h = info.width, info.height
    for x, y, fw, fh in info.rects:
        w, h = max(w, x + fw), max(h, y + fh)
    return w, h


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) < 160 else text[:157] + "..."
