"""``iter_pack``: a folder, a zip or a single file of stickers → (entry name, Clip or typed error) pairs.

Packs are the hostile-input front door. Zips are read entry by entry into memory and never extracted, so a
``../`` or absolute entry name, or a symlink entry, cannot place anything on disk; such entries are reported
as ``UnsafeInputError`` and their bytes are never decoded. Declared sizes are checked before reading and the
real inflated size is bounded while reading (declared sizes can lie). One bad entry never stops the pack.
"""

from __future__ import annotations

import os
import stat
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import FormatError, InputError, LimitError, RdtfError, UnsafeInputError
from rdtf_engine.formats.captions import parse_captions_csv, parse_emoji_sidecar
from rdtf_engine.formats.limits import DEFAULT_CAPS, Caps, read_file_capped
from rdtf_engine.formats.loader import decode_bytes

CAPTIONS_FILE = "captions.csv"
# Pack files that describe the pack rather than being stickers; read for captions or silently ignored.
_SIDECARS = {"captions.csv", "emoji.txt", "emoji.json", "title.txt", "author.txt", "manifest.json",
             "durations.json", "readme.txt", "readme.md", "license.txt", "contents.json", "desktop.ini",
             "thumbs.db"}


def iter_pack(
    path: str | os.PathLike[str],
    *,
    caps: Caps = DEFAULT_CAPS,
    max_frames: int | None = None,
) -> Iterator[tuple[str, Clip | RdtfError]]:
    """Yield every sticker of a pack. Errors about the pack itself (missing path, corrupt zip) are raised;
    errors about one entry are yielded in its place so the caller can report and continue."""
    root = Path(path)
    if not root.exists():
        raise InputError(f"no such file or folder: {root}")
    if root.is_dir():
        yield from _iter_folder(root, caps, max_frames)
        return
    try:
        with open(root, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise InputError(f"cannot read {root}: {exc.strerror or exc}") from None
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        if root.stat().st_size > caps.max_zip_total_bytes:
            raise LimitError(f"{root.name} is over the {caps.max_zip_total_bytes:,}-byte pack cap")
        yield from _iter_zip(root, caps, max_frames)
        return
    try:
        data = read_file_capped(root, caps)
    except LimitError as exc:
        yield root.name, exc
        return
    yield root.name, _decode_entry(data, root.name, caps, max_frames, {}, {})


def pack_entry_count(path: Path) -> int:
    """How many entries ``iter_pack`` will look at (for progress); cheap: names only, no decoding."""
    try:
        if path.is_dir():
            return sum(len(files) for _d, _s, files in os.walk(path, followlinks=False))
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return sum(1 for i in zf.infolist() if not i.is_dir() and not _is_ignored(i.filename))
    except (OSError, zipfile.BadZipFile, ValueError):
        return 0
    return 1


def _decode_entry(data: bytes, name: str, caps: Caps, max_frames, table: dict, emoji: dict) -> Clip | RdtfError:
    stem = PurePosixPath(name).name.rsplit(".", 1)[0]
    try:
        return decode_bytes(data, name, caps=caps, max_frames=max_frames, captions=table,
                            metadata_emoji=emoji.get(stem, ""))
    except RdtfError as exc:
        return exc
    except RecursionError:
        return FormatError(f"{name}: structure is nested too deeply")
    except MemoryError:
        return LimitError(f"{name} needs more memory than is available")


def _is_ignored(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return any(p.startswith(".") or p == "__MACOSX" for p in parts) or PurePosixPath(name).name.lower() in _SIDECARS


def _iter_folder(root: Path, caps: Caps, max_frames) -> Iterator[tuple[str, Clip | RdtfError]]:
    entries: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        # os.walk lists a linked folder but never enters it; report it instead of dropping it silently.
        filenames = filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        for fn in sorted(filenames):
            p = Path(dirpath) / fn
            entries.append((p.relative_to(root).as_posix(), p))
            if len(entries) > caps.max_pack_files:
                raise LimitError(f"{root} holds more than {caps.max_pack_files} files")
    table = _sidecar(root / CAPTIONS_FILE, parse_captions_csv, caps)
    emoji = _sidecar(root / "emoji.txt", parse_emoji_sidecar, caps) or _sidecar(root / "emoji.json",
                                                                               parse_emoji_sidecar, caps)
    for name, p in sorted(entries):
        if _is_ignored(name):
            continue
        if p.is_symlink():
            yield name, UnsafeInputError(f"{name} is a symbolic link; links are not followed in packs")
            continue
        try:
            data = read_file_capped(p, caps)
        except RdtfError as exc:
            yield name, exc
            continue
        yield name, _decode_entry(data, name, caps, max_frames, table, emoji)


def _sidecar(path: Path, parse, caps: Caps) -> dict:
    if not path.is_file() or path.is_symlink():
        return {}
    return parse(read_file_capped(path, caps))


def check_entry_name(name: str) -> None:
    """Refuse names that would escape a folder if anyone ever extracted them."""
    n = name.replace("\\", "/")
    if "\0" in n:
        raise UnsafeInputError(f"zip entry name contains a NUL byte: {name!r}")
    if n.startswith("/") or (len(n) > 1 and n[1] == ":"):
        raise UnsafeInputError(f"zip entry {name!r} has an absolute path; refused")
    if any(part == ".." for part in n.split("/")):
        raise UnsafeInputError(f"zip entry {name!r} points outside the archive (../); refused")


def _zip_entry_problem(info: zipfile.ZipInfo, caps: Caps) -> RdtfError | None:
    try:
        check_entry_name(info.filename)
    except UnsafeInputError as exc:
        return exc
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return UnsafeInputError(f"zip entry {info.filename!r} is a symbolic link; refused")
    if info.flag_bits & 0x1:
        return FormatError(f"zip entry {info.filename!r} is encrypted")
    if info.file_size > caps.max_file_bytes:
        return LimitError(f"zip entry {info.filename!r} inflates to {info.file_size:,} bytes; the cap is "
                          f"{caps.max_file_bytes:,}")
    if info.file_size > 4096 and info.file_size > caps.max_zip_ratio * max(1, info.compress_size):
        return LimitError(f"zip entry {info.filename!r} inflates {info.file_size / max(1, info.compress_size):.0f}x "
                          f"(compression-bomb ratio); refused")
    return None


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, caps: Caps) -> bytes:
    # zipfile raises NotImplementedError for compression methods it lacks (e.g. deflate64): a damaged-entry case
    try:
        with zf.open(info) as fh:
            data = fh.read(min(info.file_size, caps.max_file_bytes) + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError, ValueError) as exc:
        raise FormatError(f"zip entry {info.filename!r} is damaged: {exc}") from None
    if len(data) > info.file_size or len(data) > caps.max_file_bytes:
        raise LimitError(f"zip entry {info.filename!r} inflates beyond its declared size; refused")
    return data


def _iter_zip(path: Path, caps: Caps, max_frames) -> Iterator[tuple[str, Clip | RdtfError]]:
    try:
        zf = zipfile.ZipFile(path)
        infos = zf.infolist()
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError) as exc:
        raise FormatError(f"the zip archive is damaged: {exc}") from None
    if len(infos) > caps.max_zip_entries:
        raise LimitError(f"the zip holds {len(infos)} entries; the cap is {caps.max_zip_entries}")
    total = sum(i.file_size for i in infos)
    if total > caps.max_zip_total_bytes:
        raise LimitError(f"the zip inflates to {total:,} bytes; the cap is {caps.max_zip_total_bytes:,}")
    with zf:
        table, emoji = _zip_sidecars(zf, infos, caps)
        for info in sorted(infos, key=lambda i: i.filename):
            name = info.filename
            if info.is_dir() and not stat.S_ISLNK(info.external_attr >> 16):
                continue
            problem = _zip_entry_problem(info, caps)
            if problem is not None:
                yield name, problem
                continue
            if _is_ignored(name):
                continue
            try:
                body = _read_entry(zf, info, caps)
            except RdtfError as exc:
                yield name, exc
                continue
            if body[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
                yield name, UnsafeInputError(f"{name} is a zip inside the zip; nested archives are not opened")
                continue
            yield name, _decode_entry(body, name, caps, max_frames, table, emoji)


def _zip_sidecars(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo], caps: Caps) -> tuple[dict, dict]:
    table: dict = {}
    emoji: dict = {}
    for info in infos:
        base = PurePosixPath(info.filename.replace("\\", "/")).name.lower()
        if base not in (CAPTIONS_FILE, "emoji.txt", "emoji.json") or _zip_entry_problem(info, caps):
            continue
        try:
            body = _read_entry(zf, info, caps)
            if base == CAPTIONS_FILE:
                table.update(parse_captions_csv(body))
            else:
                emoji.update(parse_emoji_sidecar(body))
        except RdtfError:
            continue  # a broken sidecar costs captions, not the pack
    return table, emoji
