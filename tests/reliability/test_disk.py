"""A full disk: every writer fails with a typed StorageError, the previous output stays whole, no temp debris.

Two ways to fill the disk: a fault-injected writer (ENOSPC after N bytes / N files, always available) and a
real tiny tmpfs (needs root and ``mount``; skipped cleanly where that is not permitted).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid

import numpy as np
import pytest
import torch
from PIL import Image

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import StorageError
from rdtf_engine.platforms.export import write_clip


def _clip(n: int, seed: int, size: int = 32, noise: bool = False) -> Clip:
    rng = np.random.default_rng(seed)
    if noise:  # incompressible: fills a small disk fast
        frames = rng.integers(0, 256, (n, size, size, 4), dtype=np.uint8)
    else:
        frames = np.zeros((n, size, size, 4), np.uint8)
        frames[..., 3] = 255
        frames[..., 0] = (np.arange(n) * 20 + seed)[:, None, None]
    return Clip(frames, [100] * n, "test")


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def enospc_after(monkeypatch):
    """``enospc_after(n)``: from now on the atomic writer's files take n bytes in total, then ENOSPC."""

    def arm(budget: int) -> None:
        left = [budget]
        real_fdopen = os.fdopen

        class Full:
            def __init__(self, fh):
                self.fh = fh

            def write(self, data):
                left[0] -= len(data)
                if left[0] < 0:
                    raise OSError(errno.ENOSPC, "No space left on device")
                return self.fh.write(data)

            def __getattr__(self, name):
                return getattr(self.fh, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.fh.close()

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: Full(real_fdopen(*a, **k)))

    return arm


def test_frames_folder_on_a_full_disk_keeps_the_old_frames_whole(tmp_path, enospc_after):
    out = tmp_path / "frames"
    write_clip(_clip(6, 0), out)
    before = _snapshot(out)
    enospc_after(300)  # the first new frame fits, the second does not
    with pytest.raises(StorageError, match="disk is full"):
        write_clip(_clip(4, 99), out)
    assert _snapshot(out) == before  # never old and new frames mixed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # no temp sibling left


def test_frames_folder_never_replaces_a_folder_of_other_files(tmp_path):
    out = tmp_path / "pictures"
    out.mkdir()
    (out / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(StorageError, match="holds other files"):
        write_clip(_clip(2, 0), out)
    assert (out / "holiday.jpg").read_bytes() == b"precious"


def test_frames_folder_replaces_an_earlier_frames_folder(tmp_path):
    out = tmp_path / "frames"
    write_clip(_clip(6, 0), out)
    write_clip(_clip(3, 5), out)
    assert sorted(p.name for p in out.iterdir()) == ["000.png", "001.png", "002.png", "durations.json"]


def _tiny_training_state():
    model = torch.nn.Linear(16, 16)
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 16)).sum().backward()
    opt.step()
    ema = {n: p.detach().clone() for n, p in model.named_parameters()}
    return model, opt, ema


def test_checkpoint_on_a_full_disk_is_a_storage_error_and_keeps_the_last_one(tmp_path, monkeypatch):
    import safetensors
    import safetensors.torch

    from rdtf_engine.core.run_file import latest_checkpoint
    from rdtf_engine.training.checkpoint import load_checkpoint, save_checkpoint

    model, opt, ema = _tiny_training_state()
    first = save_checkpoint(tmp_path, 1, model, ema, opt, {"note": "one"})
    real = safetensors.torch.save_file
    calls = []

    def full(tensors, path, *a, **k):
        calls.append(path)
        if len(calls) > 1:
            raise safetensors.SafetensorError("Error while serializing: I/O error: No space left on device "
                                              "(os error 28)")
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    with pytest.raises(StorageError, match="disk is full"):
        save_checkpoint(tmp_path, 2, model, ema, opt, {"note": "two"})
    ck_root = tmp_path / "checkpoints"
    assert sorted(p.name for p in ck_root.iterdir()) == ["latest", first.name]  # no .tmp-* folder left
    assert latest_checkpoint(tmp_path) == first
    assert load_checkpoint(first)[3]["note"] == "one"


@pytest.mark.parametrize("failure", [OSError(errno.ENOSPC, "No space left on device"),
                                     PermissionError(errno.EACCES, "Permission denied")])
def test_a_raw_os_error_inside_a_run_becomes_a_storage_error(tmp_path, failure):
    from rdtf_engine.training.run_folder import run_folder

    with pytest.raises(StorageError, match="disk is full|permission denied"), run_folder(tmp_path / "run"):
        raise failure
    assert not (tmp_path / "run").exists()  # a failed start leaves nothing behind


def _pack(tmp_path, n=2):
    pack = tmp_path / "pack"
    pack.mkdir()
    for i in range(n):
        frames = [Image.new("RGBA", (24, 24), (40 * i + 20 * j, 10, 10, 255)) for j in range(3)]
        frames[0].save(pack / f"s{i}.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return pack


def test_import_on_a_full_disk_is_a_storage_error_and_leaves_no_dataset(tmp_path, monkeypatch):
    from rdtf_engine.datasets.dataset import import_pack

    pack = _pack(tmp_path)
    real_save = Image.Image.save
    count = [0]

    def full(self, fp, *a, **k):
        count[0] += 1
        if count[0] > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *a, **k)

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(StorageError, match="disk is full"):
        import_pack(pack, tmp_path / "ds", size=32)
    assert not (tmp_path / "ds").exists()


def test_import_on_a_full_disk_keeps_the_previous_dataset(tmp_path, monkeypatch):
    from rdtf_engine.datasets.dataset import import_pack

    pack = _pack(tmp_path)
    import_pack(pack, tmp_path / "ds", size=32)
    manifest = (tmp_path / "ds" / "manifest.json").read_text()

    def full(self, fp, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", full)
    with pytest.raises(StorageError):
        import_pack(pack, tmp_path / "ds", size=32)
    assert (tmp_path / "ds" / "manifest.json").read_text() == manifest
    clips_dir = json.loads(manifest)["clips_dir"]
    assert sorted(p.name for p in (tmp_path / "ds").iterdir()) == sorted([clips_dir, "captions.csv",
                                                                         "manifest.json"])


# ---- a real, tiny file system --------------------------------------------------------------------------------
@pytest.fixture
def tiny_disk(tmp_path):
    """A 512 KiB tmpfs; skipped where mounting is not permitted (not root, no mount, a container without it)."""
    if os.name != "posix" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    mnt = tmp_path / f"tiny-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mnt)], capture_output=True,
                         check=False)
    if res.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {res.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def test_tmpfs_frames_folder(tiny_disk):
    out = tiny_disk / "frames"
    write_clip(_clip(2, 0, size=128, noise=True), out)  # ~130 KB: fits
    before = _snapshot(out)
    with pytest.raises(StorageError, match="disk is full"):
        write_clip(_clip(24, 1, size=128, noise=True), out)  # ~1.6 MB: does not
    assert _snapshot(out) == before
    assert sorted(p.name for p in tiny_disk.iterdir()) == ["frames"]


def test_tmpfs_checkpoint(tiny_disk):
    from rdtf_engine.training.checkpoint import save_checkpoint

    model = torch.nn.Linear(256, 256)  # 257 K params: model + EMA + two Adam moments ≈ 1 MB
    opt = torch.optim.AdamW(model.parameters())
    model(torch.ones(1, 256)).sum().backward()
    opt.step()
    ema = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(StorageError, match="disk is full"):
        save_checkpoint(tiny_disk, 1, model, ema, opt, {})
    assert [p.name for p in (tiny_disk / "checkpoints").iterdir()] == []
