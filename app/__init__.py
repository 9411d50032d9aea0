"""RDTF Sticker Studio: the PySide6 + qasync desktop app on top of ``rdtf_engine`` (never the reverse).

The GUI process imports only the engine's pure-Python modules (``events``, ``requests``, ``errors``); all torch
work happens in worker processes spoken to over JSON lines (``app.jobs``, docs/protocol.md).
"""

__version__ = "0.1.0"
