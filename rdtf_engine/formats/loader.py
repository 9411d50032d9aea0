"""``load_clip``: any supported sticker (bytes, file, or folder of PNG frames) → a composited RGBA ``Clip``.

Order of work for untrusted bytes: size cap → format from magic bytes → structure walk (canvas, declared
frames) → polyglot check → caps → decode frame by frame under the time budget. Every failure is a typed
``RdtfError``; nothing here writes to disk.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import FormatError, InputError, LimitError, RdtfError
from rdtf_engine.formats.captions import caption_for, emoji_from_exif
from rdtf_engine.formats.frame_collector import EnoughFrames, FrameCollector
from rdtf_engine.formats.limits import DEFAULT_CAPS, Caps, Deadline, read_file_capped
from rdtf_engine.formats.lottie_decoder import decode_lottie
from rdtf_engine.formats.raster_decoder import decode_raster
from rdtf_engine.formats.sniff import IMAGE_FORMATS, LOTTIE_FORMATS, VIDEO_FORMATS, check_polyglot, detect_format, walk
from rdtf_engine.formats.timing import normalise_durations, resample_clip


def load_clip(
    source: str | bytes | os.PathLike[str],
    *,
    max_frames: int | None = None,
    name_hint: str = "",
    caps: Caps = DEFAULT_CAPS,
    captions: dict[str, str] | None = None,
    first_frames: int | None = None,
) -> Clip:
    """Decode one sticker. ``max_frames`` resamples long clips to that budget (None keeps every frame);
    ``first_frames=N`` stops decoding after the first N frames (a start image needs one, not the whole file);
    the caption comes from ``captions`` (a parsed captions.csv), else ``name_hint`` or the file name."""
    if max_frames is not None and int(max_frames) < 1:
        raise InputError(f"max_frames must be at least 1, got {max_frames}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > caps.max_file_bytes:
            raise LimitError(f"the data is {len(data):,} bytes; the cap is {caps.max_file_bytes:,}")
        return decode_bytes(data, name_hint or "sticker", caps=caps, max_frames=max_frames, captions=captions,
                            first_frames=first_frames)
    path = Path(source)
    if path.is_dir():
        clip = load_frames_folder(path, caps=caps, first_frames=first_frames)
        clip.caption = caption_for(name_hint or path.name, "", captions)
        return resample_clip(clip, max_frames) if max_frames else clip
    data = read_file_capped(path, caps)
    return decode_bytes(data, name_hint or path.name, caps=caps, max_frames=max_frames, captions=captions,
                        first_frames=first_frames)


def decode_bytes(
    data: bytes,
    name: str,
    *,
    caps: Caps = DEFAULT_CAPS,
    max_frames: int | None = None,
    captions: dict[str, str] | None = None,
    metadata_emoji: str = "",
    first_frames: int | None = None,
) -> Clip:
    deadline = Deadline(caps.time_budget_s, name or "file")
    fmt = detect_format(data)
    if fmt == "zip":
        raise FormatError(f"{name} is a zip archive, not a single sticker; import it as a pack")
    if first_frames is not None and int(first_frames) < 1:
        raise InputError(f"first_frames must be at least 1, got {first_frames}")
    collector = FrameCollector(caps, deadline, max_frames, name or "file", stop_after=first_frames)
    labels: dict = {"source": name, "format": fmt}
    if metadata_emoji:
        labels["emoji"] = metadata_emoji
    try:
        _decode_into(data, fmt, collector, labels)
    except EnoughFrames:
        pass  # the first ``first_frames`` frames are all the caller asked for
    return collector.clip(caption_for(name, labels.get("emoji", ""), captions), labels)


def _decode_into(data: bytes, fmt: str, collector: FrameCollector, labels: dict) -> None:
    """Run the format's decoder into ``collector``, filling ``labels`` (format, loop, codec, metadata emoji)
    before the frames, so a decode ended early by ``first_frames`` still reports them."""
    if fmt in IMAGE_FORMATS:
        info = walk(data, fmt)
        check_polyglot(data, fmt, info)
        labels["format"] = info.format
        emoji = labels.get("emoji") or emoji_from_exif(info.exif)
        if emoji:
            labels["emoji"] = emoji
        if info.loop is not None:
            labels["loop"] = info.loop
        decode_raster(data, info, collector)
    elif fmt in VIDEO_FORMATS:
        check_polyglot(data, fmt, None)
        from rdtf_engine.formats.video_decoder import decode_video

        facts = decode_video(data, fmt, collector)
        labels.update(codec=facts["codec"], alpha=facts["alpha"])
    elif fmt in LOTTIE_FORMATS:
        check_polyglot(data, fmt, None)
        labels.update(decode_lottie(data, fmt, collector))
    else:  # pragma: no cover - detect_format only returns the formats above
        raise FormatError(f"{collector.what}: unsupported format {fmt}")


_FRAME_NAME = re.compile(r"(\d+)")


def load_frames_folder(folder: str | os.PathLike[str], *, caps: Caps = DEFAULT_CAPS,
                       first_frames: int | None = None) -> Clip:
    """A folder of PNG frames (sorted by the number in the name) + optional ``durations.json``.

    ``durations.json`` is a list of ms per frame, or {"durations_ms": [...]} / {"fps": N}; default 100 ms.
    """
    root = Path(folder)
    files = sorted(
        (p for p in root.iterdir() if p.is_file() and not p.is_symlink() and p.suffix.lower() == ".png"),
        key=lambda p: (_frame_number(p.name), p.name),
    )
    if not files:
        raise InputError(f"{root} has no PNG frames")
    if len(files) > caps.max_frames:
        raise LimitError(f"{root} has {len(files)} frames; the cap is {caps.max_frames}")
    files = files[:first_frames] if first_frames else files
    deadline = Deadline(caps.time_budget_s, root.name)
    collector = FrameCollector(caps, deadline, None, root.name)
    for p in files:
        one = decode_bytes(read_file_capped(p, caps), p.name, caps=caps)
        if one.num_frames != 1:
            raise FormatError(f"{p.name} is animated; a frames folder needs one still PNG per frame")
        collector.add(one.frames[0], one.durations_ms[0])
    clip = collector.clip(root.name, {"format": "frames", "source": root.name})
    durations = None if first_frames else _read_durations(root, clip.num_frames)
    if durations is not None:
        clip.durations_ms = durations
        clip.labels["raw_durations_ms"] = list(durations)
    return clip


def _frame_number(name: str) -> int:
    nums = _FRAME_NAME.findall(name)
    return int(nums[-1]) if nums else -1


def _read_durations(root: Path, n: int) -> list[int] | None:
    path = root / "durations.json"
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path} is not valid JSON: {exc}") from None
    if isinstance(doc, dict) and "fps" in doc and "durations_ms" not in doc:
        fps = float(doc["fps"])
        if not 0 < fps <= 1000:
            raise InputError(f"{path}: fps must be between 0 and 1000")
        doc = [1000.0 / fps] * n
    if isinstance(doc, dict):
        doc = doc.get("durations_ms")
    if not isinstance(doc, list) or not all(isinstance(d, (int, float)) for d in doc):
        raise FormatError(f"{path} must be a list of durations in ms (or {{'fps': N}})")
    if len(doc) == 1:
        doc = doc * n
    if len(doc) != n:
        raise FormatError(f"{path} has {len(doc)} durations for {n} frames")
    return normalise_durations(doc)


def clip_from_arrays(frames: np.ndarray, durations_ms: list[int], caption: str = "") -> Clip:
    """Validated construction for callers holding raw arrays (typed error instead of ValueError)."""
    try:
        return Clip(np.ascontiguousarray(frames, dtype=np.uint8), [int(d) for d in durations_ms], caption)
    except (ValueError, TypeError) as exc:
        raise InputError(str(exc)) from None


def error_summary(exc: RdtfError) -> dict:
    return {"error_type": type(exc).__name__, "message": str(exc)}
