"""All view-models of one window and the wiring between them (no widgets, so tests drive it directly)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from app.state.create import CreateViewModel
from app.state.export import ExportViewModel
from app.state.gallery import GalleryViewModel
from app.state.models import ModelsViewModel
from app.state.pack import PackViewModel
from app.state.sticker import GalleryStore, Sticker
from app.state.timeline import TimelineViewModel
from app.state.train import TrainViewModel

PAGES = ("create", "timeline", "pack", "train", "export", "models", "gallery")


class AppState(QObject):
    message = Signal(str, str)  # level, text: every view-model's messages in one place
    page_requested = Signal(str)

    def __init__(self, engine: Any, trainer: Any, dirs: Any, settings: Any = None) -> None:
        super().__init__()
        self.engine, self.trainer, self.dirs, self.settings = engine, trainer, dirs, settings
        self.store = GalleryStore(dirs.gallery)
        self.create = CreateViewModel(engine, self.store, settings)
        self.timeline = TimelineViewModel(engine, self.store, settings)
        self.train = TrainViewModel(engine, trainer, dirs, settings)
        self.export = ExportViewModel(engine, dirs, settings)
        self.models = ModelsViewModel(engine, dirs)
        self.gallery = GalleryViewModel(self.store)
        self.pack = PackViewModel(engine, dirs, settings, model_ref=self.create.model_ref)
        for vm in (self.create, self.timeline, self.train, self.export, self.models, self.gallery, self.pack):
            vm.message.connect(self.message)
        self.create.generated.connect(self._on_generated)
        self.gallery.open_requested.connect(self.open_sticker)
        self.gallery.reuse_requested.connect(self.reuse_sticker)
        self.models.models_changed.connect(self.create.set_models)
        self.models.models_changed.connect(lambda _models: self.create.prepare())  # the first sticker, warm
        # … but never ahead of what the user asked for: any other engine job (a sticker loads what it needs itself)
        # stops a preparation still running
        self.engine.job_started.connect(lambda job: job.op == "prepare" or self.create.stop_preparing())
        self.train.model_ready.connect(lambda _path: self.models.refresh())
        for name in ("frames_changed", "sticker_changed"):
            getattr(self.timeline, name).connect(lambda *_: self.export.set_sticker(self.timeline.sticker))
        self.timeline.frames_changed.connect(lambda *_: self.gallery.refresh())

    def start(self) -> None:
        """First things after the window shows: model list, device, gallery, and any run left unfinished."""
        self.models.refresh()
        self.train.refresh_device()
        self.gallery.refresh()
        self.train.scan_unfinished()

    def _on_generated(self, sticker: Sticker) -> None:
        self.gallery.refresh()
        self.open_sticker(sticker)

    def reuse_sticker(self, sticker: Sticker) -> None:
        self.create.use_sticker(sticker)
        self.page_requested.emit("create")

    def open_sticker(self, sticker: Sticker) -> None:
        self.timeline.load(sticker)
        self.page_requested.emit("timeline")
