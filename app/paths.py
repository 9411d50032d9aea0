"""Where the app keeps things: platformdirs user folders, and resources in a checkout vs a PyInstaller build.

``RDTF_STUDIO_HOME`` puts every user folder under one directory (tests, portable installs, screenshots) so a
test run never touches the real profile.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from platformdirs import PlatformDirs

APP_NAME = "rdtf-sticker-studio"


def frozen() -> bool:
    return bool(getattr(sys, "frozen", False))


def project_root() -> Path:
    """The checkout (dev) or the unpacked bundle (frozen: PyInstaller's ``_MEIPASS``)."""
    if frozen():
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parent.parent


def resources_dir() -> Path:
    return project_root() / "resources"


class UserDirs:
    """The per-user folders, created on first use."""

    def __init__(self, home: str | os.PathLike | None = None) -> None:
        home = home or os.environ.get("RDTF_STUDIO_HOME")
        if home:
            root = Path(home)
            self.data, self.config = root / "data", root / "config"
            self.cache, self.log = root / "cache", root / "log"
        else:
            d = PlatformDirs(APP_NAME, appauthor=False)
            self.data, self.config = d.user_data_path, d.user_config_path
            self.cache, self.log = d.user_cache_path, d.user_log_path

    def _sub(self, base: Path, name: str) -> Path:
        p = base / name
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def runs(self) -> Path:  # training runs: checkpoints/ inside, done.json once finished
        return self._sub(self.data, "runs")

    @property
    def models(self) -> Path:  # imported and renamed user models (one folder each)
        return self._sub(self.data, "models")

    @property
    def gallery(self) -> Path:  # every generated sticker: frames + sticker.json with its recipe
        return self._sub(self.data, "gallery")

    @property
    def datasets(self) -> Path:  # imported sticker packs, normalised by the engine
        return self._sub(self.data, "datasets")

    @property
    def exports(self) -> Path:  # checked exports waiting to be saved where the user wants them
        return self._sub(self.cache, "exports")

    @property
    def log_file(self) -> Path:
        return self._sub(self.log, ".") / "studio.log"

    @property
    def worker_log_file(self) -> Path:
        return self._sub(self.log, ".") / "worker.log"

    @property
    def settings_file(self) -> Path:
        return self._sub(self.config, ".") / "settings.ini"


def worker_command() -> list[str]:
    """How to start an engine worker process.

    A checkout runs ``python -m rdtf_engine worker`` (docs/protocol.md); a frozen build has no separate
    Python, so it re-invokes its own executable with ``--worker``.
    """
    if frozen():
        return [sys.executable, "--worker"]
    return [sys.executable, "-m", "rdtf_engine", "worker"]


def worker_env(dirs: UserDirs | None = None) -> dict[str, str]:
    """Environment additions for the worker: find this checkout's engine even when it is not pip-installed,
    and share the app's user data folder (``RDTF_HOME``: models/, runs/) so both sides see the same models."""
    env = {"PYTHONUNBUFFERED": "1", "RDTF_WORKER_NICE": "5"}
    if dirs is not None:
        env["RDTF_HOME"] = str(dirs.data)
    if not frozen():
        root = str(project_root())
        old = os.environ.get("PYTHONPATH", "")
        env["PYTHONPATH"] = root + (os.pathsep + old if old else "")
    return env
