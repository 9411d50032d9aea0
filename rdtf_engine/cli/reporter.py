"""Prints a job's events for the terminal (human lines or JSON lines) and owns the Ctrl-C stop flag."""

from __future__ import annotations

import signal
import sys
import threading

from rdtf_engine.core.events import Failed, event_to_json, format_event


class Reporter:
    """Turns events into output; owns the cooperative stop flag set by SIGINT/SIGTERM."""

    def __init__(self, mode: str, stream=None):
        self.mode = mode
        self.stream = stream  # None = stdout; --json commands send progress to stderr to keep stdout parseable
        self.stop = threading.Event()

    def __call__(self, event) -> None:
        if self.mode == "jsonl":
            print(event_to_json(event), flush=True)
            return
        line = format_event(event)
        if line is not None:
            print(line, file=sys.stderr if isinstance(event, Failed) else (self.stream or sys.stdout), flush=True)

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def install_signals(self) -> None:
        def handler(signum, _frame):
            if self.stop.is_set():
                raise KeyboardInterrupt
            self.stop.set()
            print("stopping after the current step (again to abort)…", file=sys.stderr, flush=True)

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
