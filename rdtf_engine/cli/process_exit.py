"""End a finished ``rdtf`` process without tearing the interpreter down.

Why: a cold ``rdtf generate`` spends ≈ 0.7 s of its ≈ 10 s on two CPU cores *after* its last line — Python's
finalisation unloading the ≈ 3,000 modules it imported (torch, diffusers, transformers, scipy, ONNX Runtime) and freeing
the model object by object (docs/performance.md, "B5: the process's end …"). Nothing of that is the user's: every file a
command writes is written atomically and closed before ``main`` returns. So once the interpreter's own exit duties are
done — the ``atexit`` handlers (logging's flush, temporary folders' finalizers, the graph prefetch's wait) and the
standard streams flushed — the process ends at once with ``os._exit``.

The ordinary exit is kept wherever its extra work could matter: another non-daemon thread still running (the
ordinary exit joins it), or ``RDTF_FULL_EXIT=1`` (for a tool that inspects the interpreter's shutdown, e.g. a
leak checker). ``main`` itself still returns its exit code, so in-process callers (the tests, the app's
``--cli``) are unaffected.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import NoReturn

FULL_EXIT_ENV = "RDTF_FULL_EXIT"


def _others_running() -> bool:
    """Whether a thread the ordinary exit would wait for (not the main one, not a daemon) is still alive."""
    main = threading.main_thread()
    return any(t is not main and t.is_alive() and not t.daemon for t in threading.enumerate())


def exit_process(code: int) -> NoReturn:
    """Exit with ``code``: the atexit handlers run and the standard streams are flushed, then the process ends
    without the interpreter's module-by-module teardown (or with it: module docstring)."""
    if os.environ.get(FULL_EXIT_ENV, "").strip() not in ("", "0") or _others_running():
        sys.exit(code)
    atexit._run_exitfuncs()  # what the interpreter's exit would run first, in the same (reverse) order
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # a closed pipe or a replaced stream: nothing left to flush
            pass
    os._exit(code)


__all__ = ["FULL_EXIT_ENV", "exit_process"]
