"""Generating uses no network: the runtimes the engine imports contact no server and write nothing outside its
folders when imported as the engine imports them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rdtf_engine.diffusion import cpu_choice

ROOT = Path(__file__).resolve().parents[2]

# Runs in a child (a fresh interpreter: OpenVINO's telemetry acts at its first import) with every name lookup and
# connection refused and written down — in a file, because the telemetry sends from a forked process of its own;
# prints what was tried and the threads left running.
PROBE = """
import os, socket, sys, threading, time
LOG = os.path.join(os.environ["HOME"], "tried.txt")
def refuse(*a, **k):
    with open(LOG, "a") as f:
        f.write(str(a[0])[:60] + "\\n")
    raise OSError("no network in this test")
socket.getaddrinfo = refuse
socket.create_connection = refuse
from rdtf_engine.diffusion.cpu_choice import import_openvino
ov = {importer}
ov.Core().available_devices
for _ in range({wait_tenths}):  # a telemetry sender works on a thread, seconds after the import
    if os.path.exists(LOG):
        break
    time.sleep(0.1)
tried = open(LOG).read().split() if os.path.exists(LOG) else []
print(tried, sorted(t.name for t in threading.enumerate() if not t.daemon))
"""


def _probe(importer: str, home: Path, wait_s: float) -> str:
    env = {**os.environ, "HOME": str(home), "USERPROFILE": str(home), "LOCALAPPDATA": str(home)}
    env.pop("CI", None)  # OpenVINO's telemetry stays quiet on a CI machine: the user's machine is not one
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(PROBE.format(importer=importer, wait_tenths=int(wait_s * 10)))], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, check=False, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(not cpu_choice.openvino_installed(), reason="openvino not installed")
def test_openvino_is_imported_without_its_telemetry(tmp_path):
    """Plain ``import openvino`` sends a usage event to Google Analytics and writes ``~/intel``; the engine's import
    does neither (the plain import is probed too, so this test notices if OpenVINO stops doing it)."""
    plain, engine = tmp_path / "plain", tmp_path / "engine"
    plain.mkdir(), engine.mkdir()
    assert _probe("import_openvino()", engine, 4) == "[] ['MainThread']"
    assert not (engine / "intel").exists()
    seen = _probe("__import__('openvino')", plain, 15)
    if "google-analytics" not in seen:
        pytest.skip(f"this OpenVINO sends no telemetry at import ({seen}): nothing left to guard against")
