"""Format detection by content (magic bytes), never by file name, plus the polyglot check.

A sticker named ``cat.png`` may be a GIF, a zip, or something hostile; only the bytes decide how it is parsed.
A polyglot (a GIF that is also a zip or carries an HTML/script payload after its end) is refused outright: it
is never a legitimate sticker and passing it through an export would re-publish the payload.
"""

from __future__ import annotations

import io
import zipfile

from rdtf_engine.core.errors import FormatError, UnsafeInputError
from rdtf_engine.formats.containers import PNG_SIGNATURE, ContainerInfo, walk_gif, walk_png, walk_webp

# Sticker formats we decode. "zip" is a pack, handled by pack.py, never by a frame decoder.
IMAGE_FORMATS = ("gif", "png", "apng", "webp")
VIDEO_FORMATS = ("webm", "mkv", "mp4")
LOTTIE_FORMATS = ("tgs", "lottie")

# Signatures of other containers that must not hide after (or inside) a sticker's own data.
_FOREIGN_SIGNATURES = (
    b"PK\x03\x04", b"PK\x05\x06", b"%PDF", b"<html", b"<HTML", b"<script", b"<SCRIPT", b"<?php", b"<svg",
    b"\x7fELF", b"MZ\x90\x00", b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c",
)


def detect_format(data: bytes) -> str:
    """The container format of ``data``; raises FormatError for anything we do not read."""
    head = data[:64]
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(PNG_SIGNATURE):
        return "png"  # "apng" is decided by the structure walk (acTL chunk)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska or WebM
        return "webm" if b"webm" in data[:4096] else "mkv"
    if head[4:8] == b"ftyp":
        return "mp4"
    if head[:2] == b"\x1f\x8b":
        return "tgs"  # gzip: Telegram's animated stickers are gzipped Lottie JSON; lottie.py verifies
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"{") and b'"layers"' in data[:1 << 20]:
        return "lottie"
    if not data:
        raise FormatError("the file is empty")
    kind = _known_other(head)
    if kind:
        raise FormatError(f"this is {kind}, not an animated sticker (GIF, APNG, WebP, WebM, MP4, TGS)")
    raise FormatError("unrecognised file content: not a GIF, PNG/APNG, WebP, WebM, MP4 or Telegram TGS sticker")


def _known_other(head: bytes) -> str:
    if head.startswith(b"\xff\xd8\xff"):
        return "a JPEG photo (no transparency or animation)"
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return "a TIFF image"
    if head.startswith(b"BM"):
        return "a BMP image"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith((b"\x7fELF", b"MZ")):
        return "a program"
    if head.startswith(b"\x80") and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return "a Python pickle (never loaded)"
    return ""


def walk(data: bytes, fmt: str) -> ContainerInfo:
    if fmt == "gif":
        return walk_gif(data)
    if fmt == "png":
        return walk_png(data)
    if fmt == "webp":
        return walk_webp(data)
    raise FormatError(f"no structure walk for {fmt}")


def check_polyglot(data: bytes, fmt: str, info: ContainerInfo | None) -> None:
    """Refuse files that are also another container (appended zip, trailing HTML/script, executables)."""
    if fmt == "zip":
        return
    if info is not None and info.end and info.end < len(data):
        trailing = data[info.end :]
        for sig in _FOREIGN_SIGNATURES:
            if sig in trailing:
                raise UnsafeInputError(
                    f"{fmt.upper()} file carries another file after its end ({sig[:8]!r}…): a polyglot, refused"
                )
    tail = data[-(65536 + 22) :]
    if b"PK\x05\x06" in tail and zipfile.is_zipfile(io.BytesIO(data)):
        raise UnsafeInputError(f"{fmt.upper()} file is also a zip archive (polyglot), refused")
