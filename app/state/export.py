"""Export page state: check a sticker against platform presets, then save the files that passed.

"Check" exports into the cache folder and shows every rule of the preset with pass/fail (the engine runs its
own ``check`` on what it wrote); "Save" copies those already-checked files to where the user wants them, so
what is saved is byte for byte what was checked. A whole pack is exported straight into a folder.
The sticker's recipe travels in ``ExportRequest.recipe`` and is embedded where the format allows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from app.jobs import Engine
from app.logs import human_message
from app.state.base import ViewModel, qprop
from app.state.runs import slug
from app.state.sticker import Sticker
from rdtf_engine.core.requests import CheckRequest, ExportRequest

PRESETS: dict[str, str] = {
    "telegram": "Telegram (WebM, 512 px, ≤ 256 KB, ≤ 3 s)",
    "whatsapp": "WhatsApp (animated WebP 512×512, ≤ 500 KB)",
    "signal": "Signal (APNG, ≤ 300 KiB)",
    "line": "LINE (APNG ≤ 320×270, 5–20 frames)",
    "discord": "Discord (APNG 320×320, ≤ 512 KB)",
    "gif": "GIF",
    "apng": "APNG",
    "webp": "WebP",
}
EXTENSIONS = {"telegram": ".webm", "whatsapp": ".webp", "signal": ".png", "line": ".png", "discord": ".png",
              "gif": ".gif", "apng": ".png", "webp": ".webp"}


def rules_of(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rules as [{name, ok, detail}] from an export report (``checks``) or a check report (``rules``)."""
    rules = report.get("checks", report.get("rules", []))
    if isinstance(rules, dict):
        rules = rules.get("rules", rules.get("checks", []))
    return [{"name": str(r.get("name", "")), "ok": bool(r.get("ok")), "detail": str(r.get("detail", ""))}
            for r in rules or [] if isinstance(r, dict)]


def write_frames_folder(sticker: Sticker, folder: Path) -> Path:
    """The clip as the engine's export input: numbered PNG copies plus their per-frame durations."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for i, f in enumerate(sticker.frames):
        shutil.copyfile(f.path, folder / f"{i:03d}.png")
    (folder / "durations.json").write_text(json.dumps([f.duration_ms for f in sticker.frames]))
    return folder


class ExportViewModel(ViewModel):
    sticker_changed = Signal(object)
    selected_changed = Signal(object)
    results_changed = Signal(object)
    busy_changed = Signal(bool)

    sticker = qprop(object, "sticker", sticker_changed)
    selected = qprop(list, "selected", selected_changed)
    results = qprop(dict, "results", results_changed)  # preset → {path, bytes, rules, ok, trades, error}
    busy = qprop(bool, "busy", busy_changed)

    def __init__(self, engine: Engine, dirs: Any, settings: Any = None) -> None:
        super().__init__()
        self.engine, self.dirs, self.settings = engine, dirs, settings
        self._sticker: Sticker | None = None
        chosen = settings.get("export/presets") if settings is not None else ["telegram"]
        self._selected = [p for p in chosen if p in PRESETS] or ["telegram"]
        self._results: dict[str, dict] = {}
        self._busy = False
        self._pending = 0
        self._pack_failures: list[str] = []
        self._pack_folder = ""

    def set_sticker(self, sticker: Sticker | None) -> None:
        self._sticker = sticker  # same object edited in place by the timeline: always emit
        self.sticker_changed.emit(sticker)
        self._set("results", {})

    def set_selected(self, presets: list[str]) -> None:
        self._set("selected", [p for p in PRESETS if p in presets])
        if self.settings is not None:
            self.settings.set("export/presets", self._selected)

    def _request(self, sticker: Sticker, preset: str, input_dir: Path, out: Path) -> ExportRequest:
        # Per-frame durations travel in the frames folder's durations.json (the engine's folder-clip format).
        # The recipe is the sticker's (the request that made it); the engine leaves local paths out of the file.
        return ExportRequest(input=str(input_dir), preset=preset, out=str(out), options={},
                             recipe={k: v for k, v in sticker.recipe.items() if not str(k).startswith("_")})

    def check(self) -> None:
        """Export the current sticker for each chosen preset into the cache and collect the rule checks."""
        if self._sticker is None or not self._sticker.frames:
            self.warn("Generate a sticker or open one from the gallery first.")
            return
        if self._busy or not self._selected:
            return
        work = self.dirs.exports / self._sticker.id
        try:
            frames = write_frames_folder(self._sticker, work / "frames")
        except OSError as e:
            self.error(human_message("StorageError", str(e)))
            return
        self._set("results", {})
        self._set("busy", True)
        self._pending = len(self._selected)
        name = slug(self._sticker.prompt or "sticker")
        for preset in self._selected:
            out = work / f"{name}-{preset}{EXTENSIONS[preset]}"
            job = self.engine.submit(self._request(self._sticker, preset, frames, out))
            job.finished.connect(lambda rep, p=preset: self._got(p, rep, None))
            job.failed.connect(lambda t, m, p=preset: self._got(p, {}, human_message(t, m)))

    def _got(self, preset: str, report: dict, error: str | None) -> None:
        rules = rules_of(report)
        entry = {"path": report.get("path", ""), "bytes": int(report.get("bytes", 0) or 0), "rules": rules,
                 "trades": list(report.get("trades") or []), "error": error,
                 "ok": error is None and all(r["ok"] for r in rules)}
        self._set("results", {**self._results, preset: entry})
        self._pending -= 1
        if self._pending <= 0:
            self._set("busy", False)

    def save_to(self, folder: str) -> list[str]:
        """Copy the checked files that passed every rule into ``folder``; returns the written paths."""
        written = []
        for r in self._results.values():
            if r["ok"] and r["path"] and Path(r["path"]).is_file():
                dest = Path(folder) / Path(r["path"]).name
                tmp = dest.with_name(dest.name + ".part")
                shutil.copyfile(r["path"], tmp)
                tmp.replace(dest)
                written.append(str(dest))
        failed = [p for p, r in self._results.items() if not r["ok"]]
        if written:
            self.info(f"Saved {len(written)} file(s) to {folder}."
                      + (f" Not saved (rules failed): {', '.join(failed)}." if failed else ""))
        else:
            self.warn("Nothing passed its checks yet: press Check first.")
        return written

    def export_pack(self, stickers: list[Sticker], folder: str) -> None:
        """Every sticker × every chosen preset, written straight into ``folder/<preset>/``."""
        if not stickers or self._busy:
            return
        self._set("busy", True)
        self._pending = len(stickers) * len(self._selected)
        self._pack_failures, self._pack_folder = [], folder
        for s in stickers:
            try:
                frames = write_frames_folder(s, self.dirs.exports / s.id / "frames")
            except OSError as e:
                self._pending -= len(self._selected)
                self._pack_failures.append(f"{s.prompt}: {e}")
                continue
            for preset in self._selected:
                out = Path(folder) / preset / f"{slug(s.prompt or 'sticker')}-{s.id[-6:]}{EXTENSIONS[preset]}"
                out.parent.mkdir(parents=True, exist_ok=True)
                job = self.engine.submit(self._request(s, preset, frames, out))
                job.finished.connect(lambda rep, s=s, p=preset: self._pack_done(s, p, rep, None))
                job.failed.connect(lambda t, m, s=s, p=preset: self._pack_done(s, p, {}, human_message(t, m)))
        if self._pending <= 0:
            self._pack_finished()

    def _pack_done(self, sticker: Sticker, preset: str, report: dict, error: str | None) -> None:
        bad = [r["name"] for r in rules_of(report) if not r["ok"]]
        if error or bad:
            self._pack_failures.append(f"{sticker.prompt or sticker.id} → {preset}: {error or ', '.join(bad)}")
        self._pending -= 1
        if self._pending <= 0:
            self._pack_finished()

    def _pack_finished(self) -> None:
        self._set("busy", False)
        if self._pack_failures:
            self.warn(f"Pack exported with {len(self._pack_failures)} problem(s): "
                      + "; ".join(self._pack_failures[:3]))
        else:
            self.info(f"Pack exported to {self._pack_folder}; every file passed its checks.")

    def check_file(self, path: str, preset: str) -> None:
        """Validate any existing file against a preset; the result shows like a fresh export's."""
        self._pending = 1
        self._set("busy", True)
        job = self.engine.submit(CheckRequest(path=path, preset=preset))
        job.finished.connect(lambda rep: self._got(preset, {**rep, "path": path}, None))
        job.failed.connect(lambda t, m: self._got(preset, {}, human_message(t, m)))
