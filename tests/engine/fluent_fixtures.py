"""Tiny fake Fluent Emoji packages: 64 px animated WebPs named like the real files, in npm-style tarballs, and a
fake ``npm`` that "downloads" them (no network)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

# stem → frames. Reserved faces and their variants (U+1F645 + ZWJ + ♀; people holding hands contains U+1F91D),
# a skin-tone family, a pack-evaluation animal, a held-out base (U+1F407 hashes into the emoji holdout), a still.
STEMS = {
    "1f44b": 24, "1f44b-1f3fd": 24, "1f469-200d-1f4bb": 12, "1f3c3-200d-2640-fe0f": 20, "2764-fe0f": 10,
    "1f600": 16, "1f645-200d-2640-fe0f": 16, "1f9d1-200d-1f91d-200d-1f9d1": 12, "1f970": 12,
    "1f980": 12, "1f407": 18, "1f407-200d-2b1b": 18, "1f3c1": 1,
}
RESERVED = {"1f600", "1f645-200d-2640-fe0f", "1f9d1-200d-1f91d-200d-1f9d1", "1f970"}


def webp(frames: int, side: int = 64, seed: int = 0) -> bytes:
    """An animated WebP: a disc moving across a transparent canvas, 40 ms per frame."""
    rng = np.random.default_rng(seed)
    colour = rng.integers(40, 255, 3)
    images = []
    yy, xx = np.mgrid[:side, :side]
    for i in range(frames):
        a = np.zeros((side, side, 4), np.uint8)
        cx = side * (0.3 + 0.4 * i / max(frames - 1, 1))
        disc = (xx - cx) ** 2 + (yy - side / 2) ** 2 < (side / 4) ** 2
        a[disc, :3], a[disc, 3] = colour, 255
        images.append(Image.fromarray(a, "RGBA"))
    buf = io.BytesIO()
    images[0].save(buf, "WEBP", save_all=frames > 1, append_images=images[1:], duration=40, loop=0, lossless=True)
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_tarballs(folder: Path, version: str = "9.9.9") -> dict[str, Path]:
    """Four package tarballs sharing ``STEMS`` out between them → {package: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    stems = sorted(STEMS)
    for k in range(1, 5):
        pkg = f"@lobehub/fluent-emoji-anim-{k}"
        path = folder / f"lobehub-fluent-emoji-anim-{k}-{version}.tgz"
        with tarfile.open(path, "w:gz") as tar:
            _add(tar, "package/package.json", json.dumps({"name": pkg, "version": version}).encode())
            _add(tar, "package/README.md", b"readme")
            _add(tar, "package/assets/.gitkeep", b"")
            for n, stem in enumerate(stems[k - 1:: 4]):
                _add(tar, f"package/assets/{stem}.webp", webp(STEMS[stem], seed=n + 10 * k))
        out[pkg] = path
    return out


def integrity(path: Path) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


FAKE_NPM = """#!{python}
import json, os, shutil, sys
args = sys.argv[1:]
assert args[0] == "pack", args
pkg, dest = args[1], args[args.index("--pack-destination") + 1]
src = json.load(open(os.environ["FAKE_NPM_INDEX"]))[pkg]
name = os.path.basename(src["path"])
shutil.copy(src["path"], os.path.join(dest, name))
print(json.dumps([{{"name": pkg, "version": src["version"], "filename": name, "integrity": src["integrity"]}}]))
"""


def install_fake_npm(tmp: Path, tarballs: dict[str, Path], monkeypatch, version: str = "9.9.9",
                     bad_integrity: bool = False) -> None:
    """Put a fake ``npm`` first on PATH that copies ``tarballs`` as ``npm pack`` would."""
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    npm = bindir / "npm"
    npm.write_text(FAKE_NPM.format(python=sys.executable))
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)
    index = {pkg: {"path": str(p), "version": version,
                   "integrity": "sha512-AAAA" if bad_integrity else integrity(p)} for pkg, p in tarballs.items()}
    (tmp / "npm-index.json").write_text(json.dumps(index))
    monkeypatch.setenv("FAKE_NPM_INDEX", str(tmp / "npm-index.json"))
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
