"""Atomic writes: a temp file in the destination folder, fsync, then ``os.replace``.

A crash, a full disk or a cancelled export must never leave a half-written sticker where the user expects a
finished one; a temp file in the *same* folder makes the final rename atomic on every platform we ship to.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from rdtf_engine.core.errors import StorageError
from rdtf_engine.core.locks import pid_alive


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()  # read once at import: os.umask is process-wide and not thread-safe to probe


def _storage_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        return StorageError(f"cannot write {path}: the disk is full; nothing was written")
    if isinstance(exc, PermissionError):
        return StorageError(f"cannot write {path}: permission denied")
    return StorageError(f"cannot write {path}: {exc.strerror or exc}")


def _temp_prefix(target: Path) -> str:
    # the writer's PID in the temp name lets a later writer tell a killed writer's debris from a live one's
    return f".{target.name}.{os.getpid()}-"


def clean_stale_siblings(target: Path) -> list[str]:
    """Remove temp siblings of ``target`` (``.NAME.PID-xxxx.tmp``) whose writer process is dead: what a kill -9
    or a power cut mid-write leaves behind. A live writer's temp is never touched."""
    removed = []
    head = f".{target.name}."
    try:
        entries = list(target.parent.iterdir()) if target.parent.is_dir() else []
    except OSError:
        return removed
    for entry in entries:
        name = entry.name
        rest = name[len(head):] if name.startswith(head) else ""
        if rest.startswith("old-"):  # replace_dir's previous folder, kept only until the swap finished
            pid = rest[4:]
        elif rest.endswith(".tmp"):
            pid = rest.split("-", 1)[0]
        else:
            continue
        if not pid.isdigit() or int(pid) == os.getpid() or pid_alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            _unlink_quietly(str(entry))
        removed.append(name)
    return removed


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_siblings(target)
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _storage_error(target, exc) from None
    try:
        # mkstemp creates 0600; a sticker or dataset file should get the user's normal permissions
        os.chmod(tmp, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise _storage_error(target, exc) from None
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return target


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def make_dir(path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _storage_error(target, exc) from None
    return target


def replace_dir(src: Path, dst: Path) -> None:
    """Swap a fully written folder into place; the old one (if any) is removed only after the swap."""
    old = dst.with_name(f".{dst.name}.old-{os.getpid()}")
    moved = False
    try:
        if old.exists():
            shutil.rmtree(old)
        if dst.exists():
            os.replace(dst, old)
            moved = True
        os.replace(src, dst)
    except OSError as exc:
        if moved and not dst.exists():
            os.replace(old, dst)  # put the previous folder back: never leave the user with neither
        raise _storage_error(dst, exc) from None
    shutil.rmtree(old, ignore_errors=True)


def write_dir_atomic(folder: str | os.PathLike[str], files: Iterable[tuple[str, bytes]],
                     replaceable: Callable[[Path], bool] = lambda _p: True) -> Path:
    """Write a whole folder of files as a temp sibling, then swap it in (``replace_dir``): readers see the old
    folder or the new one, never a mix, and a full disk leaves the old one untouched.

    ``replaceable(existing)`` guards an existing folder: a folder that is not ours to replace (a user's own
    pictures) is refused with StorageError rather than deleted.
    """
    target = Path(folder)
    if target.exists() and (not target.is_dir() or target.is_symlink() or not replaceable(target)):
        raise StorageError(f"cannot write {target}: it exists and holds other files; pick a new or empty folder")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_siblings(target)
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(target), suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise _storage_error(target, exc) from None
    try:
        os.chmod(tmp, 0o777 & ~_UMASK)  # mkdtemp makes 0700
        for name, data in files:
            write_bytes_atomic(tmp / name, data)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def remove_tree_quietly(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
