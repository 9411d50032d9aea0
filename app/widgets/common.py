"""Small shared pieces: cached pixmaps, the transparency checkerboard, the message bar, two-way bindings."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, ClassVar

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QAbstractSpinBox, QHBoxLayout, QLabel, QPushButton, QWidget

_CACHE: OrderedDict[tuple[str, int], QPixmap] = OrderedDict()
_CACHE_MAX = 512  # thumbnails of a few dozen stickers; full frames are small (≤ 512 px)


def pixmap(path: str, size: int = 0) -> QPixmap:
    """A (scaled, cached) pixmap; an unreadable file gives a null pixmap rather than an exception."""
    key = (path, size)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    pm = QPixmap(path) if path else QPixmap()
    if size and not pm.isNull():
        pm = pm.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    _CACHE[key] = pm
    if len(_CACHE) > _CACHE_MAX:
        _CACHE.popitem(last=False)
    return pm


def checker_brush(palette: QPalette, cell: int = 8) -> QBrush:
    """Two greys from the current palette, so transparency reads correctly in light and dark themes."""
    base = palette.color(QPalette.ColorRole.Base)
    dark = base.lightness() < 128
    a, b = (QColor(58, 58, 58), QColor(78, 78, 78)) if dark else (QColor(236, 236, 236), QColor(204, 204, 204))
    tile = QPixmap(cell * 2, cell * 2)
    tile.fill(a)
    p = QPainter(tile)
    p.fillRect(0, 0, cell, cell, b)
    p.fillRect(cell, cell, cell, cell, b)
    p.end()
    return QBrush(tile)


def thumb_icon(path: str, size: int, palette: QPalette) -> QIcon:
    """A thumbnail drawn on the checkerboard, so transparent frames are visible in lists."""
    canvas = QPixmap(size, size)
    p = QPainter(canvas)
    p.fillRect(canvas.rect(), checker_brush(palette, max(4, size // 8)))
    pm = pixmap(path, size)
    if not pm.isNull():
        p.drawPixmap((size - pm.width()) // 2, (size - pm.height()) // 2, pm)
    p.end()
    return QIcon(canvas)


class FittedPicture(QLabel):
    """A picture shown as large as the label allows, aspect kept, rescaled smoothly whenever the label resizes
    (a QLabel's own pixmap stays the size it was set at)."""

    def __init__(self, placeholder: str = ""):
        super().__init__(placeholder)
        self._source, self._placeholder = QPixmap(), placeholder
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(1, 1)  # (a pixmap must never hold the layout at its own size)

    def set_picture(self, pm: QPixmap) -> None:
        """Show ``pm``; a null pixmap shows the placeholder text again."""
        self._source = pm
        if pm.isNull():
            self.clear()
            self.setText(self._placeholder)
        self._fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        if not self._source.isNull():
            self.setPixmap(self._source.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))


class MessageBar(QWidget):
    """In-window messages instead of dialogs: errors stay until closed, info fades after a few seconds."""

    shown = Signal(str, str)

    COLOURS: ClassVar[dict[str, str]] = {"info": "#2e7d32", "warning": "#ef6c00", "error": "#c62828"}

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QPushButton("✕")
        close.setFlat(True)
        close.setFixedWidth(28)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 4, 4)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self.level = ""
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, level: str, text: str) -> None:
        self.level = level
        colour = self.COLOURS.get(level, self.COLOURS["info"])
        self.setStyleSheet(f"MessageBar {{ background: {colour}; }} QLabel, QPushButton {{ color: white; }}")
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.label.setText(text)
        self.show()
        self.shown.emit(level, text)
        if level == "info":
            self._timer.start(6000)
        else:
            self._timer.stop()


def bind_spin(spin: QAbstractSpinBox, signal: Signal, setter: Callable[[Any], None], value: Any) -> None:
    """Keep a spin box and a view-model property in step without feedback loops."""
    spin.setValue(value)
    spin.valueChanged.connect(setter)

    def update(v: Any) -> None:
        if spin.value() != v:
            spin.blockSignals(True)
            spin.setValue(v)
            spin.blockSignals(False)

    signal.connect(update)


def icon_size(n: int) -> QSize:
    return QSize(n, n)
