"""The ``rdtf`` process's quick exit: atexit handlers and buffered output survive it, and a running thread keeps
the ordinary exit (which waits for it)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                          check=False, timeout=120, env={**os.environ, **env})


def test_quick_exit_keeps_the_exit_code_the_atexit_handlers_and_buffered_output(tmp_path):
    marker = tmp_path / "atexit.txt"
    out = _run(f"""
        import atexit, sys
        from rdtf_engine.cli.process_exit import exit_process
        atexit.register(lambda: open({str(marker)!r}, "w").write("ran"))
        sys.stdout.write("no newline yet")  # still in the buffer (stdout is a pipe here)
        sys.stderr.write("err")
        exit_process(3)
        print("never")
    """)
    assert out.returncode == 3 and out.stdout == "no newline yet" and out.stderr.endswith("err")
    assert marker.read_text() == "ran"


def test_a_thread_still_running_gets_the_ordinary_exit_that_waits_for_it(tmp_path):
    marker = tmp_path / "thread.txt"
    out = _run(f"""
        import threading, time
        from rdtf_engine.cli.process_exit import exit_process
        def work():
            time.sleep(0.5)
            open({str(marker)!r}, "w").write("done")
        threading.Thread(target=work).start()
        exit_process(4)
    """)
    assert out.returncode == 4 and marker.read_text() == "done"


def test_the_command_line_ends_with_its_code_both_ways():
    """``python -m rdtf_engine`` runs ``main`` and exits with its code, quick or (RDTF_FULL_EXIT=1) ordinary; an
    error still prints its one line."""
    for env in ({}, {"RDTF_FULL_EXIT": "1"}):
        out = subprocess.run([sys.executable, "-m", "rdtf_engine", "check", "--preset", "telegram",
                              str(ROOT / "no-such.gif")],
                             cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                             env={**os.environ, **env})
        assert out.returncode == 2 and out.stderr.startswith("error: no such file"), out.stderr
