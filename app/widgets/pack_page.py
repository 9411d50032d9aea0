"""Pack page: pick a character and moods, make the whole set, then refine it sticker by sticker.

Left: the character (a picture, a gallery sticker or a description), the title and the moods, Generate pack
with progress and Cancel. Right: the pack as a grid of looping previews; each cell renames, sets emoji, locks,
moves left/right (or is dragged onto another sticker's place), regenerates with a new seed or removes its sticker.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QMimeData, QPoint, Qt
from PySide6.QtGui import QDrag
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.state.pack import PACK_PLATFORMS, PackViewModel
from app.widgets.player import PlayerWidget
from rdtf_engine.packs.moods import DEFAULT_MOODS

IMAGE_FILTER = "Images and stickers (*.png *.webp *.gif *.jpg *.jpeg *.webm *.tgs)"
CELL_W, CELL_H = 176, 236  # one sticker: a 160 px player, its name and emoji, its buttons
FRAME_MS = 100
STICKER_MIME = "application/x-rdtf-pack-sticker"  # a drag carries the sticker's id (UTF-8)


class StickerCell(QWidget):
    """One sticker of the pack: its looping preview, name, emoji and the per-sticker actions."""

    def __init__(self, vm: PackViewModel, sticker_id: str) -> None:
        super().__init__()
        self.vm, self.sticker_id = vm, sticker_id
        self.setFixedSize(CELL_W, CELL_H)
        self.setAcceptDrops(True)
        self._press: QPoint | None = None
        self.player = PlayerWidget()
        self.player.setToolTip("Drag onto another sticker to move it to that place")
        self.player.installEventFilter(self)  # the preview is the drag handle (the line edits keep their drags)
        self.player.setFixedSize(CELL_W - 16, CELL_W - 16)
        self.player.placeholder = "not made yet"
        self.name = QLineEdit()
        self.name.setToolTip("The sticker's name (Enter to save)")
        self.emoji = QLineEdit()
        self.emoji.setMaximumWidth(64)
        self.emoji.setPlaceholderText("emoji")
        self.emoji.setToolTip("1-3 emoji the platforms file this sticker under (Enter to save)")
        self.lock = QToolButton(text="🔒", checkable=True, toolTip="Locked: Regenerate all leaves it as it is")
        self.left = QToolButton(text="◀", toolTip="Move left")
        self.right = QToolButton(text="▶", toolTip="Move right")
        self.regen = QToolButton(text="↻", toolTip="Regenerate with a new seed")
        self.remove = QToolButton(text="✕", toolTip="Remove from the pack")
        top = QHBoxLayout()
        top.addWidget(self.name, 1)
        top.addWidget(self.emoji)
        row = QHBoxLayout()
        for b in (self.left, self.right, self.lock, self.regen, self.remove):
            row.addWidget(b)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.player, 0, Qt.AlignmentFlag.AlignHCenter)
        lay.addLayout(top)
        lay.addLayout(row)
        self.name.editingFinished.connect(lambda: vm.rename(sticker_id, self.name.text()))
        self.emoji.editingFinished.connect(self._emoji_edited)
        self.lock.clicked.connect(lambda: vm.toggle_lock(sticker_id))
        self.left.clicked.connect(lambda: vm.move(sticker_id, -1))
        self.right.clicked.connect(lambda: vm.move(sticker_id, 1))
        self.regen.clicked.connect(lambda: vm.regenerate(sticker_id))
        self.remove.clicked.connect(lambda: vm.remove(sticker_id))

    # ---- drag to reorder: the preview is dragged, any cell takes the drop -----------------------------------
    def eventFilter(self, watched: Any, event: Any) -> bool:
        kind = event.type()
        if kind == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton:
            self._press = event.position().toPoint()
        elif kind == QEvent.Type.MouseButtonRelease:
            self._press = None
        elif kind == QEvent.Type.MouseMove and self._press is not None and self._dragging(event):
            self._press = None
            self.start_drag()
            return True
        return super().eventFilter(watched, event)

    def _dragging(self, event: Any) -> bool:
        """The left button is held and the mouse has moved far enough from where it was pressed."""
        moved = (event.position().toPoint() - self._press).manhattanLength()
        return bool(event.buttons() & Qt.MouseButton.LeftButton) and moved >= QApplication.startDragDistance()

    def start_drag(self) -> None:
        mime = QMimeData()
        mime.setData(STICKER_MIME, self.sticker_id.encode())
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(self.player.grab().scaledToWidth(72, Qt.TransformationMode.SmoothTransformation))
        drag.setHotSpot(QPoint(36, 36))
        drag.exec(Qt.DropAction.MoveAction)

    def _dragged_id(self, event: Any) -> str | None:
        data = event.mimeData()
        if not data.hasFormat(STICKER_MIME):
            return None
        sid = bytes(data.data(STICKER_MIME)).decode("utf-8", "replace")
        return sid if sid != self.sticker_id and self.vm.project is not None and \
            sid in [s.id for s in self.vm.project.stickers] else None

    def dragEnterEvent(self, event: Any) -> None:
        if self._dragged_id(event) is not None:
            event.setDropAction(Qt.DropAction.MoveAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: Any) -> None:
        """The dragged sticker takes this sticker's place (the others shift), saved like `rdtf pack move`."""
        sid = self._dragged_id(event)
        if sid is None:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.MoveAction)
        event.accept()
        self.vm.move_to(sid, [s.id for s in self.vm.project.stickers].index(self.sticker_id) + 1)

    def _emoji_edited(self) -> None:
        if not self.vm.set_emoji(self.sticker_id, self.emoji.text()):
            self.show_sticker(self.vm.project.sticker(self.sticker_id))

    def show_sticker(self, sticker: Any, position: int = 0, count: int = 0, busy: bool = False) -> None:
        if not self.name.hasFocus():
            self.name.setText(sticker.title)
        if not self.emoji.hasFocus():
            self.emoji.setText("".join(sticker.emoji))
        self.lock.setChecked(sticker.locked)
        self.regen.setEnabled(not sticker.locked and not busy)
        self.remove.setEnabled(not busy)
        self.left.setEnabled(position > 0)
        self.right.setEnabled(position < count - 1)

    def load_frames(self) -> None:
        frames = self.vm.frames(self.sticker_id)
        self.player.set_frames(frames)
        self.player.cycle(FRAME_MS if len(frames) > 1 else 0)


class PackPage(QWidget):
    def __init__(self, vm: PackViewModel, gallery_current: Callable[[], Any] = lambda: None) -> None:
        super().__init__()
        self.vm, self.gallery_current = vm, gallery_current
        self.cells: dict[str, StickerCell] = {}
        self._build_form(vm)
        self._build_grid(vm)
        lay = QHBoxLayout(self)
        lay.addWidget(self.form_box, 0)
        lay.addLayout(self.right_box, 1)
        vm.project_changed.connect(self._show_project)
        vm.sticker_made.connect(lambda sid: sid in self.cells and self.cells[sid].load_frames())
        vm.busy_changed.connect(self._busy)
        vm.progress_changed.connect(lambda v: self.progress.setValue(int(v * 100)))
        vm.status_changed.connect(self.status.setText)
        vm.recent_changed.connect(lambda _r: self._fill_recent())
        for name in ("character", "moods", "title"):
            getattr(vm, name + "_changed").connect(lambda v, n=name: self._form_value(n, v))
        self._fill_recent()
        self._busy(False)
        self._show_project(vm.project)

    # ---- building ------------------------------------------------------------------------------------
    def _build_form(self, vm: PackViewModel) -> None:
        self.form_box = QWidget()
        self.form_box.setMaximumWidth(330)
        self.character = QLineEdit(placeholderText="a picture, or describe it: a round orange cat")
        self.character.setToolTip("A picture file (its first frame) or a description the character is drawn from")
        pick, from_gallery = QPushButton("Picture…"), QPushButton("Gallery sticker")
        from_gallery.setToolTip("Use the sticker selected on the Gallery page (its first frame)")
        self.character_view = PlayerWidget()
        self.character_view.setFixedSize(150, 150)
        self.character_view.placeholder = "drawn from\nthe description"
        self.title = QLineEdit(placeholderText="pack title")
        self.moods = QPlainTextEdit()
        self.moods.setPlaceholderText(", ".join(DEFAULT_MOODS))
        self.moods.setMaximumHeight(110)
        reset = QPushButton("Default moods")
        self.generate_btn, self.cancel_btn = QPushButton("Generate pack"), QPushButton("Cancel")
        self.generate_btn.setDefault(True)
        self.progress, self.status = QProgressBar(), QLabel()
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(pick)
        buttons.addWidget(from_gallery)
        form = QFormLayout()
        form.addRow("Character", self.character)
        form.addRow("", buttons)
        form.addRow("", self.character_view)
        form.addRow("Title", self.title)
        form.addRow("Moods", self.moods)
        form.addRow("", reset)
        run = QHBoxLayout()
        run.addWidget(self.generate_btn, 1)
        run.addWidget(self.cancel_btn)
        lay = QVBoxLayout(self.form_box)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(form)
        lay.addLayout(run)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)
        lay.addStretch(1)
        self.character.editingFinished.connect(lambda: vm.set_value("character", self.character.text()))
        self.title.editingFinished.connect(lambda: vm.set_value("title", self.title.text()))
        self.moods.textChanged.connect(lambda: vm.set_value("moods", self.moods.toPlainText()))
        pick.clicked.connect(self.pick_picture)
        from_gallery.clicked.connect(lambda: vm.use_gallery_sticker(self.gallery_current()))
        reset.clicked.connect(lambda: vm.set_value("moods", ", ".join(DEFAULT_MOODS)))
        self.generate_btn.clicked.connect(self._generate)
        self.cancel_btn.clicked.connect(vm.cancel)
        for name in ("character", "title", "moods"):
            self._form_value(name, getattr(vm, name))

    def _build_grid(self, vm: PackViewModel) -> None:
        self.open_btn = QPushButton("Open pack…")
        self.recent_btn = QToolButton(text="Recent")
        self.recent_btn.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.recent_menu = QMenu(self)
        self.recent_btn.setMenu(self.recent_menu)
        self.add_btn = QPushButton("Add moods…")
        self.fill_btn = QPushButton("Fill in missing")
        self.regen_all_btn = QPushButton("Regenerate all")
        self.regen_all_btn.setToolTip("New seeds for every sticker that is not locked")
        self.export_btn = QPushButton("Export pack…")
        self.heading = QLabel()
        tools = QHBoxLayout()
        for w in (self.open_btn, self.recent_btn, self.add_btn, self.fill_btn, self.regen_all_btn, self.export_btn):
            tools.addWidget(w)
        tools.addStretch(1)
        self.grid_host = QWidget()
        self.grid = QGridLayout(self.grid_host)
        self.grid.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.empty = QLabel("No pack open. Pick a character and moods, then Generate pack — or open a pack folder.")
        self.empty.setWordWrap(True)
        self.scroll = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)  # the grid reflows instead
        scroll.setWidget(self.grid_host)
        scroll.viewport().installEventFilter(self)
        self.right_box = QVBoxLayout()
        self.right_box.addLayout(tools)
        self.right_box.addWidget(self.heading)
        self.right_box.addWidget(self.empty)
        self.right_box.addWidget(scroll, 1)
        self.open_btn.clicked.connect(self.open_pack)
        self.add_btn.clicked.connect(self.add_moods)
        self.fill_btn.clicked.connect(vm.fill)
        self.regen_all_btn.clicked.connect(vm.regenerate_all)
        self.export_btn.clicked.connect(self.export_pack)
        self.export_btn.setToolTip("Write the pack for WhatsApp (.wastickers), Telegram, Signal, LINE or Discord; "
                                   "every platform rule is checked first")

    # ---- view-model → widgets --------------------------------------------------------------------------
    def _form_value(self, name: str, value: str) -> None:
        widget = getattr(self, name)
        current = widget.toPlainText() if isinstance(widget, QPlainTextEdit) else widget.text()
        if current != value:
            if isinstance(widget, QPlainTextEdit):
                widget.setPlainText(value)
            else:
                widget.setText(value)
        if name == "character":
            self._show_character()

    def _show_character(self) -> None:
        """The picture the pack starts from: the chosen file, else the open pack's (drawn) character."""
        value, project = self.vm.character, self.vm.project
        if value and Path(value).is_file():
            self.character_view.set_frames([value])
        elif project is not None and (Path(self.vm.folder) / project.character).is_file():
            self.character_view.set_frames([str(Path(self.vm.folder) / project.character)])
        else:
            self.character_view.set_frames([])

    def _busy(self, busy: bool) -> None:
        self.generate_btn.setEnabled(not busy)
        self.cancel_btn.setEnabled(busy)
        self._show_project(self.vm.project)

    def _show_project(self, project: Any) -> None:
        has = project is not None
        busy = self.vm.busy
        self.empty.setVisible(not has and not busy)
        for b in (self.add_btn, self.fill_btn, self.regen_all_btn):
            b.setEnabled(has and not busy)
        self.export_btn.setEnabled(has and not busy)
        ids = [s.id for s in project.stickers] if has else []
        for sid in [s for s in self.cells if s not in ids]:
            cell = self.cells.pop(sid)
            self.grid.removeWidget(cell)
            cell.deleteLater()
        if not has:
            self.heading.setText("")
            self._show_character()
            return
        self._show_character()
        made = sum(self.vm.is_made(s) for s in ids)
        who = f" by {project.author}" if project.author else ""
        self.heading.setText(f"<b>{project.title}</b>{who} — {len(ids)} stickers, {made} made")
        for i, sticker in enumerate(project.stickers):
            cell = self.cells.get(sticker.id)
            if cell is None:
                cell = self.cells[sticker.id] = StickerCell(self.vm, sticker.id)
                cell.load_frames()
            elif not cell.player.paths and self.vm.is_made(sticker.id):
                cell.load_frames()
            cell.show_sticker(sticker, i, len(ids), busy)
        self._reflow()

    def columns(self) -> int:
        return max(1, (self.scroll.viewport().width() - 8) // (CELL_W + self.grid.spacing()))

    def _reflow(self) -> None:
        """Cells in pack order, as many per row as the page is wide (re-adding a widget moves it)."""
        cols = self.columns()
        project = self.vm.project
        for i, sticker in enumerate(project.stickers if project is not None else ()):
            if sticker.id in self.cells:
                self.grid.addWidget(self.cells[sticker.id], i // cols, i % cols)

    def eventFilter(self, watched: Any, event: Any) -> bool:
        if watched is self.scroll.viewport() and event.type() == QEvent.Type.Resize:
            self._reflow()  # the viewport's own width decides the columns (the page's is known too early)
        return super().eventFilter(watched, event)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for folder in self.vm.recent:
            self.recent_menu.addAction(folder, lambda f=folder: self.vm.open(f))
        self.recent_btn.setEnabled(bool(self.vm.recent))

    # ---- actions that ask the user -----------------------------------------------------------------
    def _generate(self) -> None:
        self.vm.set_value("character", self.character.text())
        self.vm.set_value("title", self.title.text())
        self.vm.generate()

    def pick_picture(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the character picture", "", IMAGE_FILTER)
        if path:
            self.vm.use_picture(path)

    def open_pack(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a pack folder (it holds pack.json)")
        if folder:
            self.vm.open(folder)

    def add_moods(self) -> None:
        text, ok = QInputDialog.getText(self, "Add moods", "Moods to add (comma-separated):")
        if ok and text.strip():
            self.vm.add_moods(text)

    def export_pack(self) -> None:
        platform, ok = QInputDialog.getItem(self, "Export pack", "Platform:", list(PACK_PLATFORMS), 0, False)
        if not ok:
            return
        out = QFileDialog.getExistingDirectory(self, "Export the pack into this folder")
        if out:
            self.vm.export_pack(platform, out)
