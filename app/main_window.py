"""The main window: a page list on the left, the pages, a message bar on top, worker state at the bottom.

Closing the window while a training run is going asks first, then stops the run cooperatively (the engine
writes a checkpoint) before the window goes away, so reopening can offer to resume it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from PySide6.QtCore import QByteArray, QSize
from PySide6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.state.app_state import PAGES, AppState
from app.widgets.common import MessageBar
from app.widgets.create_page import CreatePage
from app.widgets.export_page import ExportPage
from app.widgets.gallery_page import GalleryPage
from app.widgets.models_page import ModelsPage
from app.widgets.pack_page import PackPage
from app.widgets.timeline_page import TimelinePage
from app.widgets.train_page import TrainPage

log = logging.getLogger(__name__)
TITLES = {"create": "Create", "timeline": "Timeline", "pack": "Pack", "train": "Train", "export": "Export",
          "models": "Models", "gallery": "Gallery"}
STATE_TEXT = {"stopped": "idle", "starting": "starting…", "ready": "ready", "crashed": "restarting…",
              "gave-up": "stopped after crashes"}


class MainWindow(QMainWindow):
    def __init__(self, state: AppState, settings: Any = None, ask_before_close: bool = True) -> None:
        super().__init__()
        self.state, self.settings, self.ask_before_close = state, settings, ask_before_close
        self.setWindowTitle("RDTF Sticker Studio")
        self.bar = MessageBar()
        self.nav = QListWidget()
        self.nav.setFixedWidth(130)
        self.stack = QStackedWidget()
        self.pages: dict[str, QWidget] = {
            "create": CreatePage(state.create),
            "timeline": TimelinePage(state.timeline),
            "pack": PackPage(state.pack, lambda: state.gallery.current),
            "train": TrainPage(state.train),
            "export": ExportPage(state.export, lambda: state.gallery.entries),
            "models": ModelsPage(state.models),
            "gallery": GalleryPage(state.gallery),
        }
        for i, name in enumerate(PAGES):
            self.nav.addItem(f"{TITLES[name]}")
            self.stack.addWidget(self.pages[name])
            QShortcut(QKeySequence(f"Ctrl+{i + 1}"), self, lambda i=i: self.nav.setCurrentRow(i))
        body = QHBoxLayout()
        body.addWidget(self.nav)
        body.addWidget(self.stack, 1)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.bar)
        lay.addLayout(body, 1)
        self.setCentralWidget(central)
        self.engine_label, self.trainer_label = QLabel(), QLabel()
        self.statusBar().addPermanentWidget(self.engine_label)
        self.statusBar().addPermanentWidget(self.trainer_label)

        self.nav.currentRowChanged.connect(self._page_changed)
        state.message.connect(self.bar.show_message)
        state.page_requested.connect(self.show_page)
        for client, label in ((state.engine, self.engine_label), (state.trainer, self.trainer_label)):
            client.crashed.connect(lambda text: self.bar.show_message("error", text))
            client.state_changed.connect(lambda s, c=client, lb=label: self._worker_state(c, lb, s))
            self._worker_state(client, label, client.state)
        self._build_menu()
        self._restore()
        self._closing_done = False

    def _build_menu(self) -> None:
        """File → Open pack… and the recently opened packs (the Pack page has the same buttons)."""
        menu = self.menuBar().addMenu("&File")
        menu.addAction("Open pack…", QKeySequence("Ctrl+Shift+O"), self._open_pack)
        self.recent_packs = menu.addMenu("Recent packs")
        self.recent_packs.aboutToShow.connect(self._fill_recent_packs)
        menu.addSeparator()
        menu.addAction("Quit", QKeySequence.StandardKey.Quit, self.close)

    def _open_pack(self) -> None:
        pack_page = self.pages["pack"]
        self.show_page("pack")
        pack_page.open_pack()  # type: ignore[attr-defined]

    def _fill_recent_packs(self) -> None:
        self.recent_packs.clear()
        for folder in self.state.pack.recent:
            self.recent_packs.addAction(folder, lambda f=folder: self.state.pack.open(f) and self.show_page("pack"))
        if not self.state.pack.recent:
            self.recent_packs.addAction("(none yet)").setEnabled(False)

    def show_page(self, name: str) -> None:
        self.nav.setCurrentRow(PAGES.index(name))

    def current_page(self) -> str:
        return PAGES[self.stack.currentIndex()]

    def _page_changed(self, row: int) -> None:
        self.stack.setCurrentIndex(row)
        if self.settings is not None:
            self.settings.set("window/page", row)

    def _worker_state(self, client: Any, label: QLabel, state: str) -> None:
        label.setText(f"{client.name.capitalize()}: {STATE_TEXT.get(state, state)}")

    def _restore(self) -> None:
        geometry = self.settings.raw("window/geometry") if self.settings is not None else None
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(QSize(1180, 780))
        self.nav.setCurrentRow(self.settings.get("window/page") if self.settings is not None else 0)

    # ---- closing -------------------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:
        if self._closing_done:
            self._save_window()
            event.accept()
            return
        if self.state.trainer.busy and self.ask_before_close:
            answer = QMessageBox.question(
                self, "Training is running",
                "Stop training and quit? A checkpoint is saved, and the run is offered for resuming next time.")
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None:  # no asyncio loop (plain Qt): block briefly, it is the last thing the window does
            self.state.trainer.stop_now()
            self.state.engine.stop_now()
            self._closing_done = True
            self._save_window()
            event.accept()
            return
        event.ignore()  # close for real once the workers have stopped (the run's checkpoint is written)
        self.bar.show_message("info", "Saving and stopping the engine…")
        loop.create_task(self._shutdown_then_close())

    def _save_window(self) -> None:
        if self.settings is not None:
            self.settings.set_raw("window/geometry", self.saveGeometry())
            self.settings.sync()

    async def _shutdown_then_close(self) -> None:
        try:
            await asyncio.gather(self.state.trainer.shutdown(60.0), self.state.engine.shutdown(5.0))
        except Exception:
            log.exception("error while stopping workers")
        self._closing_done = True
        self.close()
