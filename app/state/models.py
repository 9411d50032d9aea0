"""Models page state: shipped and trained models, rename/delete of user models, importing a model folder.

Listing goes through the worker's ``models`` op (the engine knows how to read a model card). Rename, delete and
import are plain file operations on the user's own models folder, done here: they need no torch. Import checks the
folder with the engine's own model-folder rules first: safetensors only, because a pickle-based checkpoint
(.bin/.pt/.ckpt/.pkl) can run code when loaded.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from app.jobs import Engine
from app.logs import human_message
from app.state.base import ViewModel, qprop
from app.state.runs import slug
from rdtf_engine.core.errors import RdtfError
from rdtf_engine.core.model_folder import validate_model_folder as engine_validate
from rdtf_engine.core.requests import ModelsRequest

MAX_IMPORT_BYTES = 4 << 30


class ModelImportRefused(Exception):
    """Why a folder cannot be imported, in words for the user."""


def validate_model_folder(folder: Path) -> int:
    """Total bytes of an importable model folder, or raise ModelImportRefused saying why not. What a model
    folder is (safetensors by content, never pickle, no links) is the engine's rule; the size cap is the app's."""
    try:
        engine_validate(folder)
    except RdtfError as e:
        raise ModelImportRefused(f"Refused: {e}.") from None
    size = folder_bytes(folder)
    if size > MAX_IMPORT_BYTES:
        raise ModelImportRefused(f"The model is {size >> 20} MiB; the limit is {MAX_IMPORT_BYTES >> 20} MiB.")
    return size


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


class ModelsViewModel(ViewModel):
    models_changed = Signal(object)
    busy_changed = Signal(bool)

    models = qprop(list, "models", models_changed)
    busy = qprop(bool, "busy", busy_changed)

    def __init__(self, engine: Engine, dirs: Any) -> None:
        super().__init__()
        self.engine, self.dirs = engine, dirs
        self._models: list[dict] = []
        self._busy = False

    def refresh(self) -> None:
        self._set("busy", True)
        job = self.engine.submit(ModelsRequest(dirs=[str(self.dirs.models), str(self.dirs.runs)]))
        job.finished.connect(lambda r: self._got(list(r.get("models") or [])))
        job.failed.connect(self._failed)

    def _got(self, models: list[dict]) -> None:
        self._set("busy", False)
        self._set("models", models)

    def _failed(self, error_type: str, message: str) -> None:
        self._set("busy", False)
        self.error("Could not list the models: " + human_message(error_type, message))

    def _user_model(self, path: str) -> Path:
        """A model folder the user owns; shipped models and anything outside user data are off limits."""
        p = Path(path).resolve()
        roots = [self.dirs.models.resolve(), self.dirs.runs.resolve()]
        if not any(r in p.parents for r in roots) or not p.is_dir():
            raise ModelImportRefused("Shipped models cannot be renamed or deleted.")
        return p

    def rename(self, path: str, new_name: str) -> None:
        """The engine names a model after its folder (a run's model after the run), so the folder is renamed;
        the card's ``name`` follows so recipes made later carry the new name."""
        new_name = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "-", new_name).strip(" .-")
        if not new_name:
            return
        try:
            folder = self._user_model(path)
            owner = folder.parent if folder.name == "model" and folder.parent.parent == self.dirs.runs.resolve() \
                else folder
            target = owner.with_name(new_name)
            if target.exists():
                raise ModelImportRefused(f"There is already a model called “{new_name}”.")
            cfg = folder / "config.json"
            card = json.loads(cfg.read_text(encoding="utf-8"))
            card["name"] = new_name
            tmp = cfg.with_name("config.json.part")
            tmp.write_text(json.dumps(card, indent=1), encoding="utf-8")
            os.replace(tmp, cfg)
            owner.rename(target)
        except ModelImportRefused as e:
            self.warn(str(e))
            return
        except (OSError, ValueError) as e:
            self.error(human_message("StorageError", f"could not rename the model: {e}"))
            return
        self.info(f"Renamed to “{new_name}”.")
        self.refresh()

    def delete(self, path: str) -> None:
        try:
            folder = self._user_model(path)
        except ModelImportRefused as e:
            self.warn(str(e))
            return
        shutil.rmtree(folder, ignore_errors=True)
        self.info(f"Deleted {folder.name}.")
        self.refresh()

    def import_folder(self, path: str) -> bool:
        """Copy a validated model folder into the user models folder (via a temp name: no half imports)."""
        src = Path(path)
        try:
            validate_model_folder(src)
        except ModelImportRefused as e:
            self.error(str(e))
            return False
        dest = self.dirs.models / slug(src.name)
        if dest.exists():
            dest = dest.with_name(f"{dest.name}-{time.strftime('%Y%m%d%H%M%S')}")
        tmp = dest.with_name(dest.name + ".importing")
        try:
            shutil.copytree(src, tmp, symlinks=False)
            os.replace(tmp, dest)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            self.error(human_message("StorageError", f"could not copy the model: {e}"))
            return False
        self.info(f"Imported model {src.name}.")
        self.refresh()
        return True
