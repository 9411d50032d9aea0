"""benchmarks/compile_step.py builds the step inputs the pipeline's text → video step takes (the benchmark itself
needs CUDA): the eager step runs on them and gives the guided ε̂ of the window's shape."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DEFAULT = Path(__file__).resolve().parents[2] / "resources" / "models" / "default"


@pytest.mark.skipif(not (DEFAULT / "config.json").is_file(), reason="no shipped default model")
def test_step_example_is_what_the_pipeline_steps_on(load_script, monkeypatch):
    from rdtf_engine.diffusion.pipeline import StickerPipeline

    monkeypatch.setenv("RDTF_CPU_RUNTIME", "torch")
    bench = load_script("benchmarks/compile_step.py")
    pipe = StickerPipeline.from_pretrained(DEFAULT, "cpu")
    x, t, txt, tmask, conds, g = bench.step_example(pipe, 4)
    assert x.shape == (1, 4, 8, 4, 4) and conds.shape == (2, 4, 8, 4, 4) and t.shape == () and g.tolist() == [4, 5]
    assert txt.shape[:1] == tmask.shape[:1] == (2,)
    with torch.no_grad():
        eps = pipe.step_fns.eager(x, t, txt, tmask, conds, g)
    assert eps.shape == x.shape and torch.isfinite(eps).all()
