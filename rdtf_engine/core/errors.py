"""Typed errors. Every failure a user can cause maps to one of these.

The CLI prints ``error: <message>`` and exits with code 2 for any ``RdtfError``; the worker sends them as
``Failed`` events with ``error_type`` = the class name, so the app can show a human message.
"""

from __future__ import annotations


class RdtfError(Exception):
    """Base class: a problem with the user's input or environment, explained in ``str(self)``."""

    exit_code = 2


class InputError(RdtfError):
    """A bad argument or request value (frames 0, unknown preset, missing file...)."""


class FormatError(RdtfError):
    """A file whose content is not what we can read (corrupt GIF, wrong format, truncated)."""


class LimitError(RdtfError):
    """An input over a safety cap (bytes, frames, frames x pixels, zip entries, time budget)."""


class UnsafeInputError(RdtfError):
    """Hostile input refused: zip path traversal, symlinks, absolute paths, pickle files."""


class ModelError(RdtfError):
    """A model folder that is missing, incomplete, not safetensors, or has an incompatible config."""


class CheckpointError(RdtfError):
    """A training checkpoint that is corrupt or does not match the run."""


class TrainingError(RdtfError):
    """Training cannot continue (e.g. repeated non-finite losses)."""


class ExportError(RdtfError):
    """An export that cannot meet the platform's rules (e.g. cannot get under the byte cap)."""


class DependencyError(RdtfError):
    """A needed optional package or system resource is missing (e.g. the Noto Color Emoji font)."""


class StorageError(RdtfError):
    """Writing failed (disk full, permission denied); nothing half-written was left behind."""


class InUseError(RdtfError):
    """A folder another live process is writing (a run folder locked by another trainer or app window)."""


class Cancelled(RdtfError):
    """The job was stopped by the user (``should_stop`` returned True)."""

    exit_code = 130
