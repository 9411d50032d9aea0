"""Logging to a file in the user log folder, and error texts a person can act on.

Every failure the user sees is a sentence plus what to do; the traceback goes to the log file only.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

log = logging.getLogger("app")

# error_type (an rdtf_engine.core.errors class name, or the app's own) → what the user can do about it.
HINTS = {
    "InputError": "Check the values you entered.",
    "FormatError": "The file is not a sticker format the app can read; try another file.",
    "LimitError": "The file is too large or has too many frames; try a smaller one.",
    "UnsafeInputError": "The file was refused for safety; only use files you trust.",
    "ModelError": "Pick another model on the Models page, or import the model again.",
    "CheckpointError": "The saved training state is damaged; start a new run.",
    "TrainingError": "Try a lower learning rate or a different preset.",
    "ExportError": "Try another preset or fewer frames.",
    "DependencyError": "A needed component is missing; reinstall the app.",
    "StorageError": "Free some disk space or pick another folder.",
    "InUseError": "Wait for the other run to finish, or close the other window.",
    "Cancelled": "",
    "OutOfMemory": "Use fewer frames, a smaller size, or close other programs.",
    "WorkerCrashed": "The engine was restarted; try again.",
    "InternalError": "This is a bug; the details are in the log file.",
}


def human_message(error_type: str, message: str) -> str:
    """One or two sentences for a message bar: what happened, then what to do."""
    if error_type == "Cancelled":
        return "Stopped."
    text = message.strip().rstrip(".") + "." if message.strip() else "Something went wrong."
    text = text[0].upper() + text[1:]
    hint = HINTS.get(error_type, HINTS["InternalError"])
    return f"{text} {hint}".strip()


def setup_logging(log_file: Path, level: int = logging.INFO) -> None:
    handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.setLevel(level)
    root.addHandler(handler)


def install_excepthook(show: Callable[[str], None], log_file: Path | None) -> None:
    """Unexpected exceptions in slots: log the traceback, show one human line (never a traceback dialog)."""

    def hook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        log.error("unhandled exception", exc_info=(exc_type, exc, tb))
        where = f" Details are in {log_file}." if log_file else ""
        try:
            show(f"Something went wrong: {exc}.{where}")
        except Exception:  # noqa: BLE001 - the hook must never raise
            sys.__excepthook__(exc_type, exc, tb)

    sys.excepthook = hook
