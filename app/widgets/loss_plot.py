"""Live loss curve (pyqtgraph: redraws thousands of points cheaply, unlike a QPainter chart per update)."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QWidget


class LossPlot(pg.PlotWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumHeight(180)
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setLabel("bottom", "step")
        self.setLabel("left", "loss")
        self.log_y = False  # set_points decides: log once the losses span a decade
        self.curve = self.plot([], [], pen=pg.mkPen("#42a5f5", width=2))
        self.apply_palette()

    def apply_palette(self) -> None:
        """Follow the app's light/dark palette instead of pyqtgraph's fixed black."""
        pal = self.palette()
        self.setBackground(pal.color(QPalette.ColorRole.Base))
        fg = pal.color(QPalette.ColorRole.Text)
        for axis in ("left", "bottom"):
            self.getAxis(axis).setPen(fg)
            self.getAxis(axis).setTextPen(fg)

    def set_points(self, points: list) -> None:
        if points:
            xs, ys = zip(*[(s, max(v, 1e-8)) for s, v in points])
            # a log axis labels only whole decades: within one (a fine-tune's losses) it would show no numbers at
            # all, so it goes logarithmic only once the losses span one (a run from scratch falls over several)
            log_y = max(ys) / min(ys) >= 10
            if log_y != self.log_y:
                self.log_y = log_y
                self.setLogMode(y=log_y)
            self.curve.setData(list(xs), list(ys))
        else:
            self.curve.setData([], [])
