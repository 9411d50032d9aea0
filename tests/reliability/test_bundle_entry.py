"""The frozen build's entry point: PyInstaller runs its entry *script* as a top-level ``__main__`` with no
parent package, so an entry script with relative imports dies with "attempted relative import with no known
parent package" the moment the GUI starts. The spec's entry script must be importable that way, and the app's
own ``__main__`` must not depend on being run as ``-m app`` either (``rdtf-studio`` console scripts import it)."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _entry_script() -> Path:
    spec = (ROOT / "packaging" / "rdtf_studio.spec").read_text("utf-8")
    parts = re.search(r"Analysis\(.*?\[str\(ROOT((?: / \"[^\"]+\")+)\)\]", spec, re.DOTALL)
    assert parts, "the spec's Analysis has no entry script"
    return ROOT.joinpath(*re.findall(r'"([^"]+)"', parts.group(1)))


def _relative_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    return [f"{path.name}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]


def test_the_bundle_entry_script_has_no_relative_imports():
    entry = _entry_script()
    assert entry.is_file(), entry
    assert not _relative_imports(entry)
    assert not _relative_imports(ROOT / "app" / "__main__.py")


def test_the_entry_script_runs_as_a_top_level_script_like_the_frozen_build():
    # Run it the way the bootloader does: a plain script path, __name__ == "__main__", no package context.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    out = subprocess.run([sys.executable, str(_entry_script()), "--cli", "models"], capture_output=True,
                         text=True, env=env, timeout=300, check=False, cwd=ROOT / "packaging")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "default" in out.stdout and "Traceback" not in out.stderr
    gui = subprocess.run([sys.executable, str(_entry_script()), "--help"], capture_output=True, text=True,
                         env=env, timeout=300, check=False, cwd=ROOT / "packaging")
    assert gui.returncode == 0 and "rdtf-studio" in gui.stdout, gui.stderr[-2000:]
