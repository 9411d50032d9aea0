"""The anchor (training/anchor.py): a fine-tune held to a reference model's predictions on the batches at the
reference's own size, for the procedural clips only."""

from __future__ import annotations

import json

import pytest
import torch

from rdtf_engine.core.config import TrainConfig
from rdtf_engine.core.errors import InputError, TrainingError
from rdtf_engine.model.store import load_model_folder, validate_model_folder
from rdtf_engine.training.anchor import Anchor, load_anchor, reference_sources
from rdtf_engine.training.loop import train
from rdtf_engine.training.masks import masked_mse


class Doubler(torch.nn.Module):
    """A stand-in reference: ε_ref = 2 · sample, so the expected term is known exactly."""

    def forward(self, sample, **_):
        return 2 * sample


def _anchor(weight=3.0) -> Anchor:
    return Anchor(Doubler(), weight, latent_size=4, name="ref", sources=frozenset({"emoji"}))


def test_rows_pick_the_reference_s_own_sources_and_the_batch_size_decides_where_it_applies():
    a = _anchor()
    labels = [{"source": "emoji"}, {"source": "fluent"}, {"source": "emoji", "motion": "spin"}, {"source": "a.webp"},
              {"motion": "bounce"}]
    assert a.rows(labels, [0, 1, 2, 3, 4, 0]).tolist() == [1.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    assert a.rows([], [5, 6]).tolist() == [0.0, 0.0]  # a cache without labels: nothing is known to be its own
    assert reference_sources("builtin:emoji") == reference_sources("builtin:emoji-dev") == {"emoji"}
    assert reference_sources("builtin:mixed") == {"emoji", "fluent"} and reference_sources("builtin:shapes") == {"shapes"}
    assert reference_sources("/home/me/pack") == reference_sources("") == frozenset()
    assert a.applies(torch.zeros(2, 4, 3, 4, 4)) and not a.applies(torch.zeros(2, 4, 3, 8, 8))


def test_the_term_is_the_weighted_masked_mse_to_the_reference_over_the_anchored_rows():
    gen = torch.Generator().manual_seed(0)
    sample = torch.randn(3, 4, 5, 4, 4, generator=gen)
    eps = torch.randn(3, 4, 5, 4, 4, generator=gen)
    valid = torch.tensor([[1.0] * 5, [1.0] * 3 + [0.0] * 2, [1.0] * 4 + [0.0]])
    rows = torch.tensor([1.0, 0.0, 1.0])
    a = _anchor(3.0)
    got = a.loss(eps, {"sample": sample}, valid, rows, _no_autocast)
    want = 3.0 * masked_mse(eps, 2 * sample, valid * rows[:, None])
    assert torch.allclose(got, want)
    # rows 0 and 2 alone decide it: the real clip's row may be anything
    eps2 = eps.clone()
    eps2[1] += 100
    assert torch.allclose(a.loss(eps2, {"sample": sample}, valid, rows, _no_autocast), want)
    assert a.loss(eps, {"sample": sample}, valid, torch.zeros(3), _no_autocast) is None  # no forward, no term


def _no_autocast():
    return torch.autocast("cpu", enabled=False)


def test_the_anchor_weight_is_checked():
    TrainConfig(anchor="default", anchor_weight=0.5).validate()
    for bad in (0.0, -1.0, 101.0):
        with pytest.raises(InputError, match="anchor_weight"):
            TrainConfig(anchor="default", anchor_weight=bad).validate()


def test_a_reference_with_another_latent_space_or_no_built_in_data_is_refused(tiny_run, tmp_path):
    import shutil

    model = tiny_run[0] / "model"
    packed = tmp_path / "pack-model"
    shutil.copytree(model, packed)
    cfg = json.loads((packed / "config.json").read_text())
    (packed / "config.json").write_text(json.dumps({**cfg, "data": "my-stickers"}))
    _, vae, card = load_model_folder(model)
    a = load_anchor(str(model), 1.0, vae, card.latent_scale, torch.device("cpu"))
    assert (a.latent_size, a.name) == (card.size // 8, card.name) and not any(
        p.requires_grad for p in a.model.parameters())
    with pytest.raises(TrainingError, match="not a built-in source"):
        load_anchor(str(packed), 1.0, vae, card.latent_scale, torch.device("cpu"))
    with pytest.raises(TrainingError, match="latent scale"):
        load_anchor(str(model), 1.0, vae, card.latent_scale * 1.5, torch.device("cpu"))
    with torch.no_grad():
        next(p for n, p in vae.named_parameters() if n.startswith("encoder.")).add_(0.5)
    with pytest.raises(TrainingError, match="encoder"):
        load_anchor(str(model), 1.0, vae, card.latent_scale, torch.device("cpu"))


def _drift(folder, ref_folder) -> float:
    """Mean squared gap between a model's and the reference's ε on fixed 32 px (4 × 4 latent) inputs."""
    unet, _, _ = load_model_folder(folder)
    ref, _, _ = load_model_folder(ref_folder)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(4, 4, 8, 4, 4, generator=gen)
    text = torch.randn(4, 32, 384, generator=gen)
    t = torch.tensor([50, 300, 600, 900])
    with torch.no_grad():
        return float((unet(x, t, text, torch.zeros_like(x)) - ref(x, t, text, torch.zeros_like(x))).pow(2).mean())


def test_an_anchored_two_size_fine_tune_stays_closer_to_its_reference_at_the_draft_size(tiny_run, tmp_path):
    from tests.engine.conftest import tiny_request

    base = tiny_run[0] / "model"
    for name, extra in (("free", {}), ("held", {"anchor": str(base), "anchor_weight": 20.0})):
        train(tiny_request(tmp_path / name, steps=24, size=64, draft_size=32, init_from=str(base),
                           checkpoint_every=24, lr=1e-3, **extra))
    rows = [json.loads(x) for x in (tmp_path / "held" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("anchor_loss", 0) > 0 for r in rows if "loss" in r)  # the term was paid and logged
    assert not any("anchor_loss" in r for r in (json.loads(x) for x in
                                                (tmp_path / "free" / "metrics.jsonl").read_text().splitlines()))
    assert validate_model_folder(tmp_path / "held" / "model").anchor == validate_model_folder(base).name
    assert validate_model_folder(tmp_path / "free" / "model").anchor == ""
    free, held = (_drift(tmp_path / n / "model", base) for n in ("free", "held"))
    assert held < 0.6 * free, (held, free)  # measured: 0.36 × (8 steps at 3e-3: 0.91 ×, the pull grows with the gap)
