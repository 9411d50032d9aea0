"""Safety caps for untrusted sticker files and packs, and the per-file time budget.

User packs come from anywhere, so every decoder checks these *before* it spends memory or CPU: Pillow's own
decompression-bomb check looks at one frame's size only, while an animation's cost is frames x canvas pixels,
and a zip's cost is what its entries inflate to. The defaults leave room for real stickers (WhatsApp allows
10 s; 512 x 512 x 256 frames is the frames x pixels cap) and refuse anything far beyond.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

from rdtf_engine.core.errors import InputError, LimitError


@dataclass(frozen=True)
class Caps:
    max_file_bytes: int = 32 * 1024 * 1024  # one sticker file (the largest platform cap is 512 KB)
    max_side: int = 4096  # either side of a canvas
    max_canvas_pixels: int = 4096 * 4096
    max_frames: int = 1000  # decoded frames in one file, before resampling to a frame budget
    max_total_pixels: int = 1 << 26  # frames x canvas pixels: 64 Mpx = 256 MiB of RGBA
    max_zip_entries: int = 2000
    max_zip_total_bytes: int = 512 * 1024 * 1024  # sum of declared uncompressed sizes
    max_zip_ratio: float = 200.0  # uncompressed / compressed per entry; zip bombs are in the thousands
    max_lottie_json_bytes: int = 16 * 1024 * 1024  # a .tgs inflates to JSON; Telegram's own cap is 64 KB gzipped
    max_pack_files: int = 5000  # files looked at in a folder pack
    time_budget_s: float = 30.0  # wall time to decode one file on a slow 2-core machine

    def replace(self, **changes: object) -> Caps:
        return dataclasses.replace(self, **changes)


DEFAULT_CAPS = Caps()


class Deadline:
    """Wall-clock budget for one file; decoders call ``check()`` between frames."""

    def __init__(self, seconds: float, what: str = "file") -> None:
        self.seconds = float(seconds)
        self.what = what
        self._end = time.monotonic() + self.seconds

    def check(self) -> None:
        if time.monotonic() > self._end:
            raise LimitError(f"{self.what} took longer than the {self.seconds:g} s time budget; skipped")


def check_canvas(width: int, height: int, caps: Caps, what: str = "image") -> None:
    if width <= 0 or height <= 0:
        raise LimitError(f"{what} has an empty canvas ({width}x{height})")
    if width > caps.max_side or height > caps.max_side or width * height > caps.max_canvas_pixels:
        raise LimitError(
            f"{what} canvas {width}x{height} is over the {caps.max_side} px / "
            f"{caps.max_canvas_pixels // 1_000_000} Mpx cap"
        )


def check_frame_budget(frames: int, width: int, height: int, caps: Caps, what: str = "animation") -> None:
    """Frames x pixels: the cost Pillow's per-frame bomb check never sees."""
    if frames > caps.max_frames:
        raise LimitError(f"{what} has {frames} frames; the cap is {caps.max_frames}")
    total = frames * width * height
    if total > caps.max_total_pixels:
        raise LimitError(
            f"{what} is {frames} frames of {width}x{height} = {total / 1e6:.0f} Mpx to decode; "
            f"the cap is {caps.max_total_pixels / 1e6:.0f} Mpx"
        )


def read_file_capped(path: str | os.PathLike[str], caps: Caps) -> bytes:
    """Read a whole file, refusing over-cap files before reading them (and files that grow while read)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise InputError(f"{p} is not a file")
        if size > caps.max_file_bytes:
            raise LimitError(f"{p.name} is {size:,} bytes; the cap is {caps.max_file_bytes:,}")
        with open(p, "rb") as fh:
            data = fh.read(caps.max_file_bytes + 1)
    except FileNotFoundError:
        raise InputError(f"no such file: {p}") from None
    except IsADirectoryError:
        raise InputError(f"{p} is a folder, not a file") from None
    except PermissionError:
        raise InputError(f"cannot read {p}: permission denied") from None
    if len(data) > caps.max_file_bytes:
        raise LimitError(f"{p.name} is over the {caps.max_file_bytes:,}-byte cap")
    return data
