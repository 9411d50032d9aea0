"""The repository explains itself: every relative link in the docs resolves, and nothing cites files that live
outside the repository or numbered work sessions/issues instead of saying what a reader needs."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "resources/models/default/MODEL_CARD.md"]
SKIP_DIRS = {".git", ".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules", "out", "runs",
             "build", "dist", ".cache", ".device", ".whl"}
# Built by parts so that this file does not match itself.
OUTSIDE = re.compile("|".join([r"\b" + name + r"\.md\b" for name in ("PAPER", "DESIGN", "PLATFORMS")]
                              + [re.escape(".." + "/shared")]))
NUMBERED_WORK = re.compile(r"\b[Ss]essions?[ -]\d|\b[Ii]ssues? #?\d")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def repo_text_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files (git), else a walk that skips build and cache folders."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True, timeout=60).stdout
        paths = [ROOT / p for p in out.decode("utf-8", "replace").split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        paths = []
        for folder, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
            paths += [Path(folder) / f for f in files]
    texts = []
    for p in paths:
        if not p.is_file() or p.stat().st_size > 4 * 2**20:
            continue
        with p.open("rb") as fh:
            if b"\0" in fh.read(8192):  # binary: weights, images, fonts
                continue
        texts.append(p)
    return texts


def links(md: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", md.read_text("utf-8"), flags=re.DOTALL)  # code blocks hold no links
    return [m.group(1) for m in LINK.finditer(text)]


@pytest.mark.parametrize("md", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(md):
    assert md.is_file(), f"{md} is missing"
    broken = []
    for target in links(md):
        if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):  # http:, mailto:, same-page anchor
            continue
        path = (md.parent / unquote(target.split("#", 1)[0])).resolve()
        if not path.exists() or ROOT not in path.parents:
            broken.append(target)
    assert not broken, f"{md.relative_to(ROOT)}: links that do not resolve inside the repo: {broken}"


PATH_SPAN = re.compile(r"`((?:rdtf_engine|app|tests|tools|docs|resources|benchmarks|packaging)/[\w./-]*)`")


@pytest.mark.parametrize("md", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_paths_exist(md):
    """`rdtf_engine/…`-style paths in backticks name real files or folders (catches modules that moved)."""
    text = md.read_text("utf-8")
    missing = sorted({m.group(1) for m in PATH_SPAN.finditer(text) if not (ROOT / m.group(1)).exists()})
    assert not missing, f"{md.relative_to(ROOT)}: paths that do not exist: {missing}"


def test_link_checker_sees_broken_links(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("[ok](x.md) ![pic](img/a.png) [web](https://example.org) ```\n[code](nope.md)\n```", "utf-8")
    assert links(md) == ["x.md", "img/a.png", "https://example.org"]


def test_no_file_cites_outside_files_or_numbered_work():
    texts = repo_text_files()
    assert any(p.name == "README.md" for p in texts) and len(texts) > 50
    outside, numbered = [], []
    for p in texts:
        for n, line in enumerate(p.read_text("utf-8", "replace").splitlines(), 1):
            where = f"{p.relative_to(ROOT)}:{n}"
            if OUTSIDE.search(line):
                outside.append(where)
            if NUMBERED_WORK.search(line):
                numbered.append(where)
    assert not outside, f"cite files outside the repository (put what a reader needs in docs/): {outside}"
    assert not numbered, f"cite numbered sessions/issues (say the fact or point to a doc): {numbered}"


def test_patterns_catch_what_they_should():
    assert OUTSIDE.search("see " + "PAPER" + ".md §2") and OUTSIDE.search("../" + "shared/x")
    assert not OUTSIDE.search("docs/platforms.md")
    assert NUMBERED_WORK.search("chosen in sess" + "ion 8") and NUMBERED_WORK.search("Iss" + "ue #6")
    assert not NUMBERED_WORK.search("github.com/WhatsApp/stickers/issues/742")
