"""``rdtf data fetch fluent``: download Microsoft's animated Fluent Emoji (MIT) from npm, unpack, verify.

The animated set is published as four npm packages, ``@lobehub/fluent-emoji-anim-1`` … ``-4``: animated WebP at
256 × 256 named by code-point sequence (``package/assets/1f44b-1f3fd.webp``). ``npm pack`` downloads each
tarball (npm checks the registry's integrity hash); we check it again against the hashes pinned below for the
versions we know, unpack only ``package/assets/<code points>.webp`` members (no links, no traversal, size caps),
decode every file through our own safe decoders (frame count and canvas checked), and write a manifest: sha256
per file, frame count, canvas, loop length, package versions and integrity. The folder is built beside the
target and swapped in only when complete, so an interrupted fetch leaves the previous copy intact.

Nothing in generation needs these files; only training and evaluation sources read them.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rdtf_engine.core.atomic import make_dir, remove_tree_quietly, replace_dir, write_text_atomic
from rdtf_engine.core.errors import DependencyError, InputError, LimitError, RdtfError, UnsafeInputError
from rdtf_engine.core.paths import data_cache_dir
from rdtf_engine.data.fluent_split import is_code_point_name

PACKAGES = tuple(f"@lobehub/fluent-emoji-anim-{i}" for i in range(1, 5))
# sha512 "integrity" of the versions checked when this source was added; another version is accepted on npm's
# own check (and recorded in the manifest), a known version whose tarball differs is refused.
KNOWN_INTEGRITY = {
    ("@lobehub/fluent-emoji-anim-1", "1.0.0"):
        "sha512-/4m31vAuZEQ4aUJ5pxcOU5PVkuJya55GRxUZL7+zgLlxZXpzzE8jPqpDyhZICE3n47nS/Y9M5/vLdizi8201QA==",
    ("@lobehub/fluent-emoji-anim-2", "1.0.0"):
        "sha512-S6yzf0RZXrQbXdxCWuHA9BAoLdBRk2flX+ne4TPGEH/qApwisCAKHoAAGjKSlTY3OVeZ9b7t/NEbmpjawnQYJA==",
    ("@lobehub/fluent-emoji-anim-3", "1.0.0"):
        "sha512-UzRSUDMjdfdt9vER5bhjHkPqgc3EEgfGtYs6ndvizOTvQOxYQ57ow2RTkWSDZxwW30X4EYBi2eWTS7CXDDoFsg==",
    ("@lobehub/fluent-emoji-anim-4", "1.0.0"):
        "sha512-IIkl5ztSd1HrzvIDt/uGsFoC1WODXRdYq5uROrnkyqi9DbToEcJ1nlY86PnoUXeFS9nBCnHfiYk3ouSEGThFmA==",
}
MAX_TARBALL_BYTES = 512 * 2**20  # each real one is ≈ 160–200 MB
MAX_MEMBER_BYTES = 8 * 2**20  # one animated WebP (the largest real one is < 1 MB)
MAX_UNPACKED_BYTES = 1536 * 2**20  # per package
MAX_MEMBERS = 5000  # per package (≈ 700–1000 real)
MAX_FRAMES = 500  # a sane sticker loop; the real ones have 1–≈ 150
SIDES = range(64, 1025)  # sane canvas sides (the real ones are 256)
NPM_TIMEOUT_S = 1800
INSTALL_NPM = ("npm (Node.js's package manager) is needed to download Fluent Emoji: on Debian/Ubuntu "
               "`sudo apt-get install npm` (or `make fluent-data`), or see https://nodejs.org; "
               "or download the four .tgz files elsewhere and pass their folder with --from")
MANIFEST = "manifest.json"
ASSETS = "assets"


def fluent_dir() -> Path:
    """Where ``rdtf data fetch fluent`` puts the verified files (``assets/``) and ``manifest.json``."""
    return data_cache_dir("fluent")


def sri_sha512(data: bytes) -> str:
    """npm's Subresource-Integrity string of a tarball ("sha512-<base64>")."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


# ---------------------------------------------------------------------------------------------- download
def npm_pack(package: str, dest: Path) -> dict[str, Any]:
    """``npm pack <package>`` into ``dest`` → npm's JSON report (name, version, filename, integrity…)."""
    npm = shutil.which("npm")
    if npm is None:
        raise DependencyError(INSTALL_NPM)
    cmd = [npm, "pack", package, "--json", "--silent", "--pack-destination", str(dest)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False,
                              cwd=dest)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DependencyError(f"`npm pack {package}` failed: {exc}") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise DependencyError(f"`npm pack {package}` failed (exit {done.returncode}): {' / '.join(tail)}")
    try:
        report = dict(json.loads(done.stdout)[0])  # npm ≥ 7: [{name, version, filename, integrity, …}]
    except (ValueError, LookupError, TypeError):
        raise DependencyError(f"`npm pack {package}` printed no JSON report; npm 7 or newer is needed") from None
    tarballs = sorted(dest.glob("*.tgz"))  # the caller's folder holds this package's tarball alone
    if len(tarballs) != 1:
        raise DependencyError(f"`npm pack {package}` wrote {len(tarballs)} tarballs, expected one")
    report["path"] = str(tarballs[0])
    return report


def local_tarballs(folder: Path) -> dict[str, Path]:
    """{package: tarball} from a folder of already downloaded ``lobehub-fluent-emoji-anim-N-<ver>.tgz``."""
    found: dict[str, Path] = {}
    for pkg in PACKAGES:
        stem = pkg.lstrip("@").replace("/", "-") + "-"
        hits = sorted(p for p in folder.glob(stem + "*.tgz") if p.name[len(stem):][:1].isdigit())
        if not hits:
            raise InputError(f"no {stem}<version>.tgz in the --from folder")
        found[pkg] = hits[-1]
    return found


# ---------------------------------------------------------------------------------------------- unpack
def asset_members(tgz: Path) -> Iterator[tuple[str, bytes]]:
    """(code-point stem, bytes) of every ``package/assets/<stem>.webp`` in an npm tarball, read in memory.

    Refuses links, device files, absolute or ``..`` paths, oversized members and too many members; other
    regular files (package.json, README) are skipped. Nothing is extracted by name, so no path can escape.
    """
    total = 0
    try:
        with tarfile.open(tgz, mode="r:gz") as tar:
            for n, m in enumerate(tar):
                if n >= MAX_MEMBERS:
                    raise LimitError(f"{tgz.name} has more than {MAX_MEMBERS} entries")
                parts = m.name.replace("\\", "/").split("/")
                if m.name.startswith("/") or ".." in parts:
                    raise UnsafeInputError(f"{tgz.name}: entry {m.name!r} points outside the package")
                if m.issym() or m.islnk() or not (m.isfile() or m.isdir()):
                    raise UnsafeInputError(f"{tgz.name}: entry {m.name!r} is a link or a special file")
                if not m.isfile() or len(parts) != 3 or parts[:2] != ["package", ASSETS]:
                    continue
                stem, ext = os.path.splitext(parts[2])
                stem = stem.lower().replace("_", "-")  # tag sequences are written "1f3f4-e0067_e0062_…"
                if ext.lower() != ".webp" or not is_code_point_name(stem):  # keeps every written name harmless
                    continue
                if m.size > MAX_MEMBER_BYTES:
                    raise LimitError(f"{tgz.name}: {parts[2]} is {m.size:,} bytes (cap {MAX_MEMBER_BYTES:,})")
                total += m.size
                if total > MAX_UNPACKED_BYTES:
                    raise LimitError(f"{tgz.name} unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MiB")
                fh = tar.extractfile(m)
                data = fh.read(MAX_MEMBER_BYTES + 1) if fh else b""
                if len(data) != m.size:
                    raise UnsafeInputError(f"{tgz.name}: {parts[2]} is truncated")
                yield stem, data
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise UnsafeInputError(f"{tgz.name} is not a readable npm tarball: {exc}") from None


# ---------------------------------------------------------------------------------------------- verify
def verify_asset(data: bytes, name: str) -> dict[str, Any]:
    """Decode one file through our safe decoders → {sha256, bytes, frames, width, height, loop_ms, frame_ms}; raises
    an RdtfError when it does not decode or its frame count / canvas is not sane."""
    from rdtf_engine.formats.loader import decode_bytes  # lazily: decoders only load for a fetch

    clip = decode_bytes(data, name)
    f, h, w = clip.frames.shape[:3]
    if clip.labels.get("format") != "webp":
        raise InputError(f"{name} is {clip.labels.get('format')}, not WebP")
    if f > MAX_FRAMES or h not in SIDES or w not in SIDES:
        raise LimitError(f"{name}: {f} frames of {w}×{h} is outside the sane range")
    durs = [int(d) for d in clip.durations_ms]
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "frames": int(f), "width": int(w),
            "height": int(h), "loop_ms": sum(durs),
            "frame_ms": durs[0] if len(set(durs)) == 1 else durs}  # one number when every frame is as long


def _verify_job(job: tuple[str, str]) -> tuple[str, dict[str, Any] | str]:
    stem, path = job
    try:
        return stem, verify_asset(Path(path).read_bytes(), stem + ".webp")
    except RdtfError as exc:
        return stem, str(exc)


def _verify_all(folder: Path, stems: list[str], workers: int) -> Iterator[tuple[str, dict[str, Any] | str]]:
    jobs = [(s, str(folder / f"{s}.webp")) for s in stems]
    if workers <= 1 or len(jobs) < 8:
        yield from map(_verify_job, jobs)
        return
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:  # spawn: no inherited threads or locks
        yield from pool.imap(_verify_job, jobs, chunksize=8)


# ---------------------------------------------------------------------------------------------- fetch
def fetch_fluent(
    dest: Path | None = None,
    from_dir: Path | None = None,
    workers: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Download (or take from ``from_dir``), unpack and verify the four packages into ``dest`` (default
    :func:`fluent_dir`) → the manifest (also written as ``dest/manifest.json``)."""
    dest = Path(dest) if dest is not None else fluent_dir()
    make_dir(dest.parent)
    workers = workers or max(1, min(os.cpu_count() or 1, 16))
    say = progress or (lambda *_: None)
    t0 = time.perf_counter()
    build = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    os.chmod(build, 0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    try:
        assets = make_dir(build / ASSETS)
        packages, owner = [], {}
        for k, pkg in enumerate(PACKAGES):
            say(f"downloading {pkg}", k, len(PACKAGES))
            info = _get_tarball(pkg, from_dir, build)
            stems = []
            for stem, data in asset_members(Path(info.pop("path"))):
                if stem in owner:
                    raise UnsafeInputError(f"{stem}.webp is in both {owner[stem]} and {pkg}")
                owner[stem] = pkg
                (assets / f"{stem}.webp").write_bytes(data)
                stems.append(stem)
            info["files"] = len(stems)
            packages.append(info)
            for leftover in build.glob("*.tgz"):
                leftover.unlink()
        t1 = time.perf_counter()
        files, rejected = {}, {}
        stems = sorted(owner)
        for n, (stem, result) in enumerate(_verify_all(assets, stems, workers)):
            if isinstance(result, str):
                rejected[stem] = result
                (assets / f"{stem}.webp").unlink()
            else:
                files[stem] = {"package": owner[stem], **result}
            if n % 100 == 0:
                say("verifying", n, len(stems))
        manifest = _manifest(packages, files, rejected, {"download_s": round(t1 - t0, 1),
                                                         "verify_s": round(time.perf_counter() - t1, 1)})
        write_text_atomic(build / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        replace_dir(build, dest)
    finally:
        remove_tree_quietly(build)
    return manifest


def _get_tarball(pkg: str, from_dir: Path | None, build: Path) -> dict[str, Any]:
    """{name, version, integrity, path} of one package's tarball, its integrity checked."""
    if from_dir is not None:
        path = local_tarballs(Path(from_dir))[pkg]
        name, version = _package_json(path)
        if name != pkg:
            raise UnsafeInputError(f"{path.name} holds {name!r}, not {pkg}")
        claimed = None
    else:
        report = npm_pack(pkg, build)
        path, version, claimed = Path(report["path"]), str(report.get("version", "")), report.get("integrity")
    if path.stat().st_size > MAX_TARBALL_BYTES:
        raise LimitError(f"{path.name} is over {MAX_TARBALL_BYTES // 2**20} MiB")
    integrity = sri_sha512(path.read_bytes())
    pinned = KNOWN_INTEGRITY.get((pkg, version))
    if (claimed and claimed != integrity) or (pinned and pinned != integrity):
        raise UnsafeInputError(f"{pkg}@{version}: the tarball's sha512 does not match the published integrity")
    if from_dir is not None and not pinned:
        raise UnsafeInputError(f"{path.name}: version {version} has no pinned integrity to check a local "
                               "tarball against; fetch it with npm instead")
    return {"name": pkg, "version": version, "integrity": integrity, "path": str(path),
            "integrity_checked": "pinned" if pinned else "npm"}


def _package_json(tgz: Path) -> tuple[str, str]:
    try:
        with tarfile.open(tgz, mode="r:gz") as tar:
            m = tar.getmember("package/package.json")
            fh = tar.extractfile(m) if m.isfile() and m.size < 65536 else None
            meta = json.load(io.BytesIO(fh.read())) if fh else {}
    except (KeyError, ValueError, tarfile.TarError, OSError, EOFError) as exc:
        raise UnsafeInputError(f"{tgz.name} is not an npm package tarball: {exc}") from None
    return str(meta.get("name", "")), str(meta.get("version", ""))


def _manifest(packages: list[dict], files: dict[str, dict], rejected: dict[str, str],
              timing: dict[str, float]) -> dict[str, Any]:
    frames = [f["frames"] for f in files.values()]
    return {
        "dataset": "fluent",
        "title": "Fluent Emoji, animated (Microsoft), via npm @lobehub/fluent-emoji-anim-1…4",
        "license": "MIT",
        "attribution": "Fluent Emoji © Microsoft Corporation, MIT licence",
        "packages": packages,
        "files": files,
        "rejected": rejected,
        "counts": {"files": len(files), "animated": sum(n > 1 for n in frames),
                   "still": sum(n == 1 for n in frames), "rejected": len(rejected),
                   "bytes": sum(f["bytes"] for f in files.values())},
        "timing": timing,
        "format": 1,
    }


def read_manifest(folder: Path | None = None) -> dict[str, Any] | None:
    """The manifest of a completed fetch in ``folder`` (default :func:`fluent_dir`), or None."""
    path = (Path(folder) if folder is not None else fluent_dir()) / MANIFEST
    try:
        meta = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and meta.get("dataset") == "fluent" else None
