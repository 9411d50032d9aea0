"""Pack page state: one character, a whole sticker set. The pack lives in a folder (``pack.json`` +
``character.png`` + ``stickers/``); this view-model edits it with the engine's pack functions (plain file edits,
no model) and sends the work that needs the model — making, remaking, filling in — to the engine worker as
one ``PackRequest`` job with a progress event per sticker.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from app.jobs import Engine, JobHandle
from app.logs import human_message
from app.state.base import ViewModel, qprop
from rdtf_engine.core.errors import RdtfError
from rdtf_engine.core.requests import PackExportRequest, PackRequest
from rdtf_engine.packs import edit
from rdtf_engine.packs.moods import DEFAULT_MOODS, parse_motions
from rdtf_engine.packs.project import PACK_FILE, PackProject, inside, load_pack, save_pack

MAX_RECENT = 8


PACK_PLATFORMS = ("whatsapp", "telegram", "signal", "line", "discord")


def export_target(folder: str, title: str, platform: str) -> str:
    """Where a pack export goes inside the chosen ``folder``: WhatsApp's ``.wastickers`` file, LINE's ``.zip``
    (their only forms), else a folder named after the pack and the platform."""
    from rdtf_engine.packs.pack_presets import get_pack_preset

    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "pack"
    outputs = get_pack_preset(f"{platform}-pack").outputs
    suffix = "" if "" in outputs else outputs[0]
    return str(Path(folder) / (f"{slug}{suffix}" if suffix else f"{slug}-{platform}"))


class PackViewModel(ViewModel):
    character_changed = Signal(str)
    moods_changed = Signal(str)
    title_changed = Signal(str)
    folder_changed = Signal(str)
    project_changed = Signal(object)
    busy_changed = Signal(bool)
    progress_changed = Signal(float)
    status_changed = Signal(str)
    recent_changed = Signal(object)
    sticker_made = Signal(str)  # a sticker's file was (re)written: its preview must be reloaded

    character = qprop(str, "character", character_changed)  # a picture file, or a prompt
    moods = qprop(str, "moods", moods_changed)
    title = qprop(str, "title", title_changed)
    folder = qprop(str, "folder", folder_changed)
    project = qprop(object, "project", project_changed)
    busy = qprop(bool, "busy", busy_changed)
    progress = qprop(float, "progress", progress_changed)
    status = qprop(str, "status", status_changed)
    recent = qprop(list, "recent", recent_changed)

    def __init__(self, engine: Engine, dirs: Any, settings: Any = None,
                 model_ref: Callable[[], str] = lambda: "default") -> None:
        super().__init__()
        self.engine, self.dirs, self.settings, self.model_ref = engine, dirs, settings, model_ref
        self._character, self._moods, self._title, self._folder = "", ", ".join(DEFAULT_MOODS), "", ""
        self._project: PackProject | None = None
        self._busy, self._progress, self._status = False, 0.0, ""
        self._recent: list[str] = list(settings.get("pack/recent") or []) if settings is not None else []
        self.job: JobHandle | None = None
        self._frames: dict[str, tuple[float, list[str]]] = {}  # sticker file → (mtime, decoded frame PNGs)

    # ---- the form ------------------------------------------------------------------------------------
    def set_value(self, name: str, value: str) -> None:
        if name not in ("character", "moods", "title"):
            raise KeyError(name)
        self._set(name, value)

    def use_picture(self, path: str) -> None:
        self._set("character", path)
        if not self._title:
            self._set("title", Path(path).stem.replace("_", " ").replace("-", " "))

    def use_gallery_sticker(self, sticker: Any) -> None:
        """A gallery sticker's first frame as the character picture."""
        if sticker is not None and sticker.frames:
            self._set("character", sticker.frames[0].path)

    def motions(self) -> list[str]:
        return parse_motions(self._moods)

    # ---- pack folder ---------------------------------------------------------------------------------
    def new_folder(self, title: str) -> Path:
        """A fresh folder for a new pack under the user's packs folder, named after its title."""
        root = Path(self.dirs.data) / "packs"
        root.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "pack"
        cand, n = root / slug, 2
        while cand.exists():
            cand, n = root / f"{slug}-{n}", n + 1
        return cand

    def open(self, folder: str) -> bool:
        try:
            project = load_pack(folder)
        except RdtfError as e:
            self.error(human_message(type(e).__name__, str(e)))
            return False
        self._set("folder", str(folder))
        self._set_project(project)
        self._set("title", project.title)
        self._set("character", project.character_prompt or str(inside(folder, project.character)))
        self._set("moods", ", ".join(s.motion for s in project.stickers))
        self._remember(str(folder))
        return True

    def reload(self) -> None:
        if self._folder and (Path(self._folder) / PACK_FILE).is_file():
            try:
                self._set_project(load_pack(self._folder))
            except RdtfError as e:
                self.error(human_message(type(e).__name__, str(e)))

    def _set_project(self, project: PackProject | None) -> None:
        self._project = project  # always announce: the grid redraws names, emoji and locks in place
        self.project_changed.emit(project)

    def _remember(self, folder: str) -> None:
        recent = [folder] + [f for f in self._recent if f != folder]
        self._set("recent", recent[:MAX_RECENT])
        if self.settings is not None:
            self.settings.set("pack/recent", self._recent)

    def is_made(self, sticker_id: str) -> bool:
        from rdtf_engine.jobs.pack_mode import is_made

        return self._project is not None and is_made(self._folder, self._project.sticker(sticker_id))

    def frames(self, sticker_id: str) -> list[str]:
        """The sticker's frames as PNG files for the looping preview (decoded once per file version)."""
        if self._project is None or not self.is_made(sticker_id):
            return []
        path = inside(self._folder, str(self._project.sticker(sticker_id).file))
        mtime = path.stat().st_mtime
        cached = self._frames.get(str(path))
        if cached and cached[0] == mtime:
            return cached[1]
        from PIL import Image

        from rdtf_engine.formats.loader import load_clip

        key = hashlib.sha1(f"{path}:{mtime}".encode()).hexdigest()[:16]
        out = Path(self.dirs.cache) / "pack-previews" / key
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        try:
            clip = load_clip(path)
        except RdtfError:
            return []
        for i, fr in enumerate(clip.frames):
            p = out / f"frame_{i:03d}.png"
            if not p.is_file():
                Image.fromarray(fr, "RGBA").save(p)
            paths.append(str(p))
        self._frames[str(path)] = (mtime, paths)
        return paths

    # ---- edits (no model: pack.json only) --------------------------------------------------------------
    def _edit(self, change: Callable[[PackProject], PackProject], *, while_busy: bool = True) -> bool:
        if self._project is None:
            return False
        if self._busy and not while_busy:
            self.warn("Wait for the pack job to finish, or cancel it, first.")
            return False
        try:
            project = change(load_pack(self._folder))
            save_pack(self._folder, project)
        except RdtfError as e:
            self.error(human_message(type(e).__name__, str(e)))
            return False
        self._set_project(project)
        return True

    def rename(self, sticker_id: str, name: str) -> bool:
        return self._edit(lambda p: edit.set_sticker(p, sticker_id, name=name))

    def set_emoji(self, sticker_id: str, emoji: str) -> bool:
        return self._edit(lambda p: edit.set_sticker(p, sticker_id, emoji=emoji))

    def toggle_lock(self, sticker_id: str) -> bool:
        return self._edit(lambda p: edit.set_sticker(p, sticker_id, locked=not p.sticker(sticker_id).locked))

    def move(self, sticker_id: str, delta: int) -> bool:
        """Move a sticker ``delta`` places (−1 left, +1 right), clamped to the ends."""
        def change(p: PackProject) -> PackProject:
            pos = [s.id for s in p.stickers].index(sticker_id) + 1
            return edit.move_sticker(p, sticker_id, max(1, min(len(p.stickers), pos + delta)))
        return self._edit(change)

    def move_to(self, sticker_id: str, position: int) -> bool:
        return self._edit(lambda p: edit.move_sticker(p, sticker_id, position))

    def remove(self, sticker_id: str) -> bool:
        return self._edit(lambda p: edit.remove_sticker(p, sticker_id, self._folder), while_busy=False)

    def add_moods(self, text: str) -> None:
        try:
            motions = parse_motions(text)
        except RdtfError as e:
            self.error(human_message(type(e).__name__, str(e)))
            return
        if self._edit(lambda p: edit.add_motions(p, motions), while_busy=False):
            self.fill()

    # ---- jobs (the model: in the engine worker) --------------------------------------------------------
    def generate(self) -> None:
        """Make a new pack from the form (or resume the open one when nothing in the form changed)."""
        if self._busy:
            return
        character = self._character.strip()
        if not character:
            self.error("Pick a character first: a picture, a gallery sticker, or a description.")
            return
        try:
            motions = self.motions()
        except RdtfError as e:
            self.error(human_message(type(e).__name__, str(e)))
            return
        if not motions:
            self.error("List at least one mood, e.g. \"waving, laughing\".")
            return
        title = self._title.strip() or (Path(character).stem if Path(character).is_file() else character)[:128]
        folder = str(self.new_folder(title))
        self._set("folder", folder)
        self._set_project(None)
        self._remember(folder)
        self._submit(PackRequest("new", folder, character=character, motions=motions, title=title,
                                 model=self.model_ref()), f"Making {len(motions)} stickers…")

    def regenerate(self, sticker_id: str) -> None:
        self._job(PackRequest("regen", self._folder, ids=[sticker_id], reroll=True, model=self.model_ref()),
                  f"Regenerating {sticker_id}…")

    def regenerate_all(self) -> None:
        self._job(PackRequest("regen", self._folder, reroll=True, model=self.model_ref()),
                  "Regenerating every unlocked sticker…")

    def fill(self) -> None:
        self._job(PackRequest("fill", self._folder, model=self.model_ref()), "Making the missing stickers…")

    def _job(self, req: PackRequest, status: str) -> None:
        if self._busy or self._project is None:
            return
        self._submit(req, status)

    def _submit(self, req: PackRequest, status: str) -> None:
        self._set("busy", True)
        self._set("progress", 0.0)
        self._set("status", status)
        job = self.engine.submit(req)
        self.job = job
        self._done_stickers, self._sticker_total = 0, 1
        job.progress.connect(self._on_progress)
        job.preview.connect(self._on_sticker)
        job.log_line.connect(lambda level, text: level in ("info", "warning") and self._set("status", text))
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)

    def cancel(self) -> None:
        if self.job is not None and self._busy:
            self._set("status", "Stopping after this sticker…")
            self.engine.cancel(self.job)

    def _on_progress(self, stage: str, step: int, total: int, message: str) -> None:
        if stage == "pack":
            self._done_stickers, self._sticker_total = step, max(total, 1)
            if step < total:
                self._set("status", f"Sticker {step + 1} of {total}: {message}")
            self._set("progress", step / max(total, 1))
            if self._project is None:
                self.reload()  # the engine wrote pack.json once the character was ready
        elif total:
            self._set("progress", (self._done_stickers + step / total) / self._sticker_total)

    def _on_sticker(self, _step: int, _paths: list, sticker_id: str) -> None:
        self.reload()
        self.sticker_made.emit(sticker_id)

    def _on_finished(self, result: dict) -> None:
        self.job = None
        self.reload()
        self._set("busy", False)
        self._set("progress", 1.0)
        made, missing = len(result.get("made") or []), len(result.get("missing") or [])
        self._set("status", f"Done: {made} made" + (f", {missing} still missing" if missing else ""))

    def _on_failed(self, error_type: str, message: str) -> None:
        self.job = None
        self.reload()
        self._set("busy", False)
        if error_type == "Cancelled":
            self._set("status", "Stopped: what was made is kept; Fill in makes the rest.")
            self.info("Pack stopped. Every finished sticker is kept.")
        else:
            self._set("status", "Failed")
            self.error(human_message(error_type, message))

    # ---- export: one PackExportRequest job in the worker (a whole pack takes seconds to minutes) ---------
    def export_pack(self, platform: str, folder: str) -> str | None:
        """Export the open pack for ``platform`` (whatsapp, telegram, …) into the chosen ``folder``; → the target."""
        if self._busy or self._project is None or platform not in PACK_PLATFORMS:
            return None
        target = export_target(folder, self._project.title, platform)
        self._set("busy", True)
        self._set("progress", 0.0)
        self._set("status", f"Exporting the pack for {platform.capitalize()}…")
        job = self.engine.submit(PackExportRequest(self._folder, f"{platform}-pack", target))
        self.job = job
        job.progress.connect(lambda _stage, step, total, _m: total and self._set("progress", step / total))
        job.finished.connect(self._on_exported)
        job.failed.connect(self._on_failed)
        return target

    def _on_exported(self, result: dict) -> None:
        self.job = None
        self._set("busy", False)
        self._set("progress", 1.0)
        where = Path(str(result.get("out") or "")).name
        self._set("status", f"Exported {where}")
        self.info(f"Pack exported: {where} is ready to upload.")
