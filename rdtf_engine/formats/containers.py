"""Structure walks of GIF, PNG/APNG and WebP files: no pixels decoded, every length checked.

Two users: the importer reads canvas size and declared frame count here to refuse bombs *before* Pillow
allocates anything, and ``check`` reads what platforms look at (loop count, per-frame delays, frame rectangles,
metadata chunks) straight from the bytes rather than through Pillow's normalised view. The walk also finds
where the format's data ends, so bytes appended after it (polyglots) can be spotted.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from rdtf_engine.core.errors import FormatError


@dataclass
class ContainerInfo:
    format: str  # "gif" | "png" | "apng" | "webp"
    width: int
    height: int
    frames: int  # declared frames (1 for a still image)
    durations_ms: list[float] = field(default_factory=list)  # raw, as stored (GIF: centiseconds x 10)
    loop: int | None = None  # 0 = forever; None = no loop info (GIF without NETSCAPE: plays once)
    rects: list[tuple[int, int, int, int]] = field(default_factory=list)  # x, y, w, h per frame
    end: int = 0  # offset just past the format's own data
    has_alpha: bool = False
    texts: dict[str, str] = field(default_factory=dict)  # PNG text chunks, GIF comment, WebP XMP/EXIF
    exif: bytes = b""
    # Where each frame's data lives, for the GIF/APNG compositors (offsets into the file, never copies):
    # GIF: {x, y, w, h, packed, lct: (start, end) | None, data: (start, end), disposal, transparent}
    # APNG: {x, y, w, h, dispose, blend, data: [(start, end), ...]}
    parts: list[dict] = field(default_factory=list)
    palette: tuple[int, int] | None = None  # GIF global colour table span
    png_chunks: dict[str, bytes] = field(default_factory=dict)  # APNG: IHDR / PLTE / tRNS bodies


def _need(data: bytes, end: int, what: str) -> None:
    if end > len(data):
        raise FormatError(f"truncated file: {what} runs past the end of the data")


def walk_gif(data: bytes) -> ContainerInfo:
    _need(data, 13, "GIF header")
    width, height, packed = struct.unpack_from("<HHB", data, 6)
    info = ContainerInfo("gif", width, height, 0)
    pos = 13
    if packed & 0x80:
        info.palette = (pos, pos + 3 * (2 ** ((packed & 7) + 1)))
        pos = info.palette[1]
        _need(data, pos, "GIF global colour table")
    delay: float | None = None
    disposal, transparent = 0, None
    while True:
        _need(data, pos + 1, "GIF block")
        tag = data[pos]
        pos += 1
        if tag == 0x3B:  # trailer
            info.end = pos
            break
        if tag == 0x21:
            _need(data, pos + 1, "GIF extension")
            label = data[pos]
            pos += 1
            body, pos = _gif_subblocks(data, pos)
            if label == 0xF9 and len(body) >= 4:
                gce_flags, cs, tindex = struct.unpack_from("<BHB", body, 0)
                delay = cs * 10.0
                disposal = (gce_flags >> 2) & 7
                transparent = tindex if gce_flags & 1 else None
                info.has_alpha = info.has_alpha or bool(gce_flags & 1)
            elif label == 0xFF and body[:11] in (b"NETSCAPE2.0", b"ANIMEXTS1.0") and len(body) >= 14:
                info.loop = struct.unpack_from("<H", body, 12)[0]
            elif label == 0xFE:
                info.texts["comment"] = info.texts.get("comment", "") + body.decode("utf-8", "replace")
            continue
        if tag == 0x2C:
            _need(data, pos + 9, "GIF image descriptor")
            x, y, w, h, fpacked = struct.unpack_from("<HHHHB", data, pos)
            pos += 9
            lct = None
            if fpacked & 0x80:
                lct = (pos, pos + 3 * (2 ** ((fpacked & 7) + 1)))
                pos = lct[1]
            _need(data, pos + 1, "GIF image data")
            start = pos
            pos += 1  # LZW minimum code size
            _, pos = _gif_subblocks(data, pos, keep=False)
            info.frames += 1
            info.rects.append((x, y, w, h))
            info.durations_ms.append(delay if delay is not None else 0.0)
            info.parts.append({"x": x, "y": y, "w": w, "h": h, "packed": fpacked, "lct": lct, "data": (start, pos),
                               "disposal": disposal, "transparent": transparent})
            delay, disposal, transparent = None, 0, None
            continue
        if info.frames:
            # Browsers stop at the first unknown block after a frame; so do we.
            info.end = pos - 1
            break
        raise FormatError(f"not a valid GIF: unknown block 0x{tag:02x} at byte {pos - 1}")
    if info.frames == 0:
        raise FormatError("GIF has no image frames")
    return info


def _gif_subblocks(data: bytes, pos: int, keep: bool = True) -> tuple[bytes, int]:
    parts = []
    while True:
        _need(data, pos + 1, "GIF data sub-block")
        n = data[pos]
        pos += 1
        if n == 0:
            return b"".join(parts), pos
        _need(data, pos + n, "GIF data sub-block")
        if keep:
            parts.append(data[pos : pos + n])
        pos += n


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def walk_png(data: bytes) -> ContainerInfo:
    if not data.startswith(PNG_SIGNATURE):
        raise FormatError("not a PNG file")
    pos = 8
    info = ContainerInfo("png", 0, 0, 1)
    declared = None
    hidden_default = False
    while True:
        _need(data, pos + 8, "PNG chunk header")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        body_start = pos + 8
        _need(data, body_start + length + 4, f"PNG chunk {ctype!r}")
        body = data[body_start : body_start + length]
        pos = body_start + length + 4
        if ctype == b"IHDR":
            if length < 13:
                raise FormatError("PNG IHDR chunk is too short")
            info.width, info.height, _depth, color = struct.unpack_from(">IIBB", body, 0)
            info.has_alpha = color in (4, 6)
            info.png_chunks["IHDR"] = bytes(body[:13])
        elif ctype in (b"PLTE", b"tRNS"):
            info.png_chunks[ctype.decode()] = bytes(body)
            info.has_alpha = info.has_alpha or ctype == b"tRNS"
        elif ctype == b"acTL" and length >= 8:
            declared, plays = struct.unpack_from(">II", body, 0)
            info.loop = plays
        elif ctype == b"fcTL" and length >= 26:
            _seq, w, h, x, y, num, den, dispose, blend = struct.unpack_from(">IIIIIHHBB", body, 0)
            info.rects.append((x, y, w, h))
            info.durations_ms.append(1000.0 * num / (den or 100))
            info.parts.append({"x": x, "y": y, "w": w, "h": h, "dispose": dispose, "blend": blend, "data": []})
        elif ctype == b"IDAT" and info.parts and not hidden_default:
            info.parts[-1]["data"].append((body_start, body_start + length))
        elif ctype == b"IDAT" and not info.parts:
            hidden_default = True  # an IDAT before any fcTL is a still image outside the animation
        elif ctype == b"fdAT" and info.parts and length >= 4:
            info.parts[-1]["data"].append((body_start + 4, body_start + length))
        elif ctype in (b"tEXt", b"iTXt", b"zTXt"):
            _png_text(ctype, body, info.texts)
        elif ctype == b"IEND":
            info.end = pos
            break
    if info.width == 0:
        raise FormatError("PNG has no IHDR chunk")
    if declared is not None:
        info.format = "apng"
        info.frames = max(int(declared), len(info.rects))
    return info


def _png_text(ctype: bytes, body: bytes, texts: dict[str, str]) -> None:
    key, _, rest = body.partition(b"\0")
    name = key.decode("latin-1", "replace")
    if ctype == b"tEXt":
        texts[name] = rest.decode("latin-1", "replace")
    elif ctype == b"iTXt" and len(rest) >= 2 and rest[0] == 0:  # uncompressed iTXt only (no inflate here)
        _lang, _, rest2 = rest[2:].partition(b"\0")
        _tkey, _, text = rest2.partition(b"\0")
        texts[name] = text.decode("utf-8", "replace")


def walk_webp(data: bytes) -> ContainerInfo:
    _need(data, 12, "RIFF header")
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise FormatError("not a WebP file")
    riff_end = 8 + struct.unpack_from("<I", data, 4)[0]
    _need(data, riff_end, "WebP RIFF data")
    info = ContainerInfo("webp", 0, 0, 0, end=riff_end)
    pos = 12
    while pos + 8 <= riff_end:
        fourcc, size = struct.unpack_from("<4sI", data, pos)
        body = data[pos + 8 : pos + 8 + size]
        if len(body) < size:
            raise FormatError(f"truncated WebP chunk {fourcc!r}")
        pos += 8 + size + (size & 1)
        if fourcc == b"VP8X" and size >= 10:
            flags = body[0]
            info.has_alpha = bool(flags & 0x10)
            info.width = 1 + int.from_bytes(body[4:7], "little")
            info.height = 1 + int.from_bytes(body[7:10], "little")
        elif fourcc == b"ANIM" and size >= 6:
            info.loop = struct.unpack_from("<H", body, 4)[0]
        elif fourcc == b"ANMF" and size >= 16:
            x, y = 2 * int.from_bytes(body[0:3], "little"), 2 * int.from_bytes(body[3:6], "little")
            w, h = 1 + int.from_bytes(body[6:9], "little"), 1 + int.from_bytes(body[9:12], "little")
            info.rects.append((x, y, w, h))
            info.durations_ms.append(float(int.from_bytes(body[12:15], "little")))
            info.frames += 1
        elif fourcc in (b"VP8 ", b"VP8L") and info.frames == 0:
            w, h, alpha = _webp_bitstream_size(fourcc, body)
            if not info.width:
                info.width, info.height = w, h
            info.has_alpha = info.has_alpha or alpha
            info.frames = 1
            info.rects.append((0, 0, w, h))
        elif fourcc == b"XMP ":
            info.texts["xmp"] = body.decode("utf-8", "replace")
        elif fourcc == b"EXIF":
            info.exif = bytes(body)
    if info.width == 0 or info.frames == 0:
        raise FormatError("WebP has no image data")
    return info


def _webp_bitstream_size(fourcc: bytes, body: bytes) -> tuple[int, int, bool]:
    if fourcc == b"VP8L":
        if len(body) < 5 or body[0] != 0x2F:
            raise FormatError("corrupt WebP (VP8L header)")
        bits = int.from_bytes(body[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    if len(body) < 10 or body[3:6] != b"\x9d\x01\x2a":
        raise FormatError("corrupt WebP (VP8 header)")
    w, h = struct.unpack_from("<HH", body, 6)
    return w & 0x3FFF, h & 0x3FFF, False
