"""tools/gpu_parts.sh: the GPU host's carry (.fluent, .gpu, .whl) packed in small parts here, staged one call at a
time on the host (each call a fresh copy of the tree), unpacked once complete and linked into later calls' trees."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "gpu_parts.sh"
pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("bash", "tar", "split", "sha256sum")),
                                reason="needs bash, tar, split and sha256sum")


def _run(cwd: Path, *args: str, host: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RDTF_CARRY_DIR": str(host), "PART_BYTES": "4k"}
    return subprocess.run(["bash", str(SCRIPT), *args], check=False, cwd=cwd, env=env, capture_output=True,
                          text=True)


def _call_tree(tmp_path: Path, name: str, carried: list[Path]) -> Path:
    """A fresh copy of 'the tree' for one call: the script and the carried files alone."""
    tree = tmp_path / name
    (tree / ".carry").mkdir(parents=True)
    for f in carried:
        shutil.copy(f, tree / ".carry" / f.name)
    return tree


def test_parts_staged_call_by_call_unpack_to_the_same_folders_and_link_in(tmp_path):
    here, host = tmp_path / "here", tmp_path / "host"
    for d, n in ((".fluent", 3), (".gpu", 2), (".whl", 1)):
        (here / d).mkdir(parents=True)
        for i in range(n):
            (here / d / f"f{i}.bin").write_bytes(os.urandom(3000 + 1000 * i))
    packed = _run(here, "pack", host=host)
    assert packed.returncode == 0, packed.stderr
    parts = sorted((here / ".carry").glob("part-*"))
    assert len(parts) >= 4 and all(p.stat().st_size <= 4096 for p in parts)
    manifest = here / ".carry" / "manifest"
    for i, part in enumerate(parts):
        out = _run(_call_tree(tmp_path, f"call{i}", [manifest, part]), "stage", host=host)
        assert out.returncode == 0, out.stderr
        assert ("complete" in out.stdout) == (i == len(parts) - 1)
    later = _call_tree(tmp_path, "later", [])
    (later / ".whl").mkdir()  # a folder this call carried itself wins over the staged one
    assert _run(later, "link", host=host).returncode == 0
    assert (later / ".fluent").is_symlink() and not (later / ".whl").is_symlink()
    for d in (".fluent", ".gpu"):
        cmp = filecmp.dircmp(here / d, later / d)
        assert not cmp.left_only and not cmp.right_only and not cmp.diff_files


def test_a_corrupt_part_is_refused_and_must_travel_again(tmp_path):
    here, host = tmp_path / "here", tmp_path / "host"
    (here / ".gpu").mkdir(parents=True)
    (here / ".gpu" / "w.bin").write_bytes(os.urandom(9000))
    assert _run(here, "pack", ".gpu", host=host).returncode == 0
    parts = sorted((here / ".carry").glob("part-*"))
    bad = tmp_path / "bad" / parts[-1].name
    bad.parent.mkdir()
    bad.write_bytes(b"x" * parts[-1].stat().st_size)
    manifest = here / ".carry" / "manifest"
    for i, part in enumerate(parts[:-1]):
        assert _run(_call_tree(tmp_path, f"c{i}", [manifest, part]), "stage", host=host).returncode == 0
    out = _run(_call_tree(tmp_path, "cbad", [manifest, bad]), "stage", host=host)
    assert out.returncode == 3 and f"corrupt, carry again: {bad.name}" in out.stdout and not (host / ".gpu").exists()
    out = _run(_call_tree(tmp_path, "again", [manifest, parts[-1]]), "stage", host=host)  # that part alone again
    assert out.returncode == 0 and "complete" in out.stdout
    assert (host / ".gpu" / "w.bin").read_bytes() == (here / ".gpu" / "w.bin").read_bytes()


def test_the_test_packs_travel_in_parts_too_and_link_in(tmp_path):
    """tools/gpu_pack.sh's packs (.packs/<name>/) staged with the text model and wheels: linked like them."""
    here, host = tmp_path / "here", tmp_path / "host"
    for d in (".gpu", ".packs/sky"):
        (here / d).mkdir(parents=True)
        (here / d / "a.bin").write_bytes(os.urandom(5000))
    assert _run(here, "pack", ".gpu", ".packs", host=host).returncode == 0
    manifest = here / ".carry" / "manifest"
    for i, part in enumerate(sorted((here / ".carry").glob("part-*"))):
        assert _run(_call_tree(tmp_path, f"c{i}", [manifest, part]), "stage", host=host).returncode == 0
    later = _call_tree(tmp_path, "later", [])
    assert _run(later, "link", host=host).returncode == 0
    assert (later / ".packs").is_symlink() and (later / ".packs" / "sky" / "a.bin").read_bytes() == \
        (here / ".packs" / "sky" / "a.bin").read_bytes()
