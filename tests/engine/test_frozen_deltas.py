"""SizeDeltas.freeze (model/size_deltas.py): a model loaded to sample builds each merged weight once; it draws
exactly what the unfrozen model draws, whichever deltas act on whichever grid, and a pipeline loaded from a folder
is frozen while the training preview's is not."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from rdtf_engine.model.size_deltas import LowRankDelta, freeze_deltas, set_few_step, set_style
from tests.engine.delta_fixtures import delta_eps, delta_pair

DRAFT, NATIVE = 4, 8  # latent sides of the fixtures' 32 px draft and 64 px native size
DEFAULT = Path(__file__).resolve().parents[2] / "resources" / "models" / "default"


@pytest.fixture
def models():
    both, _ = delta_pair(style_delta_rank=4, few_step_rank=4)
    frozen = copy.deepcopy(both)
    assert freeze_deltas(frozen) == 3
    return both, frozen


@pytest.mark.parametrize(("style", "few"), [(False, False), (True, False), (False, True), (True, True)])
def test_frozen_model_draws_what_the_unfrozen_draws(models, style, few):
    both, frozen = models
    for m in (both, frozen):
        set_style(m, style)
        set_few_step(m, few)
    for side in (DRAFT, NATIVE, DRAFT, NATIVE):  # twice over: the second pass reads what the first one kept
        assert torch.equal(delta_eps(frozen, side), delta_eps(both, side))


def test_each_merged_weight_is_built_once(models, monkeypatch):
    both, frozen = models
    calls = []
    real = LowRankDelta.combined
    monkeypatch.setattr(LowRankDelta, "combined", lambda self: calls.append(1) or real(self))
    layers = len(frozen.size_deltas.deltas)
    for _ in range(3):
        delta_eps(frozen, NATIVE)
    assert len(calls) == layers  # the size deltas merged once, not once a forward
    set_few_step(frozen, True)
    for _ in range(2):
        delta_eps(frozen, NATIVE)
        delta_eps(frozen, DRAFT)
    assert len(calls) == 3 * layers  # + the few-step deltas on the merged weight, + on the layer's own: once each
    calls.clear()
    for _ in range(2):
        delta_eps(both, NATIVE)
    assert len(calls) == 2 * layers  # unfrozen (training previews): afresh every forward
    kept = frozen.size_deltas._frozen
    assert all(len(v) == 1 for v in kept.values()) and len(kept) == layers  # one merged weight per layer and weight


@pytest.mark.skipif(not (DEFAULT / "config.json").is_file(), reason="no shipped default model")
def test_pipelines_loaded_to_sample_are_frozen_and_a_training_model_is_not():
    from rdtf_engine.diffusion.pipeline import StickerPipeline

    pipe = StickerPipeline.from_pretrained(DEFAULT, "cpu")  # generate, eval and eval-pack load models this way
    assert pipe.unet.size_deltas._frozen is not None
    both, _ = delta_pair()  # a model being trained (the training preview samples it as it is): merged afresh
    assert both.size_deltas._frozen is None and freeze_deltas(torch.nn.Linear(2, 2)) == 0
