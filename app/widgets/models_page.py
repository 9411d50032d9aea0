"""Models page: shipped and trained models with their data summary; rename, delete, import a folder."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.state.models import ModelsViewModel

COLUMNS = ["Name", "Kind", "Size", "Trained on", "Date", "Folder"]


def human_size(m: dict) -> str:
    weights = m.get("bytes")
    if isinstance(weights, (int, float)) and weights:
        return f"{weights / 2**20:.1f} MiB"
    params = m.get("params")
    if isinstance(params, (int, float)) and params:
        return f"{params / 1e6:.1f} M params" if params >= 1e5 else f"{int(params)} params"
    return str(m.get("size", ""))


def data_summary(m: dict) -> str:
    data = m.get("data_summary") or m.get("data") or ""
    if isinstance(data, dict):  # scalars only: nested tallies (motions per clip…) would swamp the table
        data = ", ".join(f"{k}: {v}" for k, v in data.items() if not isinstance(v, (dict, list)))
    text = str(data)
    return text if len(text) <= 80 else text[:79] + "…"


class ModelsPage(QWidget):
    def __init__(self, vm: ModelsViewModel) -> None:
        super().__init__()
        self.vm = vm
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.rename_btn, self.delete_btn = QPushButton("Rename…"), QPushButton("Delete…")
        self.import_btn, self.refresh_btn = QPushButton("Import model folder…"), QPushButton("Refresh")
        note = QLabel("Only folders with .safetensors weights and a config.json can be imported: pickle files "
                      "(.bin, .pt, .ckpt) can run code when loaded, so they are refused.")
        note.setWordWrap(True)
        buttons = QHBoxLayout()
        for b in (self.rename_btn, self.delete_btn, self.import_btn, self.refresh_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addLayout(buttons)
        lay.addWidget(note)

        self.rename_btn.clicked.connect(self.rename)
        self.delete_btn.clicked.connect(self.delete)
        self.import_btn.clicked.connect(self.import_folder)
        self.refresh_btn.clicked.connect(vm.refresh)
        self.table.itemSelectionChanged.connect(self._selection)
        vm.models_changed.connect(self._models)
        vm.busy_changed.connect(lambda b: self.refresh_btn.setEnabled(not b))
        self._models(vm.models)

    def _models(self, models: list) -> None:
        self.table.setRowCount(len(models))
        for i, m in enumerate(models):
            cells = [m.get("name", ""), "shipped" if m.get("builtin") else "yours", human_size(m), data_summary(m),
                     str(m.get("created", ""))[:10], str(m.get("path", ""))]
            for j, text in enumerate(cells):
                item = QTableWidgetItem(str(text))
                item.setData(Qt.ItemDataRole.UserRole, m)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
        self._selection()

    def selected(self) -> dict | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _selection(self) -> None:
        m = self.selected()
        mine = bool(m) and not m.get("builtin")
        self.rename_btn.setEnabled(mine)
        self.delete_btn.setEnabled(mine)

    def rename(self) -> None:
        m = self.selected()
        if m:
            name, ok = QInputDialog.getText(self, "Rename model", "New name:", text=str(m.get("name", "")))
            if ok:
                self.vm.rename(str(m.get("path")), name)

    def delete(self) -> None:
        m = self.selected()
        if m and QMessageBox.question(self, "Delete model", f"Delete the model “{m.get('name')}” from disk?") \
                == QMessageBox.StandardButton.Yes:
            self.vm.delete(str(m.get("path")))

    def import_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model folder (config.json + .safetensors)")
        if path:
            self.vm.import_folder(path)
