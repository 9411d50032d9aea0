"""benchmarks/gpu_profile.py's phase split, run on the CPU with the shipped model: every phase of the sticker is
counted once (nested phases exclusively), the pipeline is left as it was, and the sticker is the unobserved one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DEFAULT = Path(__file__).resolve().parents[2] / "resources" / "models" / "default"


@pytest.fixture
def prof(load_script):
    return load_script("benchmarks/gpu_profile.py")


def test_phase_clock_counts_nested_phases_once(prof, monkeypatch):
    now = iter(range(100))
    monkeypatch.setattr(prof.time, "perf_counter", lambda: next(now) / 1e3)  # one ms per reading
    clock = prof.PhaseClock()
    # outer starts at 0, is paused at 1; inner runs 2 → 3; outer resumes at 4, ends at 5
    with clock.phase("outer"), clock.phase("inner"):
        pass
    assert dict(clock.ms) == {"outer": 2.0, "inner": 1.0}  # outer: 0→1 and 4→5


@pytest.mark.skipif(not (DEFAULT / "config.json").is_file(), reason="no shipped default model")
def test_sticker_phases_add_up_and_leave_the_pipeline_unchanged(prof, monkeypatch):
    from rdtf_engine.core.requests import GenerateRequest
    from rdtf_engine.jobs import api

    monkeypatch.setenv("RDTF_CPU_RUNTIME", "torch")
    req = GenerateRequest(prompt="grinning face bouncing", model=str(DEFAULT), frames=8, size=256, steps=2, seed=1,
                          scheduler="unipc", device="cpu")
    before = api.generate(req).frames
    out = prof.sticker_phases([("unipc", 2)], iters=1, device="cpu")["unipc_2"]
    phases = {k: v for k, v in out.items() if k != "total_ms"}
    assert {"denoise", "denoiser_calls", "scheduler_update", "decode", "encode", "to_rgba", "resample_host",
            "text", "other"} <= set(phases)
    assert phases["denoiser_calls"] > 0 and phases["decode"] > 0
    assert 0.8 * out["total_ms"] <= sum(phases.values()) <= out["total_ms"] * 1.01  # each ms counted once
    assert np.array_equal(api.generate(req).frames, before)  # the wrappers are gone, the sticker the same
