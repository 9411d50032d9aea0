"""Export page: choose platform presets, Check (every rule pass/fail), then Save; or export a whole pack."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.state.export import PRESETS, ExportViewModel
from app.widgets.player import PlayerWidget

PASS, FAIL = QColor("#2e7d32"), QColor("#c62828")


class ExportPage(QWidget):
    def __init__(self, vm: ExportViewModel, gallery_entries: callable) -> None:
        super().__init__()
        self.vm = vm
        self.gallery_entries = gallery_entries  # the pack: everything in the gallery
        self._build_widgets(vm)
        self._build_layout()
        self._connect(vm)
        self._sticker(vm.sticker)
        self._busy(False)

    def _build_widgets(self, vm: ExportViewModel) -> None:
        self.source = QLabel("No sticker: generate one or open one from the gallery.")
        self.source.setWordWrap(True)
        self.preview = PlayerWidget()
        self.preview.setMaximumWidth(260)
        self.checks: dict[str, QCheckBox] = {}
        self.platforms = box = QGroupBox("Platforms")
        grid = QGridLayout(box)
        for i, (key, label) in enumerate(PRESETS.items()):
            cb = QCheckBox(label, checked=key in vm.selected)
            cb.toggled.connect(self._selection)
            grid.addWidget(cb, i // 2, i % 2)
            self.checks[key] = cb
        self.check_btn = QPushButton("Check")
        self.check_btn.setToolTip("Export into a scratch folder and check every rule of each platform")
        self.save_btn = QPushButton("Save checked files…")
        self.pack_btn = QPushButton("Export whole gallery as a pack…")
        self.file_btn = QPushButton("Check an existing file…")
        self.file_preset = QComboBox()
        for key in PRESETS:
            self.file_preset.addItem(key, key)
        self.results = QTreeWidget()
        self.results.setHeaderLabels(["Platform / rule", "Result", "Detail"])
        self.results.setColumnWidth(0, 260)
        self.results.setColumnWidth(1, 70)
        self.status = QLabel()

    def _build_layout(self) -> None:
        """Preview and platform choice on top, the rule results below, checking another file at the bottom."""
        top = QHBoxLayout()
        top.addWidget(self.preview)
        right = QVBoxLayout()
        right.addWidget(self.source)
        right.addWidget(self.platforms)
        buttons = QHBoxLayout()
        for b in (self.check_btn, self.save_btn, self.pack_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        right.addLayout(buttons)
        top.addLayout(right, 1)
        other = QHBoxLayout()
        other.addWidget(self.file_btn)
        other.addWidget(QLabel("against"))
        other.addWidget(self.file_preset)
        other.addStretch(1)
        other.addWidget(self.status)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.results, 1)
        lay.addLayout(other)

    def _connect(self, vm: ExportViewModel) -> None:
        self.check_btn.clicked.connect(vm.check)
        self.save_btn.clicked.connect(self.save)
        self.pack_btn.clicked.connect(self.export_pack)
        self.file_btn.clicked.connect(self.check_file)
        vm.selected_changed.connect(self._selected_from_vm)
        vm.sticker_changed.connect(self._sticker)
        vm.results_changed.connect(self._results)
        vm.busy_changed.connect(self._busy)

    def _selected_from_vm(self, selected: list) -> None:
        for key, cb in self.checks.items():
            cb.blockSignals(True)
            cb.setChecked(key in selected)
            cb.blockSignals(False)

    def _selection(self) -> None:
        self.vm.set_selected([k for k, cb in self.checks.items() if cb.isChecked()])

    def _sticker(self, sticker) -> None:
        if sticker is None:
            self.preview.set_frames([])
            return
        self.source.setText(f"“{sticker.prompt or sticker.id}” · {len(sticker.frames)} frames · "
                            f"{sum(f.duration_ms for f in sticker.frames) / 1000:.2f} s")
        self.preview.set_frames([f.path for f in sticker.frames])
        self.preview.cycle(100)

    def _results(self, results: dict) -> None:
        self.results.clear()
        for preset, r in results.items():
            top = QTreeWidgetItem([PRESETS.get(preset, preset), "PASS" if r["ok"] else "FAIL",
                                   r["error"] or (f"{r['bytes'] / 1024:.1f} KiB" if r["bytes"] else "")])
            top.setForeground(1, PASS if r["ok"] else FAIL)
            for rule in r["rules"]:
                child = QTreeWidgetItem([rule["name"], "✓" if rule["ok"] else "✗", rule["detail"]])
                child.setForeground(1, PASS if rule["ok"] else FAIL)
                top.addChild(child)
            for t in r["trades"]:
                top.addChild(QTreeWidgetItem(["traded", "", str(t)]))
            self.results.addTopLevelItem(top)
            top.setExpanded(not r["ok"])  # failures open, so the failing rule is seen at once
        self.save_btn.setEnabled(any(r["ok"] for r in results.values()))

    def _busy(self, busy: bool) -> None:
        for b in (self.check_btn, self.pack_btn, self.file_btn):
            b.setEnabled(not busy)
        self.status.setText("Working…" if busy else "")
        if busy:
            self.save_btn.setEnabled(False)
        else:
            self.save_btn.setEnabled(any(r["ok"] for r in self.vm.results.values()))

    def save(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the checked files to")
        if folder:
            self.vm.save_to(folder)

    def export_pack(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export the pack into")
        if folder:
            self.vm.export_pack(self.gallery_entries(), folder)

    def check_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "File to check", "",
                                              "Stickers (*.gif *.png *.apng *.webp *.webm *.tgs)")
        if path:
            self.vm.check_file(path, self.file_preset.currentData(Qt.ItemDataRole.UserRole))
