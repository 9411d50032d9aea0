"""A training run's hold on its folder: the lock, stale temp clean-up, typed storage errors, no debris on failure.

``run_folder(path)`` wraps a whole ``train()`` call:

* takes the folder's OS lock (core/locks.py) so a second trainer or app window gets ``InUseError``;
* removes temp siblings a killed run left behind (``checkpoints/.tmp-*``, ``.model.old-PID``, …): with the lock
  held, no live process can own them, because every writer of the folder holds that same lock;
* turns a raw ``OSError`` (disk full, permission denied) into ``StorageError``;
* after a failed *start* (nothing worth keeping was written: no checkpoint, no trained autoencoder) removes what
  this start created, and the folder itself when it made it and it is then empty — never a file it found there.
"""

from __future__ import annotations

import errno
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rdtf_engine.core.errors import Cancelled, StorageError
from rdtf_engine.core.locks import LOCK_NAME, FolderLock
from rdtf_engine.training.checkpoint import is_storage_failure

# Temp names the engine's atomic writers use inside a run folder (checkpoint.py, model/store.py,
# training/autoencoder.py, data/latent_cache.py, core/atomic.py).
_STALE = (
    ("checkpoints", re.compile(r"^\.tmp-")),
    ("checkpoints", re.compile(r"^\.latest\.tmp$")),
    (".", re.compile(r"^\.(model|autoencoder)\.(old-\d+|[A-Za-z0-9_]{6,})$")),
    (".", re.compile(r"^\..+\.tmp$")),
    ("cache", re.compile(r"^\.latents(\.json)?\.tmp$")),
)


def clean_stale_temps(run_dir: Path) -> list[str]:
    """Delete temp siblings of a run folder (call only with its lock held) → their names, for the log."""
    removed = []
    for sub, pattern in _STALE:
        folder = run_dir / sub
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            if entry.name == LOCK_NAME or not pattern.match(entry.name):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(f"{sub}/{entry.name}" if sub != "." else entry.name)
    return removed


def storage_error(run_dir: Path, exc: BaseException) -> StorageError:
    text = str(exc)
    if getattr(exc, "errno", None) == errno.ENOSPC or "os error 28" in text:
        why = "the disk is full"
    elif isinstance(exc, PermissionError) or "os error 13" in text:
        why = "permission denied"
    else:
        why = getattr(exc, "strerror", None) or text
    return StorageError(f"cannot write the run folder {run_dir}: {why}; the last complete checkpoint is kept")


def _has_results(run_dir: Path) -> bool:
    ck = run_dir / "checkpoints"
    return ((run_dir / "autoencoder" / "config.json").is_file()
            or (ck.is_dir() and any((p / "state.json").is_file() for p in ck.glob("step_*"))))


def _remove_new_entries(run_dir: Path, before: set[str], created: bool) -> None:
    for entry in run_dir.iterdir() if run_dir.is_dir() else ():
        if entry.name in before or entry.name == LOCK_NAME:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    if created:
        (run_dir / LOCK_NAME).unlink(missing_ok=True)
        try:
            run_dir.rmdir()  # only when empty: anything else in it is not ours
        except OSError:
            pass


@contextmanager
def run_folder(run_dir: Path, on_clean=None, main_process: bool = True) -> Iterator[Path]:
    """Hold ``run_dir`` for a training run (see the module docstring). ``on_clean(names)`` hears about removed
    temp siblings. Non-main DDP processes share the main process's hold and take no lock of their own."""
    if not main_process:
        yield run_dir
        return
    created = not run_dir.exists()
    lock = FolderLock(run_dir, "run folder")
    lock.acquire()
    try:
        before = {p.name for p in run_dir.iterdir()}
        removed = clean_stale_temps(run_dir)
        if removed and on_clean is not None:
            on_clean(removed)
        try:
            yield run_dir
        except BaseException as exc:
            if not isinstance(exc, Cancelled) and not _has_results(run_dir):
                _remove_new_entries(run_dir, before, created)
            if is_storage_failure(exc):
                raise storage_error(run_dir, exc) from None
            raise
    finally:
        lock.release()


__all__ = ["clean_stale_temps", "run_folder", "storage_error"]
