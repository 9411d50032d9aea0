"""WebM (VP8/VP9, with alpha) and MP4 → RGBA frames through PyAV.

FFmpeg's native VP8/VP9 decoders drop the alpha plane, which WebM keeps in a separate BlockAdditional stream;
only libvpx's decoders read it. So a WebM that declares ``alpha_mode`` is decoded with ``libvpx-vp9`` /
``libvpx`` explicitly (PyAV's wheels bundle libvpx), everything else with the default decoder. Only a short
list of codecs is accepted: a sticker never needs FFmpeg's hundreds of demuxer/decoder attack surfaces.
"""

from __future__ import annotations

import io
from fractions import Fraction
from itertools import pairwise

import numpy as np

from rdtf_engine.core.errors import DependencyError, FormatError, LimitError
from rdtf_engine.formats.frame_collector import FrameCollector
from rdtf_engine.formats.limits import check_canvas, check_frame_budget

_ALLOWED_CODECS = {"vp8", "vp9", "av1", "h264", "hevc"}
_ALPHA_DECODERS = {"vp9": "libvpx-vp9", "vp8": "libvpx"}
_DEMUXER = {"webm": "matroska", "mkv": "matroska", "mp4": "mp4"}


def _av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a hard dependency in pyproject
        raise DependencyError("reading WebM/MP4 needs the 'av' package (pip install av)") from exc
    return av


def decode_video(data: bytes, fmt: str, collector: FrameCollector) -> dict:
    """Decode into ``collector``; returns facts for labels/checks (codec, alpha, audio, fps)."""
    av = _av()
    what = collector.what
    try:
        container = av.open(io.BytesIO(data), mode="r", format=_DEMUXER[fmt])
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise FormatError(f"{what} is not a readable {fmt.upper()} file: {exc}") from None
    try:
        return _decode_container(av, container, fmt, collector)
    except (av.error.FFmpegError, ValueError, OSError, EOFError) as exc:
        raise FormatError(f"{what} is a damaged {fmt.upper()} file: {exc}") from None
    except MemoryError:
        raise LimitError(f"{what} needs more memory than is available to decode") from None
    finally:
        container.close()


def _decode_container(av, container, fmt: str, collector: FrameCollector) -> dict:
    what = collector.what
    if not container.streams.video:
        raise FormatError(f"{what} has no video stream")
    stream = container.streams.video[0]
    codec = stream.codec_context.name
    if codec not in _ALLOWED_CODECS:
        raise FormatError(f"{what} uses the {codec} video codec; stickers must be VP9, VP8, AV1 or H.264")
    width, height = stream.codec_context.width, stream.codec_context.height
    check_canvas(width, height, collector.caps, what)
    declared = _declared_frames(stream, container)
    if declared:
        check_frame_budget(declared, width, height, collector.caps, what)
    alpha = str(stream.metadata.get("alpha_mode", stream.metadata.get("ALPHA_MODE", "0"))) == "1"
    decoder = None
    if alpha and codec in _ALPHA_DECODERS and _ALPHA_DECODERS[codec] in av.codecs_available:
        decoder = av.codec.CodecContext.create(_ALPHA_DECODERS[codec], "r")
    tb = stream.time_base or Fraction(1, 1000)
    pending: tuple[float, np.ndarray] | None = None
    last_packet_ms = 0.0
    for packet in container.demux(stream):
        collector.deadline.check()
        if not packet.size:
            continue  # the demuxer's end marker; decoders are flushed once below
        if packet.duration:
            last_packet_ms = float(packet.duration * tb * 1000)
        for frame in decoder.decode(packet) if decoder else packet.decode():
            pending = _push(frame, tb, pending, collector, alpha and decoder is not None)
    for frame in decoder.decode(None) if decoder else stream.codec_context.decode(None):
        pending = _push(frame, tb, pending, collector, alpha and decoder is not None)
    if pending is not None:
        tail = last_packet_ms or (np.mean(collector.durations) if collector.durations else 100.0)
        collector.add(pending[1], tail)
    audio = bool(container.streams.audio)
    rate = stream.average_rate or stream.guessed_rate
    return {
        "codec": codec,
        "alpha": alpha,
        "audio": audio,
        "rate": float(rate) if rate else None,
        "metadata": {str(k): str(v) for k, v in container.metadata.items()},
    }


def _push(frame, tb: Fraction, pending, collector: FrameCollector, keep_alpha: bool):
    pts = frame.pts if frame.pts is not None else (pending[0] + 1 if pending else 0)
    ftb = frame.time_base or tb
    t_ms = float(pts * ftb * 1000)
    rgba = frame.to_ndarray(format="rgba") if keep_alpha else _opaque(frame.to_ndarray(format="rgb24"))
    if pending is not None:
        collector.add(pending[1], max(0.0, t_ms - pending[0]))
    return (t_ms, rgba)


def _opaque(rgb: np.ndarray) -> np.ndarray:
    out = np.empty(rgb.shape[:2] + (4,), dtype=np.uint8)
    out[..., :3] = rgb
    out[..., 3] = 255
    return out


def _declared_frames(stream, container) -> int:
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if container.duration and rate:
        return int(container.duration / 1_000_000 * float(rate)) + 1
    return 0


def read_video_facts(data: bytes, fmt: str) -> dict:
    """Container facts ``check`` needs without decoding pixels: codec, size, audio, alpha, tags, durations."""
    av = _av()
    try:
        container = av.open(io.BytesIO(data), mode="r", format=_DEMUXER.get(fmt, "matroska"))
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise FormatError(f"not a readable {fmt.upper()} file: {exc}") from None
    try:
        if not container.streams.video:
            raise FormatError("the file has no video stream")
        stream = container.streams.video[0]
        tb = stream.time_base or Fraction(1, 1000)
        pts: list[float] = []
        last_dur = 0.0
        for packet in container.demux(stream):
            if packet.size and packet.pts is not None:
                pts.append(float(packet.pts * tb * 1000))
                last_dur = float((packet.duration or 0) * tb * 1000)
        pts.sort()
        durations = [b - a for a, b in pairwise(pts)] + ([last_dur] if pts else [])
        return {
            "codec": stream.codec_context.name,
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "alpha": str(stream.metadata.get("alpha_mode", "0")) == "1",
            "audio": bool(container.streams.audio),
            "streams": len(container.streams),
            "durations": durations,
            "container_ms": (container.duration or 0) / 1000.0,
            "metadata": {str(k): str(v) for k, v in container.metadata.items()},
        }
    except av.error.FFmpegError as exc:
        raise FormatError(f"damaged {fmt.upper()} file: {exc}") from None
    finally:
        container.close()
