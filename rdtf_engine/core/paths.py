"""User folders (platformdirs, the maintained successor of appdirs) and the shipped resources.

``RDTF_HOME`` overrides the user data folder (tests, portable installs). Layout under it:
``models/`` (imported/finished models), ``runs/`` (training runs), ``cache/`` (demo model, latents; ``cache/data/`` downloaded training data).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "rdtf-sticker-studio"


def user_data_dir() -> Path:
    env = os.environ.get("RDTF_HOME")
    if env:
        p = Path(env).expanduser()
    else:
        from platformdirs import PlatformDirs

        p = PlatformDirs(APP_NAME, appauthor=False).user_data_path
    p.mkdir(parents=True, exist_ok=True)
    return p


def _user_sub(name: str) -> Path:
    p = user_data_dir() / name
    p.mkdir(parents=True, exist_ok=True)
    return p


def user_models_dir() -> Path:
    return _user_sub("models")


def user_runs_dir() -> Path:
    return _user_sub("runs")


def user_cache_dir() -> Path:
    return _user_sub("cache")


def data_cache_dir(name: str) -> Path:
    """``cache/data/<name>``: a downloaded or pre-processed training data set (e.g. ``fluent``). Created on
    demand; such data is never needed to generate, only to train or evaluate."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"bad data set name {name!r}")
    p = user_cache_dir() / "data" / name
    p.mkdir(parents=True, exist_ok=True)
    return p


def resources_dir() -> Path:
    """The repo's ``resources/`` in a checkout, or the bundled copy in a PyInstaller build."""
    frozen = getattr(sys, "_MEIPASS", None)
    if frozen:
        return Path(frozen) / "resources"
    return Path(__file__).resolve().parents[2] / "resources"


def builtin_models_dir() -> Path:
    return resources_dir() / "models"
