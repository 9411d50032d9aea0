"""Smoke test of a frozen build: the bundled worker starts, answers ping/device/models, and the GUI starts.

    python packaging/smoke_test.py dist/rdtf-studio

The worker is the part most likely to break when freezing (lazy engine imports, package data), so it is
exercised through the same JSON-lines protocol the app uses. The GUI is started offscreen and must stay up
for a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path


def exe(folder: Path, name: str) -> Path:
    path = folder / (name + (".exe" if os.name == "nt" else ""))
    if not path.is_file():
        sys.exit(f"missing {path}")
    return path


def check_worker(console: Path) -> None:
    proc = subprocess.Popen([str(console), "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(proc.stdout.readline())
    assert ready["kind"] == "ready", ready
    for job_id, op in (("p", "ping"), ("d", "device"), ("m", "models")):
        proc.stdin.write(json.dumps({"id": job_id, "op": op}) + "\n")
        proc.stdin.flush()
        while True:  # one request at a time: closing stdin early would cancel the queued ones
            ev = json.loads(proc.stdout.readline())
            if ev.get("id") == job_id and ev["kind"] in ("finished", "failed"):
                break
        assert ev["kind"] == "finished", ev
        print(f"worker {op}: ok", json.dumps(ev["result"])[:200])
    proc.stdin.close()
    assert proc.wait(60) == 0


def check_gui(gui: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "RDTF_STUDIO_HOME": str(Path.cwd() / "build" / "smoke")}
    proc = subprocess.Popen([str(gui)], env=env)
    time.sleep(8)
    alive = proc.poll() is None
    proc.terminate()
    proc.wait(30)
    assert alive, f"the GUI exited early with code {proc.returncode}"
    print("gui ok")


def main() -> int:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "dist/rdtf-studio")
    check_worker(exe(folder, "rdtf-studio-console"))
    check_gui(exe(folder, "rdtf-studio"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
