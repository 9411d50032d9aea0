"""Hostile input: every file below must be refused with a typed RdtfError (never a crash, hang or write)."""

from __future__ import annotations

import gzip
import json
import os
import struct
import zipfile

import numpy as np
import pytest
from io_corpus import (
    GifFrame,
    apng_frames_bomb,
    build_gif,
    gif_frames_bomb,
    gif_header_bomb,
    lottie_doc,
    png_header_bomb,
    simple_frames,
    tgs_gzip_bomb,
    webp_header_bomb,
    zip_bytes,
)

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import FormatError, InputError, LimitError, RdtfError, UnsafeInputError
from rdtf_engine.datasets.dataset import import_pack
from rdtf_engine.datasets.pack import iter_pack
from rdtf_engine.formats.limits import DEFAULT_CAPS
from rdtf_engine.formats.loader import load_clip
from rdtf_engine.platforms.export import write_clip

PAL = np.array([[0, 0, 0], [255, 0, 0], [0, 0, 255]], np.uint8)


def good_gif() -> bytes:
    return build_gif(8, 8, PAL, [GifFrame(0, 0, np.full((8, 8), 1 + i % 2, np.uint8)) for i in range(3)])


def good_png(tmp_path) -> bytes:
    write_clip(Clip(simple_frames(3), [100] * 3), tmp_path / "ok.png")
    return (tmp_path / "ok.png").read_bytes()


def hostile_files(tmp_path) -> dict[str, tuple[bytes, type]]:
    gif = good_gif()
    png = good_png(tmp_path)
    zipped = zip_bytes([("a.gif", gif)])
    return {
        "empty": (b"", FormatError),
        "truncated gif": (gif[: len(gif) // 2], FormatError),
        "truncated apng": (png[: len(png) - 40], FormatError),
        "truncated webp header": (b"RIFF\xff\xff\x00\x00WEBPVP8X", FormatError),
        "gif header bomb": (gif_header_bomb(), LimitError),
        "gif frames x pixels bomb": (gif_frames_bomb(), LimitError),
        "png header bomb": (png_header_bomb(), LimitError),
        "apng declared-frames bomb": (apng_frames_bomb(), LimitError),
        "webp canvas bomb": (webp_header_bomb(), LimitError),
        "tgs gzip bomb": (tgs_gzip_bomb(), LimitError),
        "tgs not json": (gzip.compress(b"\x00\x01binary"), FormatError),
        "tgs external asset": (gzip.compress(json.dumps(lottie_doc(external=True)).encode()), UnsafeInputError),
        "tgs absurd canvas": (gzip.compress(json.dumps(lottie_doc(size=100_000)).encode()), LimitError),
        "gif + zip polyglot": (gif + zipped, UnsafeInputError),
        "png + html polyglot": (png + b"<html><script>alert(1)</script></html>", UnsafeInputError),
        "zip named .gif": (zipped, FormatError),
        "jpeg": (b"\xff\xd8\xff\xe0" + b"\0" * 64, FormatError),
        "pickle": (b"\x80\x04\x95" + b"\0" * 32, FormatError),
        "elf program": (b"\x7fELF" + b"\0" * 60, FormatError),
        "text": (b"hello, I am not a sticker\n" * 10, FormatError),
        "garbage webm": (b"\x1a\x45\xdf\xa3" + os.urandom(200), FormatError),
        "gif bad block": (gif[:13 + 768] + b"\x99" + gif[13 + 769 :], FormatError),
        "apng frame outside canvas": (_apng_frame_outside(png), FormatError),
    }


def _apng_frame_outside(png: bytes) -> bytes:
    """Move the second frame's x offset outside the canvas (fixing the chunk CRC)."""
    import zlib

    i = png.index(b"fcTL", png.index(b"fcTL") + 4)
    body = bytearray(png[i + 4 : i + 30])
    body[12:16] = struct.pack(">I", 100)
    crc = struct.pack(">I", zlib.crc32(b"fcTL" + bytes(body)) & 0xFFFFFFFF)
    return png[: i + 4] + bytes(body) + crc + png[i + 34 :]


def test_every_hostile_file_gets_a_typed_rejection(tmp_path):
    failures = []
    for name, (data, expected) in hostile_files(tmp_path).items():
        path = tmp_path / f"{name.replace(' ', '_')}.gif"  # every one named like a harmless GIF
        path.write_bytes(data)
        try:
            load_clip(path)
            failures.append(f"{name}: accepted")
        except expected:
            pass
        except RdtfError as exc:
            failures.append(f"{name}: {type(exc).__name__} instead of {expected.__name__}: {exc}")
        except Exception as exc:  # noqa: BLE001 - the point of the test: nothing untyped escapes
            failures.append(f"{name}: untyped {type(exc).__name__}: {exc}")
    assert not failures, "\n".join(failures)


def test_hostile_pack_folder_reports_each_and_keeps_going(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    for name, (data, _) in hostile_files(tmp_path).items():
        (pack / f"{name.replace(' ', '_')}.webp").write_bytes(data)
    (pack / "fine.gif").write_bytes(good_gif())
    os.symlink("/etc/passwd", pack / "link.gif")
    results = dict(iter_pack(pack))
    assert isinstance(results["fine.gif"], Clip)
    assert isinstance(results["link.gif"], UnsafeInputError)
    errors = {k: v for k, v in results.items() if k != "fine.gif"}
    assert all(isinstance(v, RdtfError) for v in errors.values()), errors
    report = import_pack(pack, tmp_path / "ds", size=32)
    assert report["imported"] == ["fine.gif"]
    assert len(report["skipped"]) == len(errors)
    assert {s["error_type"] for s in report["skipped"]} >= {"LimitError", "FormatError", "UnsafeInputError"}


def test_zip_traversal_absolute_symlink_nested_and_bombs_refused(tmp_path):
    gif = good_gif()
    bomb = b"\0" * (20 * 1024 * 1024)
    data = zip_bytes(
        [("ok/cat_waving.gif", gif), ("../evil.gif", gif), ("/abs.gif", gif), ("C:\\win.gif", gif),
         ("sub/../../up.gif", gif), ("link.gif", b"/etc/passwd"), ("inner.zip", zip_bytes([("x.gif", gif)])),
         ("bomb.gif", bomb), ("notes.txt", b"hello")],
        symlinks=("link.gif",),
    )
    (tmp_path / "pack.zip").write_bytes(data)
    results = dict(iter_pack(tmp_path / "pack.zip"))
    assert isinstance(results["ok/cat_waving.gif"], Clip)
    assert results["ok/cat_waving.gif"].caption == "cat waving"
    for name in ("../evil.gif", "/abs.gif", "C:\\win.gif", "sub/../../up.gif", "link.gif", "inner.zip"):
        assert isinstance(results[name], UnsafeInputError), (name, results[name])
    assert isinstance(results["bomb.gif"], LimitError)
    assert isinstance(results["notes.txt"], FormatError)
    out = tmp_path / "ds"
    import_pack(tmp_path / "pack.zip", out, size=32)
    assert not (tmp_path / "evil.gif").exists() and not (tmp_path / "up.gif").exists()
    written = {p.relative_to(out).parts[0] for p in out.rglob("*")}
    assert written <= {"manifest.json", "captions.csv"} | {p.name for p in out.glob("clips-*")}


def test_zip_limits_on_entries_and_total(tmp_path):
    gif = good_gif()
    (tmp_path / "many.zip").write_bytes(zip_bytes([(f"{i}.gif", gif) for i in range(30)]))
    with pytest.raises(LimitError):
        list(iter_pack(tmp_path / "many.zip", caps=DEFAULT_CAPS.replace(max_zip_entries=10)))
    with pytest.raises(LimitError):
        list(iter_pack(tmp_path / "many.zip", caps=DEFAULT_CAPS.replace(max_zip_total_bytes=1000)))


def test_corrupt_zip_and_corrupt_entry(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04" + os.urandom(100))
    with pytest.raises(FormatError):
        list(iter_pack(tmp_path / "bad.zip"))
    data = bytearray(zip_bytes([("a.gif", good_gif() * 3)]))
    start = data.index(b"a.gif") + 5
    data[start + 5 : start + 25] = os.urandom(20)  # corrupt the deflate stream; the CRC check must catch it
    (tmp_path / "entry.zip").write_bytes(bytes(data))
    (_name, item), = list(iter_pack(tmp_path / "entry.zip"))
    assert isinstance(item, (FormatError, LimitError)), item


def test_encrypted_entry_refused(tmp_path):
    data = bytearray(zip_bytes([("a.gif", good_gif())]))
    # Set the "encrypted" flag bit in both the local and the central header.
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        i = data.index(sig)
        off = i + (6 if sig == b"PK\x03\x04" else 8)
        data[off] |= 1
    (tmp_path / "enc.zip").write_bytes(bytes(data))
    (_, item), = list(iter_pack(tmp_path / "enc.zip"))
    assert isinstance(item, FormatError) and "encrypted" in str(item)


def test_time_budget_and_frame_caps(tmp_path):
    frames = [GifFrame(0, 0, np.full((64, 64), 1 + i % 2, np.uint8)) for i in range(40)]
    data = build_gif(64, 64, PAL, frames)
    with pytest.raises(LimitError, match="time budget"):
        load_clip(data, caps=DEFAULT_CAPS.replace(time_budget_s=1e-6))
    with pytest.raises(LimitError, match="frames"):
        load_clip(data, caps=DEFAULT_CAPS.replace(max_frames=10))
    with pytest.raises(LimitError):
        load_clip(data, caps=DEFAULT_CAPS.replace(max_file_bytes=100))


def test_missing_and_bad_paths_are_input_errors(tmp_path):
    with pytest.raises(InputError):
        load_clip(tmp_path / "nope.gif")
    with pytest.raises(InputError):
        list(iter_pack(tmp_path / "nope"))
    with pytest.raises(InputError):
        load_clip(good_gif(), max_frames=0)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x.txt").write_text("mine")
    with pytest.raises(InputError, match="not empty"):
        import_pack(tmp_path / "busy", tmp_path / "busy", size=32)


def test_zip_with_lying_declared_size(tmp_path):
    gif = good_gif()
    data = bytearray(zip_bytes([("a.gif", gif)]))
    central = data.index(b"PK\x01\x02")
    size_off = central + 24  # uncompressed size in the central directory
    struct.pack_into("<I", data, size_off, 10)
    (tmp_path / "lie.zip").write_bytes(bytes(data))
    (_, item), = list(iter_pack(tmp_path / "lie.zip"))
    assert isinstance(item, (FormatError, LimitError)), item


def test_zip_never_extracted_even_for_good_entries(tmp_path):
    (tmp_path / "p.zip").write_bytes(zip_bytes([("a.gif", good_gif())]))
    before = set(os.listdir(tmp_path))
    assert [n for n, _ in iter_pack(tmp_path / "p.zip")] == ["a.gif"]
    assert set(os.listdir(tmp_path)) == before
    with zipfile.ZipFile(tmp_path / "p.zip") as zf:
        assert zf.namelist() == ["a.gif"]
