"""Light and dark palettes that follow the system colour scheme (and switch live when it changes).

Fusion is used everywhere because it honours the palette on every platform; the native styles of some
desktops ignore a dark palette. ``RDTF_THEME=light|dark`` overrides the system (screenshots, testing).
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication


def dark_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor(37, 37, 38), QColor(30, 30, 30), QColor(230, 230, 230)
    for role, colour in {
        QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base, QPalette.ColorRole.AlternateBase: QColor(45, 45, 48),
        QPalette.ColorRole.ToolTipBase: window, QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.Text: text, QPalette.ColorRole.Button: QColor(51, 51, 55),
        QPalette.ColorRole.ButtonText: text, QPalette.ColorRole.BrightText: QColor(255, 80, 80),
        QPalette.ColorRole.Highlight: QColor(66, 133, 244), QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(100, 170, 255), QPalette.ColorRole.PlaceholderText: QColor(140, 140, 140),
    }.items():
        p.setColor(role, colour)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText, QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor(120, 120, 120))
    return p


def is_dark() -> bool:
    forced = os.environ.get("RDTF_THEME", "").lower()
    if forced in ("light", "dark"):
        return forced == "dark"
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_theme(app: QApplication) -> None:
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if is_dark() else app.style().standardPalette())


def follow_system(app: QApplication) -> None:
    apply_theme(app)
    app.styleHints().colorSchemeChanged.connect(lambda _scheme: apply_theme(app))
