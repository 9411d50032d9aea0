"""Shared fixtures for the I/O tests: external decoders (skipped with a reason when missing) and clips."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the in-code corpus lives beside the tests

from io_corpus import busy_frames, simple_frames

from rdtf_engine.core.clip import Clip


def need_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: `make sysdeps` installs imagemagick, ffmpeg, webp)")
    return path


def run_tool(*args: str, binary: bool = False):
    out = subprocess.run(list(args), capture_output=True, timeout=120, check=True)
    return out.stdout if binary else out.stdout.decode("utf-8", "replace")


def ffmpeg_rgba(path: Path, width: int, height: int, decoder: str | None = None) -> np.ndarray:
    """Frames as decoded by ffmpeg (one per stored frame, no frame-rate conversion)."""
    ff = need_tool("ffmpeg")
    args = [ff, "-v", "error"] + (["-c:v", decoder] if decoder else []) + ["-i", str(path), "-fps_mode",
                                                                            "passthrough", "-f", "rawvideo",
                                                                            "-pix_fmt", "rgba", "-"]
    raw = run_tool(*args, binary=True)
    return np.frombuffer(raw, np.uint8).reshape(-1, height, width, 4)


@pytest.fixture(scope="session")
def busy_cache():
    """Busy 512 px clips by frame count, built once per session (they are the expensive inputs)."""
    cache: dict[tuple[int, int], Clip] = {}

    def get(n: int, size: int = 512) -> Clip:
        if (n, size) not in cache:
            cache[(n, size)] = Clip(busy_frames(n, size), [100] * n, "busy test clip")
        return cache[(n, size)]

    return get


@pytest.fixture
def small_clip() -> Clip:
    return Clip(simple_frames(6), [40, 80, 120, 60, 100, 200], "moving square")
