"""The hostile-file corpus, generated at test time (nothing shipped): ≥ 300 files in nine kinds.

``build_corpus(folder)`` writes every file and returns {file name: kind}. It reuses the hand-written GIF / APNG
/ bomb builders of tests/io/io_corpus.py; valid WebP / WebM come from the engine's own writers (the corpus
only needs *some* valid file to truncate and corrupt), TGS from the Lottie document in io_corpus.

Kinds: ``valid`` (controls), ``truncated`` (every valid file cut at 30 offsets), ``corrupted`` (bytes
overwritten at seeded places), ``bomb`` (huge canvases, many frames, deflate bombs in PNG IDAT / zip / gzip),
``polyglot``, ``zip-entries`` (traversal, absolute, symlink, nested), ``malformed`` (chunk and field lies in
APNG fcTL/acTL, GIF LZW code size / descriptors, WebP ANIM/ANMF, WebM EBML sizes), ``at-cap`` (exactly at a
decoder cap) and ``over-cap`` (one step over).
"""

from __future__ import annotations

import gzip
import json
import random
import struct
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))  # tests/io/io_corpus.py

from io_corpus import (
    ApngFrame,
    GifFrame,
    apng_frames_bomb,
    build_apng,
    build_gif,
    gif_frames_bomb,
    gif_header_bomb,
    lottie_doc,
    png_header_bomb,
    simple_frames,
    tgs_bytes,
    webp_header_bomb,
    zip_bytes,
)

from rdtf_engine.core.clip import Clip
from rdtf_engine.formats.limits import DEFAULT_CAPS

PAL = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255], [0, 255, 0]], np.uint8)
CUTS = 30  # truncation offsets per valid file
FLIPS = 8  # seeded corruptions per valid file


def _gif(n: int = 4, side: int = 16, canvas: tuple[int, int] | None = None) -> bytes:
    w, h = canvas or (side, side)
    return build_gif(w, h, PAL, [GifFrame(0, 0, np.full((min(side, h), min(side, w)), 1 + i % 3, np.uint8))
                                 for i in range(n)])


def _apng(n: int = 3) -> bytes:
    frames = simple_frames(n, 24, 20)
    return build_apng(24, 20, [ApngFrame(0, 0, f) for f in frames])


def _encoded(tmp: Path, ext: str) -> bytes:
    from rdtf_engine.platforms.export import write_clip

    path = tmp / f"valid_src.{ext}"
    write_clip(Clip(simple_frames(4), [100] * 4), path)
    data = path.read_bytes()
    path.unlink()
    return data


def valid_files(tmp: Path) -> dict[str, bytes]:
    return {"gif": _gif(), "png": _apng(), "webp": _encoded(tmp, "webp"), "webm": _encoded(tmp, "webm"),
            "tgs": tgs_bytes(frames=12, size=64), "zip": zip_bytes([("a.gif", _gif()), ("b.png", _apng())])}


def truncations(name: str, data: bytes) -> dict[str, bytes]:
    """The first bytes (magic, header) one by one, then evenly spaced cuts up to the last byte."""
    cuts = sorted({*range(10), *np.linspace(10, len(data) - 1, CUTS - 10).astype(int).tolist()})
    return {f"trunc_{name}_{c:06d}.{name}": data[:c] for c in cuts[:CUTS]}


def corruptions(name: str, data: bytes) -> dict[str, bytes]:
    rng = random.Random(f"{name}-corrupt")
    out = {}
    for i in range(FLIPS):
        buf = bytearray(data)
        start = rng.randrange(8, len(buf) - 4)
        for j in range(rng.choice((1, 4, 16))):
            if start + j < len(buf):
                buf[start + j] = rng.randrange(256)
        out[f"corrupt_{name}_{i}.{name}"] = bytes(buf)
    return out


# ---------------------------------------------------------------- chunk editing
def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    out, pos = [], 8
    while pos + 8 <= len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        out.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]))
        pos += 12 + n
    return out


def png_join(chunks: list[tuple[bytes, bytes]]) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        struct.pack(">I", len(b)) + t + b + struct.pack(">I", zlib.crc32(t + b) & 0xFFFFFFFF) for t, b in chunks)


def png_edit(data: bytes, kind: bytes, nth: int, edit) -> bytes:
    """Re-CRC'd PNG whose ``nth`` chunk of type ``kind`` has its body replaced by ``edit(body)``."""
    chunks, seen = png_chunks(data), 0
    for i, (t, b) in enumerate(chunks):
        if t == kind:
            if seen == nth:
                chunks[i] = (t, edit(bytearray(b)))
                break
            seen += 1
    return png_join(chunks)


def _set(body: bytearray, fmt: str, off: int, *values) -> bytes:
    struct.pack_into(fmt, body, off, *values)
    return bytes(body)


def riff_find(data: bytes, fourcc: bytes, nth: int = 0) -> int:
    """Offset of the ``nth`` chunk header ``fourcc`` inside a WebP (walking into ANMF frames)."""
    pos, seen = 12, 0
    while pos + 8 <= len(data):
        tag, (n,) = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])
        if tag == fourcc:
            if seen == nth:
                return pos
            seen += 1
        pos = pos + 8 + 16 if tag == b"ANMF" else pos + 8 + n + (n & 1)
    raise ValueError(f"no {fourcc!r} chunk")


def _webp_edit(data: bytes, fourcc: bytes, off: int, raw: bytes, nth: int = 0) -> bytes:
    buf = bytearray(data)
    i = riff_find(data, fourcc, nth) + off
    buf[i : i + len(raw)] = raw
    return bytes(buf)


def _ebml_lie(data: bytes, element_id: bytes, size: bytes) -> bytes:
    """Replace the size field after ``element_id`` with ``size`` (an EBML vint)."""
    i = data.index(element_id) + len(element_id)
    width = 9 - int(data[i]).bit_length()  # a vint's length is its leading zero bits + 1
    return data[:i] + size + data[i + width :]


# ---------------------------------------------------------------- the kinds
def malformed(valid: dict[str, bytes]) -> dict[str, bytes]:
    gif, png, webp, webm = valid["gif"], valid["png"], valid["webp"], valid["webm"]
    code_size_at = gif.index(b"\x2c", 13 + 768) + 10  # the LZW minimum code size after the image descriptor
    assert gif[code_size_at] == 8
    out = {f"gif_lzw_code_size_{v}.gif": gif[:code_size_at] + bytes([v]) + gif[code_size_at + 1 :]
           for v in (0, 1, 2, 7, 11, 12, 13, 255)}
    desc = code_size_at - 9
    out["gif_frame_wider_than_screen.gif"] = gif[:desc + 4] + struct.pack("<H", 65535) + gif[desc + 6 :]
    out["gif_frame_at_far_offset.gif"] = gif[:desc] + struct.pack("<HH", 60000, 60000) + gif[desc + 4 :]
    out["gif_zero_screen.gif"] = gif[:6] + struct.pack("<HH", 0, 0) + gif[10:]
    out["gif_no_palette_flag.gif"] = gif[:10] + b"\x00" + gif[11:]
    out["gif_subblock_overrun.gif"] = gif[:-2] + b"\xff\x01\x02"
    out["gif_no_trailer.gif"] = gif[:-1]
    for label, nth, edit in (
        ("actl_zero_frames", 0, lambda b: _set(b, ">I", 0, 0)),
        ("actl_fewer_frames", 0, lambda b: _set(b, ">I", 0, 1)),
        ("actl_more_frames", 0, lambda b: _set(b, ">I", 0, 50)),
        ("actl_plays_huge", 0, lambda b: _set(b, ">I", 4, 0xFFFFFFFF)),
    ):
        out[f"apng_{label}.png"] = png_edit(png, b"acTL", nth, edit)
    for label, nth, edit in (
        ("fctl_zero_width", 1, lambda b: _set(b, ">I", 4, 0)),
        ("fctl_wider_than_canvas", 1, lambda b: _set(b, ">I", 4, 5000)),
        ("fctl_huge_offset", 1, lambda b: _set(b, ">II", 12, 0xFFFFFFF0, 0xFFFFFFF0)),
        ("fctl_zero_delay_den", 1, lambda b: _set(b, ">HH", 20, 7, 0)),
        ("fctl_bad_dispose", 1, lambda b: _set(b, ">BB", 24, 7, 9)),
        ("fctl_sequence_reversed", 1, lambda b: _set(b, ">I", 0, 99)),
        ("fctl_first_not_canvas", 0, lambda b: _set(b, ">I", 4, 3)),
        ("fctl_short_body", 1, lambda b: bytes(b[:10])),
        ("ihdr_bit_depth_3", 0, None),
    ):
        if edit is None:
            out[f"apng_{label}.png"] = png_edit(png, b"IHDR", 0, lambda b: _set(b, ">B", 8, 3))
        else:
            out[f"apng_{label}.png"] = png_edit(png, b"fcTL", nth, edit)
    chunks = png_chunks(png)
    out["apng_fdat_before_fctl.png"] = png_join([c for c in chunks if c[0] != b"fcTL"])
    out["apng_crc_wrong.png"] = png[:-5] + b"\x00" + png[-4:]
    anmf = lambda off, raw, nth=0: _webp_edit(webp, b"ANMF", 8 + off, raw, nth)
    out["webp_anmf_wider_than_canvas.webp"] = anmf(6, (16383).to_bytes(3, "little"))
    out["webp_anmf_far_offset.webp"] = anmf(0, (0xFFFFFF).to_bytes(3, "little") * 2)
    out["webp_anmf_size_lie.webp"] = _webp_edit(webp, b"ANMF", 4, struct.pack("<I", 0x7FFFFFF0))
    out["webp_anmf_size_tiny.webp"] = _webp_edit(webp, b"ANMF", 4, struct.pack("<I", 4))
    out["webp_anim_size_lie.webp"] = _webp_edit(webp, b"ANIM", 4, struct.pack("<I", 0xFFFFFFF0))
    out["webp_vp8x_zero_canvas.webp"] = _webp_edit(webp, b"VP8X", 12, b"\xff\xff\xff\xff\xff\xff")
    out["webp_riff_size_lie.webp"] = webp[:4] + struct.pack("<I", 0xFFFFFFF0) + webp[8:]
    out["webp_anmf_duration_max.webp"] = anmf(12, b"\xff\xff\xff")
    out["webm_ebml_header_size_lie.webm"] = _ebml_lie(webm, b"\x1a\x45\xdf\xa3", b"\x01\x7f\xff\xff\xff\xff\xff\xf0")
    out["webm_segment_size_lie.webm"] = _ebml_lie(webm, b"\x18\x53\x80\x67", b"\x01\x00\x00\x00\x00\x00\x00\x01")
    out["webm_cluster_size_lie.webm"] = _ebml_lie(webm, b"\x1f\x43\xb6\x75", b"\x08\xff\xff\xff")
    out["webm_tracks_size_lie.webm"] = _ebml_lie(webm, b"\x16\x54\xae\x6b", b"\x01\x00\x00\x00\xff\xff\xff\xff")
    out["webm_doctype_lie.webm"] = webm.replace(b"webm", b"mkvx", 1)
    return out


def bombs() -> dict[str, bytes]:
    zero_rows = zlib.compress(b"\0" * (4097 * (1 + 4096 * 4)), 9)  # a 4097 x 4096 RGBA image inflates to 64 MB
    return {
        "bomb_gif_canvas.gif": gif_header_bomb(),
        "bomb_gif_frames_x_pixels.gif": gif_frames_bomb(),
        "bomb_png_canvas.png": png_header_bomb(),
        "bomb_png_idat_deflate.png": png_join([(b"IHDR", struct.pack(">IIBBBBB", 4097, 4096, 8, 6, 0, 0, 0)),
                                              (b"IDAT", zero_rows), (b"IEND", b"")]),
        "bomb_apng_declared_frames.png": apng_frames_bomb(),
        "bomb_webp_canvas.webp": webp_header_bomb(),
        "bomb_tgs_gzip.tgs": gzip.compress(b"{" + b" " * (64 << 20) + b"}", 6),
        "bomb_zip_deflate.zip": zip_bytes([("a.gif", b"\0" * (64 << 20))]),
        "bomb_zip_many_small.zip": zip_bytes([(f"{i}.gif", b"\0" * 300_000) for i in range(40)]),
    }


def polyglots(valid: dict[str, bytes]) -> dict[str, bytes]:
    gif, png, webp, zipped = valid["gif"], valid["png"], valid["webp"], valid["zip"]
    html = b"<html><script>alert(1)</script></html>"
    return {"poly_gif_zip.gif": gif + zipped, "poly_png_html.png": png + html, "poly_webp_zip.webp": webp + zipped,
            "poly_zip_after_gif.zip": gif + zipped, "poly_gif_html.gif": gif + html,
            "poly_png_zip.png": png + zipped, "poly_html_first.gif": html + gif,
            "poly_pdf_gif.gif": b"%PDF-1.4\n" + gif}


def zip_entries(valid: dict[str, bytes]) -> dict[str, bytes]:
    gif = valid["gif"]
    names = {"traversal": "../evil.gif", "deep_traversal": "a/../../evil.gif", "absolute": "/tmp/abs.gif",
             "windows_drive": "C:\\evil.gif", "backslash_traversal": "..\\evil.gif", "nul_name": "a\x00.gif"}
    out = {f"zip_{k}.zip": zip_bytes([(v, gif), ("ok.gif", gif)]) for k, v in names.items()}
    out["zip_symlink.zip"] = zip_bytes([("link.gif", b"/etc/passwd"), ("ok.gif", gif)], symlinks=("link.gif",))
    out["zip_nested.zip"] = zip_bytes([("inner.zip", valid["zip"]), ("ok.gif", gif)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns while writing the duplicate on purpose
        out["zip_duplicate_names.zip"] = zip_bytes([("a.gif", gif), ("a.gif", gif)])
    return out


def caps_files() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(at-cap, over-cap): each decoder cap of DEFAULT_CAPS exactly met, and exceeded by one step."""
    c = DEFAULT_CAPS
    side, frames = c.max_side, c.max_frames
    dot = np.ones((1, 1), np.uint8)
    total_frames = c.max_total_pixels // (512 * 512)  # frames of a 512 x 512 canvas at the frames x pixels cap

    def dots(n: int, w: int, h: int) -> bytes:
        return build_gif(w, h, PAL, [GifFrame(i % w, 0, dot) for i in range(n)])

    def padded(n: int) -> bytes:
        g = _gif()
        return g + b"\0" * (n - len(g))

    def tgs(n: int) -> bytes:
        doc = json.dumps(lottie_doc(frames=6, size=32)).encode()
        return gzip.compress(doc[:-1] + b" " * (n - len(doc)) + b"}", 6)

    at = {"cap_side_gif.gif": dots(1, side, 1), "cap_canvas_gif.gif": dots(1, side, side),
          "cap_frames_gif.gif": dots(frames, 8, 8), "cap_total_pixels_gif.gif": dots(total_frames, 512, 512),
          "cap_file_bytes.gif": padded(c.max_file_bytes), "cap_lottie_json.tgs": tgs(c.max_lottie_json_bytes),
          "cap_zip_entries.zip": zip_bytes([(f"{i}.gif", b"") for i in range(c.max_zip_entries)])}
    over = {"over_side_gif.gif": dots(1, side + 1, 1), "over_canvas_gif.gif": dots(1, side, side + 1),
            "over_frames_gif.gif": dots(frames + 1, 8, 8),
            "over_total_pixels_gif.gif": dots(total_frames + 1, 512, 512),
            "over_file_bytes.gif": padded(c.max_file_bytes + 1), "over_lottie_json.tgs": tgs(c.max_lottie_json_bytes + 1),
            "over_zip_entries.zip": zip_bytes([(f"{i}.gif", b"") for i in range(c.max_zip_entries + 1)])}
    return at, over


def build_corpus(folder: Path) -> dict[str, str]:
    """Write the whole corpus into ``folder`` → {file name: kind}."""
    folder.mkdir(parents=True, exist_ok=True)
    valid = valid_files(folder)
    kinds: dict[str, dict[str, bytes]] = {"valid": {f"valid.{k}": v for k, v in valid.items()}}
    kinds["truncated"] = {n: d for k, v in valid.items() for n, d in truncations(k, v).items()}
    kinds["corrupted"] = {n: d for k, v in valid.items() for n, d in corruptions(k, v).items()}
    kinds["malformed"] = malformed(valid)
    kinds["bomb"] = bombs()
    kinds["polyglot"] = polyglots(valid)
    kinds["zip-entries"] = zip_entries(valid)
    kinds["at-cap"], kinds["over-cap"] = caps_files()
    out: dict[str, str] = {}
    for kind, files in kinds.items():
        for name, data in files.items():
            (folder / name).write_bytes(data)
            out[name] = kind
    return out
