"""benchmarks/cpu.py: the warm request path it times is the engine's real one (request → written GIF), and the
ratios are taken against the first runtime listed."""

from __future__ import annotations

import pytest
from PIL import Image


@pytest.fixture
def bench(load_script):
    return load_script("benchmarks/cpu.py")


def test_warm_request_writes_a_real_sticker_and_times_the_second(monkeypatch, bench):
    written = []
    from rdtf_engine.jobs import api

    real = api.generate

    def spy(req, *a, **k):  # keep what the benchmark wrote: the GIF must be a 256 px, 8-frame sticker
        res = real(req, *a, **k)
        with Image.open(req.out) as im:
            written.append((im.size, im.n_frames))
        return res

    monkeypatch.setattr(api, "generate", spy)
    out = bench._warm_one(steps=1, sampler="dpm", iters=1)
    assert written == [((256, 256), 8)] * 2  # the loading request, then the timed one
    assert out["first_s"] > 0 and out["sticker_s"] > 0 and out["peak_rss_mb"] > 100


def test_ratios_are_against_the_first_runtime(bench):
    results = {"torch": {"native": {"sticker_s": 4.0}}, "onnx": {"native": {"sticker_s": 3.0}, "load_s": 1.0}}
    assert bench._ratios(results) == "torch"
    assert results["onnx"]["native"]["vs_baseline"] == 0.75 and results["torch"]["native"]["vs_baseline"] == 1.0


def test_cold_command_is_timed_after_a_first_launch_with_bytecode_allowed(monkeypatch, bench):
    import subprocess
    import sys

    seen = []
    real_popen = subprocess.Popen

    def popen(cmd, **kw):  # the real child would be a whole rdtf generate: a trivial process stands in for it
        seen.append((cmd, kw["env"]))
        return real_popen([sys.executable, "-c", "pass"], stdout=kw["stdout"], stderr=kw["stderr"])

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    monkeypatch.setattr(bench.subprocess, "Popen", popen)
    out = bench.cold_generate("openvino", steps=10, sampler="unipc", threads=2, runs=2)
    assert len(seen) == 3 and len(out["walls_s"]) == 2  # one untimed launch, then the timed ones
    assert out["wall_s"] in out["walls_s"] and out["peak_rss_mb"] > 0
    cmd, env = seen[0]
    assert cmd[1:4] == ["-m", "rdtf_engine", "generate"] and "PYTHONDONTWRITEBYTECODE" not in env
    assert env["RDTF_CPU_RUNTIME"] == "openvino" and env["RDTF_CPU_PRECISION"] == "bf16"


def test_the_apps_first_sticker_is_timed_after_the_prepare_job(monkeypatch, bench):
    """``prepared_request_256px``: the prepare job the app's worker runs when the window opens, then the first
    request, both timed."""
    from rdtf_engine.jobs import api

    monkeypatch.setattr(api, "_PIPES", {})
    out = bench._warm_one(steps=1, sampler="dpm", iters=1, prepared=True)
    assert out["prepare_s"] > 0 and out["first_s"] > 0 and out["sticker_s"] > 0
