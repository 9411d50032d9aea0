"""Preferences in a QSettings INI file, read through typed accessors that never trust what is on disk.

A file Qt cannot parse is moved aside (``settings.ini.corrupt``) and defaults are used; the caller shows
``Settings.problem`` to the user. On load every value is validated (type, finite, bounded): a bad key is
removed so it falls back to its default (silently, with a log line), the file as it was is kept as
``settings.ini.bad``, and every other preference survives — one bad key must not cost the user the rest, nor
crash every start.
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from rdtf_engine.core.requests import DEFAULT_GUIDANCE_TEXT, MAX_FRAMES

log = logging.getLogger(__name__)

# key: (type, default, (min, max) or None)
DEFAULTS: dict[str, tuple[type, Any, tuple | None]] = {
    "create/frames": (int, 8, (4, MAX_FRAMES)),
    "create/size": (int, 256, (32, 512)),
    "create/steps": (int, 0, (0, 200)),  # 0: Auto (the engine picks by task)
    "create/guidance": (float, DEFAULT_GUIDANCE_TEXT, (0.0, 30.0)),
    "create/model": (str, "default", None),
    "create/fast": (bool, False, None),  # draw with a model's few-step deltas where it has them
    "timeline/speed": (float, 1.0, (0.1, 4.0)),
    "timeline/onion": (bool, False, None),
    "timeline/loop": (bool, True, None),
    "train/recipe": (str, "pack", None),  # rdtf_engine.core.recipes.APP_RECIPES
    "export/presets": (list, ["telegram"], None),
    "pack/recent": (list, [], None),  # pack folders, most recent first
    "window/page": (int, 0, (0, 6)),
}
# Free-form keys (``raw``) and what a sane value looks like.
SPEED_KEY = re.compile(r"train/speed/[a-z]+/[a-z]+")
SPEED_BOUNDS = (1e-6, 1e6)  # steps/s; 1e-310 would make a run estimate of "inf" seconds
MAX_TEXT = 4096
MAX_ITEMS = 1000


class BadValue(ValueError):
    """A stored value that fails its key's type or bounds."""


def coerce(key: str, raw: Any) -> Any:
    """A stored value → its typed, bounded value for a DEFAULTS key; BadValue otherwise."""
    typ, _default, bounds = DEFAULTS[key]
    try:
        if typ is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text not in ("true", "false", "1", "0", "yes", "no"):
                raise BadValue(raw)
            return text in ("true", "1", "yes")
        if typ is list:
            items = raw if isinstance(raw, list) else [raw] if raw else []
            if len(items) > MAX_ITEMS or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in items):
                raise BadValue(raw)
            return [str(v) for v in items]
        if typ is str:
            if not isinstance(raw, str) or len(raw) > MAX_TEXT:
                raise BadValue(raw)
            return raw
        value = float(raw) if typ is float else int(str(raw).strip())
    except (TypeError, ValueError, OverflowError):
        raise BadValue(raw) from None
    if typ is float and not math.isfinite(value):
        raise BadValue(raw)
    if bounds and not (bounds[0] <= value <= bounds[1]):
        raise BadValue(raw)
    return value


def raw_ok(key: str, raw: Any) -> bool:
    """Whether a free-form value is sane: measured speeds finite and bounded, lists of short strings, etc."""
    if SPEED_KEY.fullmatch(key):
        try:
            v = float(raw)
        except (TypeError, ValueError, OverflowError):
            return False
        return math.isfinite(v) and SPEED_BOUNDS[0] <= v <= SPEED_BOUNDS[1]
    if key == "train/dismissed":
        items = raw if isinstance(raw, list) else [raw] if raw else []
        return len(items) <= MAX_ITEMS and all(isinstance(v, str) and len(v) <= MAX_TEXT for v in items)
    if key == "window/geometry":
        return isinstance(raw, (QByteArray, bytes)) and len(raw) <= 65536
    return True  # a key from a newer version: kept for it, never read here


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
            self._drop_bad_values(qs)
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

    def _drop_bad_values(self, qs: QSettings) -> None:
        """Remove every stored value that fails validation (so it reads as its default), keeping the file as it
        was beside it once."""
        bad = []
        for key in qs.allKeys():
            try:
                raw = qs.value(key)
                ok = raw_ok(key, raw) if key not in DEFAULTS else coerce(key, raw) is not None
            except Exception:  # noqa: BLE001 - whatever Qt decodes from a damaged value
                ok = False
            if not ok:
                bad.append(key)
        if not bad:
            return
        backup = self.path.with_name(self.path.name + ".bad")
        try:
            shutil.copyfile(self.path, backup)
            kept = f" The old file was kept as {backup}."
        except OSError:
            kept = ""
        for key in bad:
            qs.remove(key)
        qs.sync()
        # Silent for the user (one bad value costs only itself); the log says which and where the copy is.
        log.warning("settings %s: reset invalid value(s) of %s.%s", self.path, ", ".join(bad), kept)

    def get(self, key: str) -> Any:
        default = DEFAULTS[key][1]
        try:
            return coerce(key, self._qs.value(key, default))
        except BadValue:
            return default

    def set(self, key: str, value: Any) -> None:
        if key not in DEFAULTS:
            raise KeyError(key)
        self._qs.setValue(key, value)

    def raw(self, key: str, default: Any = None) -> Any:
        """Free-form values (window geometry, dismissed runs, measured speeds); an insane value reads as
        ``default`` (a value set during this session is checked here too, not only at load)."""
        value = self._qs.value(key, default)
        try:
            return value if value is default or raw_ok(key, value) else default
        except Exception:  # noqa: BLE001 - a damaged value must read as the default, whatever it is
            return default

    def set_raw(self, key: str, value: Any) -> None:
        self._qs.setValue(key, value)

    def sync(self) -> None:
        self._qs.sync()
