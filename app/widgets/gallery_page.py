"""Gallery page: every generated sticker as a thumbnail grid, its recipe, and Open in timeline / Delete."""

from __future__ import annotations

import json
import time

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.state.gallery import GalleryViewModel
from app.widgets.common import thumb_icon
from app.widgets.player import PlayerWidget

THUMB = 96


class GalleryPage(QWidget):
    def __init__(self, vm: GalleryViewModel) -> None:
        super().__init__()
        self.vm = vm
        self.grid = QListWidget()
        self.grid.setViewMode(QListView.ViewMode.IconMode)
        self.grid.setIconSize(QSize(THUMB, THUMB))
        self.grid.setResizeMode(QListView.ResizeMode.Adjust)
        self.grid.setMovement(QListView.Movement.Static)
        self.grid.setWordWrap(True)
        self.grid.setGridSize(QSize(THUMB + 40, THUMB + 48))
        self.preview = PlayerWidget()
        self.preview.placeholder = "Select a sticker"
        self.recipe = QPlainTextEdit()
        self.recipe.setReadOnly(True)
        self.open_btn, self.delete_btn = QPushButton("Open in timeline"), QPushButton("Delete…")
        self.reuse_btn = QPushButton("Reuse in Create")
        self.reuse_btn.setToolTip("Fill the Create form with this sticker's recipe: Generate makes it again")
        side = QVBoxLayout()
        side.addWidget(self.preview, 2)
        side.addWidget(self.recipe, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_btn)
        buttons.addWidget(self.reuse_btn)
        buttons.addWidget(self.delete_btn)
        side.addLayout(buttons)
        lay = QHBoxLayout(self)
        lay.addWidget(self.grid, 3)
        lay.addLayout(side, 2)

        self.grid.currentItemChanged.connect(
            lambda cur, _prev: vm.select(cur.data(Qt.ItemDataRole.UserRole)) if cur else vm.select(""))
        self.grid.itemDoubleClicked.connect(lambda item: vm.open(item.data(Qt.ItemDataRole.UserRole)))
        self.open_btn.clicked.connect(lambda: vm.open())
        self.reuse_btn.clicked.connect(lambda: vm.reuse())
        self.delete_btn.clicked.connect(self.delete)
        vm.entries_changed.connect(self._entries)
        vm.current_changed.connect(self._current)
        self._entries(vm.entries)
        self._current(vm.current)

    def _entries(self, entries: list) -> None:
        keep = self.vm.current.id if self.vm.current else None
        self.grid.blockSignals(True)
        self.grid.clear()
        for s in entries:
            first = s.frames[0].path if s.frames else ""
            item = QListWidgetItem(thumb_icon(first, THUMB, self.palette()), (s.prompt or s.id)[:40])
            item.setData(Qt.ItemDataRole.UserRole, s.id)
            item.setToolTip(f"{s.prompt}\n{time.strftime('%Y-%m-%d %H:%M', time.localtime(s.created))}")
            self.grid.addItem(item)
            if s.id == keep:
                self.grid.setCurrentItem(item)
        self.grid.blockSignals(False)

    def _current(self, sticker) -> None:
        self.open_btn.setEnabled(sticker is not None)
        self.reuse_btn.setEnabled(sticker is not None)
        self.delete_btn.setEnabled(sticker is not None)
        if sticker is None:
            self.preview.set_frames([])
            self.preview.cycle(0)
            self.recipe.setPlainText("")
            return
        self.preview.set_frames([f.path for f in sticker.frames])
        self.preview.cycle(100)
        self.recipe.setPlainText(json.dumps(sticker.recipe, indent=2, ensure_ascii=False, default=str))

    def delete(self) -> None:
        s = self.vm.current
        if s and QMessageBox.question(self, "Delete sticker", f"Delete “{s.prompt or s.id}” from the gallery?") \
                == QMessageBox.StandardButton.Yes:
            self.vm.delete(s.id)
