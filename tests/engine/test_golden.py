"""Golden pixels: ``rdtf generate`` with the shipped default model and a fixed seed draws exactly these frames.

The hashes were recorded before the request/pipeline refactor; the embedded recipe may change, the pixels may
not. The hash covers the decoded RGBA frames only (sha256 over their bytes in order), never the file bytes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "resources" / "models" / "default"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (DEFAULT / "config.json").is_file(), reason="no shipped default model")]


def frames_hash(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    n = 0
    with Image.open(path) as im:
        for frame in ImageSequence.Iterator(im):
            h.update(np.asarray(frame.convert("RGBA")).tobytes())
            n += 1
    return n, h.hexdigest()


def rdtf(*args: str) -> None:
    # The hashes were recorded with PyTorch's CPU kernels and DPM-Solver++: pin both (ONNX Runtime rounds
    # differently in the last bits, which can move a pixel by one level).
    env = {**os.environ, "RDTF_CPU_RUNTIME": "torch"}
    proc = subprocess.run([sys.executable, "-m", "rdtf_engine", "generate", *args, "--device", "cpu",
                           "--sampler", "dpm"], capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr


def test_golden_text_to_sticker(tmp_path):
    out = tmp_path / "x.png"
    rdtf("--prompt", "grinning face bouncing", "--frames", "8", "--steps", "4", "--seed", "7", "--out", str(out))
    assert frames_hash(out) == (8, "c5c3c996fe70e7bccec66ac8eb5a3b72139d21e40a53c46215ac595751bd07fb")


def test_golden_image_to_sticker(tmp_path):
    out = tmp_path / "x.gif"
    rdtf("--prompt", "a red heart beating", "--init", str(DEFAULT / "samples.png"), "--frames", "4",
         "--steps", "3", "--seed", "3", "--out", str(out))
    assert frames_hash(out) == (4, "e535b332bf80ee07f21d668cea83ef953ca41b469fad327ebb9b8682ad42e33a")
