"""Preferences in a QSettings INI file, read through typed accessors that never trust what is on disk.

A file Qt cannot parse is moved aside (``settings.ini.corrupt``) and defaults are used; the caller shows
``Settings.problem`` to the user. A single value of the wrong type or out of range falls back to its default
silently, because one bad key should not cost the user every other preference.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from rdtf_engine.core.requests import DEFAULT_GUIDANCE_TEXT

log = logging.getLogger(__name__)

# key: (type, default, (min, max) or None)
DEFAULTS: dict[str, tuple[type, Any, tuple | None]] = {
    "create/frames": (int, 8, (4, 24)),
    "create/size": (int, 256, (32, 512)),
    "create/steps": (int, 20, (1, 200)),
    "create/guidance": (float, DEFAULT_GUIDANCE_TEXT, (0.0, 30.0)),
    "create/model": (str, "default", None),
    "timeline/speed": (float, 1.0, (0.1, 4.0)),
    "timeline/onion": (bool, False, None),
    "timeline/loop": (bool, True, None),
    "train/recipe": (str, "pack", None),  # rdtf_engine.core.recipes.APP_RECIPES
    "export/presets": (list, ["telegram"], None),
    "window/page": (int, 0, (0, 5)),
}


class Settings:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.problem = ""
        self._qs = self._open()

    def _open(self) -> QSettings:
        qs = QSettings(str(self.path), QSettings.Format.IniFormat)
        qs.allKeys()
        qs.sync()  # Qt parses lazily: only sync() reports a damaged file in status()
        if qs.status() == QSettings.Status.NoError:
            return qs
        del qs
        aside = self.path.with_name(self.path.name + ".corrupt")
        try:
            os.replace(self.path, aside)
            kept = f" The damaged file was kept as {aside}."
        except OSError:
            kept = ""
        self.problem = f"Your settings file could not be read, so the defaults are used.{kept}"
        log.warning("settings file %s unreadable; using defaults", self.path)
        return QSettings(str(self.path), QSettings.Format.IniFormat)

    def get(self, key: str) -> Any:
        typ, default, bounds = DEFAULTS[key]
        raw = self._qs.value(key, default)
        try:
            if typ is bool:
                value = raw if isinstance(raw, bool) else str(raw).lower() in ("true", "1", "yes")
            elif typ is list:
                value = [str(v) for v in (raw if isinstance(raw, list) else [raw] if raw else [])]
            else:
                value = typ(raw)
        except (TypeError, ValueError):
            return default
        if bounds and not (bounds[0] <= value <= bounds[1]):
            return default
        return value

    def set(self, key: str, value: Any) -> None:
        if key not in DEFAULTS:
            raise KeyError(key)
        self._qs.setValue(key, value)

    def raw(self, key: str, default: Any = None) -> Any:
        """Free-form values (window geometry, dismissed runs, measured speeds)."""
        return self._qs.value(key, default)

    def set_raw(self, key: str, value: Any) -> None:
        self._qs.setValue(key, value)

    def sync(self) -> None:
        self._qs.sync()
