"""Folder locks: one writer per run folder, held for the writer's whole life.

Two trainers on one run folder would interleave checkpoints, the autoencoder and the exported model (a later
``--resume`` would continue one run's weights on the other's autoencoder). An *OS* lock (``fcntl.flock`` on
POSIX, ``msvcrt.locking`` on Windows) on ``FOLDER/.lock`` guards it: the kernel drops the lock when its process
dies, so a run killed with ``kill -9`` or a power cut never leaves a lock behind that a user must delete by
hand. The lock file keeps the owner's PID (for the error message only, never to decide anything).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from rdtf_engine.core.errors import InUseError, StorageError

LOCK_NAME = ".lock"
_WIN_LOCK_OFFSET = 1 << 20  # Windows locks a byte range: lock one far past the PID text so it stays readable


class FolderLock:
    """An exclusive, non-blocking OS lock on ``folder/.lock``; a context manager.

    ``acquire()`` raises ``InUseError`` naming the holder's PID when another process holds it, ``StorageError``
    when the lock file cannot be created. Re-entrant within one object only (acquire twice = no-op).
    """

    def __init__(self, folder: str | os.PathLike[str], what: str = "run folder") -> None:
        self.folder = Path(folder)
        self.what = what
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> FolderLock:
        if self._fd is not None:
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError(f"cannot lock {self.what} {self.folder}: {exc.strerror or exc}") from None
        if not _try_lock(fd):
            holder = _read_pid(fd)
            os.close(fd)
            who = f"PID {holder}" if holder else "another process"
            raise InUseError(f"{self.what} {self.folder} is in use by {who} (another training run or app window); "
                             "wait for it to finish or pick another folder")
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the PID is only for messages; the lock itself is held
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # an unlocked file with a PID in it would name a process that no longer holds it
        except OSError:
            pass
        _unlock(fd)
        os.close(fd)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def lock_holder(folder: str | os.PathLike[str]) -> int | None:
    """PID of the live process holding ``folder``'s lock, or None when it is free (probes without keeping it)."""
    path = Path(folder) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        if _try_lock(fd):
            _unlock(fd)
            return None
        return _read_pid(fd) or -1
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists (POSIX: signal 0; Windows: OpenProcess)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(fd: int) -> int | None:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


if sys.platform == "win32":  # pragma: no cover - exercised on Windows builds only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        except OSError as exc:  # e.g. a file system without locks: refuse rather than run unguarded silently
            raise StorageError(f"cannot lock the folder (its file system refuses locks: {exc.strerror or exc})") from None
        return True

    def _unlock(fd: int) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        except OSError:
            pass
