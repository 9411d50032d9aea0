"""Gallery page state: every sticker ever generated, with its recipe, reopenable into the timeline."""

from __future__ import annotations

from PySide6.QtCore import Signal

from app.state.base import ViewModel, qprop
from app.state.sticker import GalleryStore, Sticker


class GalleryViewModel(ViewModel):
    entries_changed = Signal(object)
    current_changed = Signal(object)
    open_requested = Signal(object)  # Sticker → timeline
    reuse_requested = Signal(object)  # Sticker → the Create form (its recipe)

    entries = qprop(list, "entries", entries_changed)
    current = qprop(object, "current", current_changed)

    def __init__(self, store: GalleryStore) -> None:
        super().__init__()
        self.store = store
        self._entries: list[Sticker] = []
        self._current: Sticker | None = None

    def refresh(self) -> None:
        self._entries = self.store.all()  # always emit: entries are edited in place by the timeline
        self.entries_changed.emit(self._entries)
        if self._current is not None and self._current.id not in {s.id for s in self._entries}:
            self._set("current", None)

    def select(self, sticker_id: str) -> None:
        self._set("current", next((s for s in self._entries if s.id == sticker_id), None))

    def open(self, sticker_id: str | None = None) -> None:
        sticker = self.store.load(sticker_id) if sticker_id else self._current
        if sticker is not None:
            self.open_requested.emit(sticker)

    def reuse(self, sticker_id: str | None = None) -> None:
        sticker = self.store.load(sticker_id) if sticker_id else self._current
        if sticker is not None:
            self.reuse_requested.emit(sticker)

    def delete(self, sticker_id: str) -> None:
        self.store.delete(sticker_id)
        self.refresh()
        self.info("Deleted from the gallery.")
