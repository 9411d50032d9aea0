"""A small helper so view-model properties are one line each and always announce changes."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Property, QObject, Signal


def qprop(typ: type, name: str, signal: Signal) -> Property:
    """A read-only Qt ``Property`` over ``self._<name>``, notifying through ``signal``; write with ``_set``."""

    def getter(self: QObject) -> Any:
        return getattr(self, "_" + name)

    return Property(typ if typ in (int, float, bool, str) else "QVariant", getter, notify=signal)


class ViewModel(QObject):
    """Base class: ``_set('busy', True)`` stores and emits ``busy_changed`` only when the value changed."""

    message = Signal(str, str)  # level ("info" | "warning" | "error"), human text for the message bar

    def _set(self, name: str, value: Any) -> bool:
        if getattr(self, "_" + name, object()) == value:
            return False
        setattr(self, "_" + name, value)
        getattr(self, name + "_changed").emit(value)
        return True

    def info(self, text: str) -> None:
        self.message.emit("info", text)

    def warn(self, text: str) -> None:
        self.message.emit("warning", text)

    def error(self, text: str) -> None:
        self.message.emit("error", text)
