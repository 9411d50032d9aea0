"""Timeline page: player, transport controls, frame strip and frame actions (all with keyboard shortcuts)."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.state.timeline import TimelineViewModel
from app.widgets.common import thumb_icon
from app.widgets.player import PlayerWidget

THUMB = 72

# (label, shortcut, method name on the page): one table drives buttons, menu actions and tooltips.
ACTIONS = [
    ("Play/Pause", "Space", "play_pause"),
    ("Previous", "Left", "prev_frame"),
    ("Next", "Right", "next_frame"),
    ("Lock", "L", "lock"),
    ("Regenerate unlocked", "R", "regenerate"),
    ("Remake from recipe", "Ctrl+Shift+R", "remake"),
    ("Insert in-between", "I", "insert"),
    ("Duplicate", "Ctrl+D", "duplicate"),
    ("Delete", "Delete", "delete"),
    ("Move left", "Ctrl+Left", "move_left"),
    ("Move right", "Ctrl+Right", "move_right"),
    ("Undo", QKeySequence.StandardKey.Undo, "undo"),
    ("Redo", QKeySequence.StandardKey.Redo, "redo"),
]


class FrameStrip(QListWidget):
    """Horizontal thumbnails; multi-select; drag to reorder (the move goes through the view-model)."""

    def __init__(self, vm: TimelineViewModel) -> None:
        super().__init__()
        self.vm = vm
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(False)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setFixedHeight(THUMB + 56)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setMovement(QListView.Movement.Snap)
        self.setSpacing(4)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys go to the page's shortcuts
        self._syncing = False
        self.itemSelectionChanged.connect(self._selection_to_vm)
        vm.frames_changed.connect(self.rebuild)
        vm.current_changed.connect(self._show_current)
        vm.selection_changed.connect(self._selection_from_vm)

    def _selection_from_vm(self, selection: list) -> None:
        self._syncing = True
        for i in range(self.count()):
            self.item(i).setSelected(i in selection)
        self._syncing = False

    def rebuild(self, frames: list) -> None:
        self._syncing = True
        self.clear()
        for i, f in enumerate(frames):
            item = QListWidgetItem(thumb_icon(f.path, THUMB, self.palette()),
                                   f"{'🔒 ' if f.locked else ''}{i + 1} · {f.duration_ms} ms")
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setSizeHint(QSize(THUMB + 24, THUMB + 36))
            self.addItem(item)
            item.setSelected(i in self.vm.selection)
        self._syncing = False
        self._show_current(self.vm.current)

    def _show_current(self, index: int) -> None:
        item = self.item(index)
        if item is not None:
            self.scrollToItem(item)
            for i in range(self.count()):
                font = self.item(i).font()
                font.setBold(i == index)
                self.item(i).setFont(font)

    def _selection_to_vm(self) -> None:
        if not self._syncing:
            self.vm.select([self.row(it) for it in self.selectedItems()])

    def dropEvent(self, event) -> None:
        src = self.currentRow()
        super().dropEvent(event)
        # Qt already moved the item; find where it landed, then let the view-model own the change (undoable).
        moved = next((i for i in range(self.count()) if self.item(i).data(Qt.ItemDataRole.UserRole) == src), src)
        self.vm.move_to(src, moved)
        self.rebuild(self.vm.frames)


class TimelinePage(QWidget):
    def __init__(self, vm: TimelineViewModel) -> None:
        super().__init__()
        self.vm = vm
        self.player = PlayerWidget()
        self.player.placeholder = "Generate a sticker or open one from the gallery"
        self.strip = FrameStrip(vm)

        lay = QVBoxLayout(self)
        lay.addWidget(self.player, 1)
        lay.addLayout(self._build_transport())
        lay.addWidget(self.strip)
        lay.addLayout(self._build_tools())
        self._connect(vm)
        self.player.set_onion(vm.onion)
        self._busy(False)
        self._frames(vm.frames)

    def _build_transport(self) -> QHBoxLayout:
        """Play, speed, loop, onion skin, the selected frames' duration, and the engine's progress."""
        vm = self.vm
        self.play_btn = QPushButton("Play")
        self.speed = QDoubleSpinBox(minimum=0.1, maximum=4.0, singleStep=0.25, value=vm.speed, suffix="×")
        self.loop = QCheckBox("Loop", checked=vm.loop)
        self.onion = QCheckBox("Onion skin", checked=vm.onion)
        self.duration = QSpinBox(minimum=10, maximum=10_000, singleStep=10, suffix=" ms")
        self.duration.setToolTip("Duration of the selected frames")
        self.progress = QProgressBar(maximum=1000, textVisible=False)
        self.progress.setMaximumWidth(160)
        self.cancel_btn = QPushButton("Cancel")
        transport = QHBoxLayout()
        for w in (self.play_btn, QLabel("Speed"), self.speed, self.loop, self.onion, QLabel("Frame duration"),
                  self.duration):
            transport.addWidget(w)
        transport.addStretch(1)
        transport.addWidget(self.progress)
        transport.addWidget(self.cancel_btn)
        return transport

    def _build_tools(self) -> QHBoxLayout:
        """One button and keyboard shortcut per ``ACTIONS`` entry (transport keys get no button)."""
        self.info = QLabel()
        tools = QHBoxLayout()
        self.buttons: dict[str, QToolButton] = {}
        for label, keys, name in ACTIONS:
            act = QAction(label, self)
            act.setShortcut(QKeySequence(keys))
            act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            act.triggered.connect(getattr(self, name))
            self.addAction(act)
            if name in ("play_pause", "prev_frame", "next_frame"):
                continue
            btn = QToolButton()
            btn.setDefaultAction(act)
            btn.setToolTip(f"{label} ({act.shortcut().toString()})")
            tools.addWidget(btn)
            self.buttons[name] = btn
        tools.addStretch(1)
        tools.addWidget(self.info)
        return tools

    def _connect(self, vm: TimelineViewModel) -> None:
        self.play_btn.clicked.connect(self.play_pause)
        self.speed.valueChanged.connect(lambda v: vm.set_option("speed", v))
        self.loop.toggled.connect(lambda v: vm.set_option("loop", v))
        self.onion.toggled.connect(lambda v: vm.set_option("onion", v))
        self.duration.editingFinished.connect(lambda: vm.set_duration(self.duration.value()))
        self.duration.valueChanged.connect(self._duration_changed)
        self.cancel_btn.clicked.connect(vm.cancel)
        vm.frames_changed.connect(self._frames)
        vm.current_changed.connect(self._current)
        vm.selection_changed.connect(lambda _s: self._sync_duration())
        vm.playing_changed.connect(lambda p: self.play_btn.setText("Pause" if p else "Play"))
        vm.onion_changed.connect(self.player.set_onion)
        vm.busy_changed.connect(self._busy)
        vm.progress_changed.connect(lambda v: self.progress.setValue(int(v * 1000)))
        vm.undo_stack.canUndoChanged.connect(self.buttons["undo"].setEnabled)
        vm.undo_stack.canRedoChanged.connect(self.buttons["redo"].setEnabled)
        self.buttons["undo"].setEnabled(False)
        self.buttons["redo"].setEnabled(False)

    # ---- view-model → widgets ---------------------------------------------------------------------------
    def _frames(self, frames: list) -> None:
        self.player.set_frames([f.path for f in frames], self.vm.current)
        locked = sum(f.locked for f in frames)
        total = sum(f.duration_ms for f in frames)
        self.info.setText(f"{len(frames)} frames · {total / 1000:.2f} s · {locked} locked" if frames else "")
        self._sync_duration()

    def _current(self, index: int) -> None:
        self.player.set_index(index)
        self._sync_duration()

    def _sync_duration(self) -> None:
        targets = self.vm.targets()
        if targets:
            self.duration.blockSignals(True)
            self.duration.setValue(self.vm.frames[targets[0]].duration_ms)
            self.duration.blockSignals(False)

    def _duration_changed(self, value: int) -> None:
        if not self.duration.hasFocus():  # arrows/wheel apply at once; typing applies on Enter
            self.vm.set_duration(value)

    def _busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_btn.setVisible(busy)
        for name in ("regenerate", "remake", "insert"):
            self.buttons[name].setEnabled(not busy)

    # ---- actions (buttons and shortcuts) ----------------------------------------------------------------
    def play_pause(self) -> None:
        self.vm.play()

    def prev_frame(self) -> None:
        self.vm.step(-1)

    def next_frame(self) -> None:
        self.vm.step(+1)

    def lock(self) -> None:
        if self.vm.frames:
            self.vm.toggle_lock()

    def regenerate(self) -> None:
        self.vm.regenerate_unlocked()

    def remake(self) -> None:
        self.vm.regenerate()

    def insert(self) -> None:
        self.vm.insert_between()

    def duplicate(self) -> None:
        if self.vm.frames:
            self.vm.duplicate()

    def delete(self) -> None:
        if self.vm.frames:
            self.vm.delete()

    def move_left(self) -> None:
        self.vm.move(-1)

    def move_right(self) -> None:
        self.vm.move(+1)

    def undo(self) -> None:
        self.vm.undo_stack.undo()

    def redo(self) -> None:
        self.vm.undo_stack.redo()
