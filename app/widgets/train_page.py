"""Train page: data (drop/pick → report → captions), recipe with time estimate, and the live run monitor."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.state.train import TrainViewModel
from app.widgets.common import FittedPicture, pixmap, thumb_icon
from app.widgets.loss_plot import LossPlot
from rdtf_engine.core.recipes import APP_RECIPES, recipe

THUMB = 40


class ResumeBanner(QFrame):
    """Offers the newest unfinished run; one click resumes it, one dismisses it for good."""

    def __init__(self, vm: TrainViewModel) -> None:
        super().__init__()
        self.vm = vm
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.resume_btn, self.dismiss_btn = QPushButton("Resume"), QPushButton("Don't resume")
        lay = QHBoxLayout(self)
        lay.addWidget(self.label, 1)
        lay.addWidget(self.resume_btn)
        lay.addWidget(self.dismiss_btn)
        self.resume_btn.clicked.connect(lambda: vm.resume(self.run_dir))
        self.dismiss_btn.clicked.connect(lambda: vm.dismiss_offer(self.run_dir))
        vm.offers_changed.connect(self.show_offers)
        self.run_dir = ""
        self.show_offers(vm.offers)

    def show_offers(self, offers: list) -> None:
        self.setVisible(bool(offers))
        if offers:
            o = offers[0]
            self.run_dir = o["run_dir"]
            more = f" ({len(offers) - 1} more)" if len(offers) > 1 else ""
            self.label.setText(f"Training run “{o['name']}” did not finish (last checkpoint at step {o['step']} "
                               f"of {o['steps']}). Resume it?{more}")


class TrainPage(QWidget):
    def __init__(self, vm: TrainViewModel) -> None:
        super().__init__()
        self.vm = vm
        self.setAcceptDrops(True)
        self.banner = ResumeBanner(vm)
        cols = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self._build_data_box(), 1)
        left.addWidget(self._build_recipe_box())
        cols.addLayout(left, 1)
        cols.addWidget(self._build_run_box(), 1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.banner)
        lay.addLayout(cols, 1)
        self._connect_controls()
        self._connect_view_model()
        self.estimate.setText(vm.estimate)
        self._warning(vm.warning)
        self._state(vm.state)

    def _build_data_box(self) -> QGroupBox:
        """1. Your stickers: pick/drop, the import report, the editable captions."""
        self.drop_hint = QLabel("Drop a folder or .zip of stickers here, or")
        self.folder_btn, self.zip_btn = QPushButton("Choose folder…"), QPushButton("Choose zip…")
        self.report = QLabel("No data yet.")
        self.report.setWordWrap(True)
        self.skipped = QListWidget()
        self.skipped.setMaximumHeight(90)
        self.skipped.hide()
        self.captions = QTableWidget(0, 3)
        self.captions.setHorizontalHeaderLabels(["", "File", "Caption (editable)"])
        self.captions.verticalHeader().setVisible(False)
        self.captions.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.captions.verticalHeader().setDefaultSectionSize(THUMB + 4)
        pick = QHBoxLayout()
        for w in (self.drop_hint, self.folder_btn, self.zip_btn):
            pick.addWidget(w)
        pick.addStretch(1)
        data = QGroupBox("1. Your stickers")
        dl = QVBoxLayout(data)
        dl.addLayout(pick)
        dl.addWidget(self.report)
        dl.addWidget(self.skipped)
        dl.addWidget(self.captions, 1)
        return data

    def _build_recipe_box(self) -> QGroupBox:
        """2. How to train: the recipe (fine-tune by default), its time estimate and the from-scratch warning."""
        self.preset = QComboBox()
        for name in APP_RECIPES:
            self.preset.addItem(recipe(name).label, name)
        self.estimate = QLabel()
        self.warning = QLabel()
        self.warning.setWordWrap(True)
        self.start_btn = QPushButton("Start training")
        setup = QGroupBox("2. How to train")
        grid = QGridLayout(setup)
        grid.addWidget(self.preset, 0, 0)
        grid.addWidget(self.estimate, 0, 1)
        grid.addWidget(self.start_btn, 0, 2)
        grid.addWidget(self.warning, 1, 0, 1, 3)
        grid.setColumnStretch(1, 1)
        return setup

    def _build_run_box(self) -> QGroupBox:
        """3. Training: loss curve, progress, curriculum and speed lines, samples, pause/resume/stop."""
        self.plot = LossPlot()
        self.bar = QProgressBar()
        self.stage, self.speed = QLabel(), QLabel()
        # each preview: a caption per row, the real sticker beside what the model draws for it now
        self.samples = FittedPicture("Samples appear here during training: your stickers beside the model's")
        self.samples.setMinimumHeight(170)
        self.samples.setWordWrap(True)
        self.pause_btn, self.resume_btn, self.stop_btn = QPushButton("Pause"), QPushButton("Resume"), \
            QPushButton("Stop")
        run = QGroupBox("3. Training")
        grid = QGridLayout(run)
        grid.addWidget(self.plot, 0, 0, 1, 3)
        grid.addWidget(self.samples, 3, 0, 1, 3)
        grid.setRowStretch(0, 3)  # the loss curve and the samples share what the window gives
        grid.setRowStretch(3, 2)
        grid.addWidget(self.bar, 1, 0, 1, 3)
        grid.addWidget(self.stage, 2, 0)
        grid.addWidget(self.speed, 2, 1)
        btns = QHBoxLayout()
        for b in (self.pause_btn, self.resume_btn, self.stop_btn):
            btns.addWidget(b)
        grid.addLayout(btns, 2, 2)
        return run

    def _connect_controls(self) -> None:
        vm = self.vm
        self.folder_btn.clicked.connect(self.pick_folder)
        self.zip_btn.clicked.connect(self.pick_zip)
        self.captions.itemChanged.connect(self._caption_edited)
        self.preset.setCurrentIndex(max(0, self.preset.findData(vm.choice)))
        self.preset.currentIndexChanged.connect(lambda i: vm.set_choice(self.preset.itemData(i)))
        self.start_btn.clicked.connect(vm.start)
        self.pause_btn.clicked.connect(vm.pause)
        self.resume_btn.clicked.connect(lambda: vm.resume())
        self.stop_btn.clicked.connect(vm.stop)

    def _connect_view_model(self) -> None:
        vm = self.vm
        vm.choice_changed.connect(lambda c: self.preset.setCurrentIndex(max(0, self.preset.findData(c))))
        vm.importing_changed.connect(self._importing)
        vm.report_changed.connect(self._report)
        vm.captions_changed.connect(self._captions)
        vm.estimate_changed.connect(self.estimate.setText)
        vm.warning_changed.connect(self._warning)
        vm.state_changed.connect(self._state)
        vm.step_changed.connect(self._step)
        vm.total_changed.connect(lambda t: self.bar.setMaximum(max(1, t)))
        vm.losses_changed.connect(self.plot.set_points)
        vm.stage_changed.connect(lambda s: self.stage.setText(f"Curriculum: {s}" if s else ""))
        vm.speed_changed.connect(self.speed.setText)
        vm.samples_changed.connect(self._samples)

    # ---- picking data ----------------------------------------------------------------------------------
    def pick_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder of stickers")
        if path:
            self.vm.import_source(path)

    def pick_zip(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Zip of stickers", "", "Zip archives (*.zip)")
        if path:
            self.vm.import_source(path)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        urls = event.mimeData().urls()
        if len(urls) == 1 and urls[0].isLocalFile():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = event.mimeData().urls()[0].toLocalFile()
        if Path(path).is_dir() or path.lower().endswith(".zip"):
            self.vm.import_source(path)
        else:
            self.vm.warn("Drop a folder or a .zip file of stickers.")

    # ---- view-model → widgets -------------------------------------------------------------------------
    def _importing(self, busy: bool) -> None:
        for w in (self.folder_btn, self.zip_btn):
            w.setEnabled(not busy)
        if busy:
            self.report.setText(f"Importing {self.vm.source}…")

    def _report(self, report: dict) -> None:
        imported, skipped = report.get("imported") or [], report.get("skipped") or []
        self.report.setText(f"{len(imported)} sticker(s) imported, {len(skipped)} skipped.")
        self.skipped.clear()
        for s in skipped:
            name = s.get("name") or s.get("file") or s.get("path") or "?"
            self.skipped.addItem(f"{name}: {s.get('message') or s.get('reason') or 'skipped'}")
        self.skipped.setVisible(bool(skipped))

    def _captions(self, rows: list) -> None:
        self.captions.blockSignals(True)
        self.captions.setRowCount(len(rows))
        for i, r in enumerate(rows):
            icon = QTableWidgetItem()
            if r.get("thumb"):
                icon.setIcon(thumb_icon(r["thumb"], THUMB, self.palette()))
            icon.setFlags(Qt.ItemFlag.ItemIsEnabled)
            key = QTableWidgetItem(r["key"])
            key.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
            self.captions.setItem(i, 0, icon)
            self.captions.setItem(i, 1, key)
            self.captions.setItem(i, 2, QTableWidgetItem(r["caption"]))
        self.captions.setIconSize(QSize(THUMB, THUMB))
        self.captions.resizeColumnToContents(1)
        self.captions.blockSignals(False)

    def _caption_edited(self, item: QTableWidgetItem) -> None:
        if item.column() == 2:
            self.vm.set_caption(item.row(), item.text())

    def _state(self, state: str) -> None:
        running = state in ("running", "stopping")
        self.start_btn.setEnabled(not running)
        self.pause_btn.setEnabled(state == "running")
        self.resume_btn.setEnabled(state == "paused")
        self.stop_btn.setEnabled(state in ("running", "paused"))
        self.preset.setEnabled(not running)
        self.bar.setFormat({"stopping": "Saving a checkpoint…", "paused": "Paused — %v / %m",
                            "done": "Finished — %v steps"}.get(state, "%v / %m steps"))

    def _warning(self, text: str) -> None:
        self.warning.setText(f"⚠ {text}" if text else "")
        self.warning.setVisible(bool(text))

    def _step(self, step: int) -> None:
        self.bar.setValue(step)

    def _samples(self, paths: list) -> None:
        pm = pixmap(paths[0]) if paths else QPixmap()
        if pm.isNull() and paths:
            return  # an unreadable preview: keep the last one
        self.samples.set_picture(pm)  # (none: a new run — the placeholder again)
