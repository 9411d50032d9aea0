"""The looping sticker player: frames drawn over a checkerboard so transparency is visible, with onion skin.

It only paints; timing lives in ``TimelineViewModel`` (testable without pixels). The Create page reuses it for
the live preview with its own tiny frame cycling.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, QSize, Qt, QTimer
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.widgets.common import checker_brush, pixmap


class PlayerWidget(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(160, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.paths: list[str] = []
        self.index = 0
        self.onion = False
        self.placeholder = "No sticker yet"
        self._cycle = QTimer(self)
        self._cycle.timeout.connect(self._advance)

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    def set_frames(self, paths: list[str], index: int = 0) -> None:
        self.paths = list(paths)
        self.index = min(index, max(0, len(self.paths) - 1))
        self.update()

    def set_index(self, index: int) -> None:
        self.index = index
        self.update()

    def set_onion(self, on: bool) -> None:
        self.onion = on
        self.update()

    def cycle(self, interval_ms: int) -> None:
        """Self-driven looping (Create page preview); 0 stops."""
        if interval_ms > 0:
            self._cycle.start(interval_ms)
        else:
            self._cycle.stop()

    def _advance(self) -> None:
        if self.paths:
            self.index = (self.index + 1) % len(self.paths)
            self.update()

    def frame_rect(self) -> QRect:
        side = min(self.width(), self.height()) - 16
        return QRect((self.width() - side) // 2, (self.height() - side) // 2, side, side)

    def paintEvent(self, _event: QPaintEvent) -> None:
        p = QPainter(self)
        rect = self.frame_rect()
        p.fillRect(rect, checker_brush(self.palette(), max(6, rect.width() // 24)))
        if not self.paths:
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(rect, Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        if self.onion and len(self.paths) > 1:
            # The previous frame, faint: shows how far things move between frames.
            p.setOpacity(0.3)
            self._draw(p, self.paths[(self.index - 1) % len(self.paths)], rect)
            p.setOpacity(1.0)
        self._draw(p, self.paths[self.index % len(self.paths)], rect)

    def _draw(self, p: QPainter, path: str, rect: QRect) -> None:
        pm = pixmap(path)
        if pm.isNull():
            return
        scaled = pm.scaled(rect.size(), Qt.AspectRatioMode.KeepAspectRatio,
                           Qt.TransformationMode.FastTransformation if pm.width() < rect.width() // 2
                           else Qt.TransformationMode.SmoothTransformation)
        p.drawPixmap(rect.x() + (rect.width() - scaled.width()) // 2,
                     rect.y() + (rect.height() - scaled.height()) // 2, scaled)
