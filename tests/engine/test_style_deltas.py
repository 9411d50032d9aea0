"""Style deltas (model/size_deltas.py StyleDeltas): low-rank layer companions that act only on the draft-size latent
grid and only while switched on (a prompt carrying the card's style tag), so a second art style is learnt at the
draft size without touching what every other prompt draws."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from rdtf_engine.core.config import ModelConfig, TrainConfig
from rdtf_engine.core.errors import InputError
from rdtf_engine.model.dfgn import DFGN
from rdtf_engine.model.size_deltas import count, set_style, style_on
from rdtf_engine.model.store import load_model_folder
from rdtf_engine.training.data_prep import styled_captions
from rdtf_engine.training.finetune import apply_trainable
from rdtf_engine.training.loop import train
from tests.engine.delta_fixtures import delta_eps, delta_pair

DRAFT, NATIVE = 4, 8  # latent sides of a 32 px draft and a 64 px native size
TAG = "in 3d style"


def _models() -> tuple[DFGN, DFGN]:
    """(a tiny DFGN with size and style deltas, the same network with size deltas only, sharing every weight)."""
    return delta_pair(style_delta_rank=4)


def _eps(model: DFGN, side: int, grad: bool = False) -> torch.Tensor:
    return delta_eps(model, side, grad)


def test_the_two_kinds_wrap_the_base_layers_alone_and_the_style_starts_off():
    both, sized = _models()
    assert len(both.style_deltas.deltas) == len(both.size_deltas.deltas) == len(sized.size_deltas.deltas)
    assert not any(k.startswith("size_deltas") for k in both.style_deltas.deltas)
    assert count(both, "style_deltas") > 0 and count(sized, "style_deltas") == 0
    assert not style_on(both) and set_style(both, True) and style_on(both)
    assert not set_style(sized, True)  # a model without style deltas has nothing to switch


@pytest.mark.parametrize("grad", [False, True], ids=["sampling (merged)", "training (hooked)"])
def test_switched_off_the_network_is_the_size_delta_model_exactly_and_on_it_differs_at_the_draft_size_only(grad):
    both, sized = _models()
    for side in (DRAFT, NATIVE):
        assert torch.equal(_eps(both, side, grad), _eps(sized, side, grad))  # off: bit for bit
    set_style(both, True)
    assert (_eps(both, DRAFT, grad) - _eps(sized, DRAFT, grad)).abs().max() > 1e-3
    assert torch.equal(_eps(both, NATIVE, grad), _eps(sized, NATIVE, grad))  # the native size: size deltas alone
    twin = copy.deepcopy(both)
    set_style(both, False)
    assert style_on(twin) and torch.equal(_eps(both, DRAFT, grad), _eps(sized, DRAFT, grad))


def test_config_checks():
    with pytest.raises(InputError, match="style deltas act only on the draft size"):
        ModelConfig(preset="tiny", size=64, style_delta_rank=4).validate()
    with pytest.raises(InputError, match="style_delta_rank must be between"):
        ModelConfig(preset="tiny", size=64, draft_size=32, style_delta_rank=-1).validate()
    with pytest.raises(InputError, match="needs the style tag"):
        TrainConfig(trainable="style").validate()
    with pytest.raises(InputError, match="printable"):
        TrainConfig(trainable="style", style_tag="in\n3d").validate()
    TrainConfig(trainable="style", style_tag=TAG).validate()
    base = ModelConfig(preset="tiny", size=64, draft_size=32, size_delta_rank=4, style_delta_rank=4)
    assert ModelConfig(size=64).resolved(base).style_delta_rank == 4
    assert ModelConfig(size=32).resolved(base).style_delta_rank == 0  # at the draft size: the plain network


def test_trainable_style_trains_the_style_deltas_alone():
    both, _ = _models()
    n = apply_trainable(both, "style")
    assert n == count(both, "style_deltas")
    assert all(p.requires_grad == name.startswith("style_deltas.") for name, p in both.named_parameters())


def test_styled_captions_get_the_tag_once():
    assert styled_captions(["a cat", "a dog, in 3D style", "rain,", "a cat, in 3d style."], f", {TAG}") == [
        "a cat, in 3d style", "a dog, in 3D style", "rain, in 3d style", "a cat, in 3d style."]


def _style_weights(step_dir) -> dict[str, torch.Tensor]:
    """The raw (not EMA) style-delta weights of a training checkpoint folder."""
    from safetensors.torch import load_file

    out: dict[str, torch.Tensor] = {}
    for f in sorted(step_dir.glob("model*.safetensors")):
        out.update({k: v for k, v in load_file(f).items() if "style_deltas." in k})
    assert out
    return out


def test_a_style_fine_tune_learns_at_the_draft_size_for_tagged_prompts_alone(tiny_run, tmp_path, monkeypatch):
    """A real run: a 32 px base given a 64 px native size (no size deltas) and rank-4 style deltas trained alone
    at its 32 px draft size; then the pipeline switches them on for a tagged prompt only."""
    from rdtf_engine.diffusion.pipeline import SampleParams, StickerPipeline
    from tests.engine.conftest import tiny_request

    base = tiny_run[0] / "model"
    events: list = []
    train(tiny_request(tmp_path / "styled", steps=10, size=64, draft_size=32, style_delta_rank=4, trainable="style",
                       style_tag=TAG, init_from=str(base), checkpoint_every=5, sample_every=5, lr=3e-3),
          on_event=events.append)
    messages = [getattr(e, "message", "") for e in events]
    assert any("only the style deltas train, at the draft size 32 px" in m for m in messages)
    # a preview at step 5 drew tagged captions (and switched the deltas off when done): the steps after it must
    # have trained them all the same
    assert list((tmp_path / "styled" / "samples").glob("*.png"))
    raw = [_style_weights(tmp_path / "styled" / "checkpoints" / f"step_{n:07d}") for n in (5, 10)]
    assert any(not torch.equal(raw[0][k], raw[1][k]) for k in raw[0])
    styled, _, card = load_model_folder(tmp_path / "styled" / "model")
    ref, _, _ = load_model_folder(base)
    assert card.style_tag == TAG and card.draft_size == 32 and styled.config.style_delta_rank == 4
    styled, ref = styled.float().eval(), ref.float().eval()
    for side in (DRAFT, NATIVE):  # switched off: the base network at every size
        assert torch.equal(_eps(styled, side), _eps(ref, side))
    set_style(styled, True)
    assert (_eps(styled, DRAFT) - _eps(ref, DRAFT)).abs().max() > 1e-4  # the style deltas learnt something

    pipe = StickerPipeline.from_pretrained(tmp_path / "styled" / "model", device="cpu")
    assert pipe.styled("A cat, IN 3D STYLE") and not pipe.styled("a cat")
    assert not pipe.styled(f"a cat, {TAG}", given=True)  # with frames given only when the card says so
    pipe.card.style_given = True
    assert pipe.styled(f"a cat, {TAG}", given=True)
    pipe.card.style_given = False
    zeroed = StickerPipeline.from_pretrained(tmp_path / "styled" / "model", device="cpu")
    with torch.no_grad():
        for p in zeroed.unet.style_deltas.parameters():
            p.zero_()

    def sample(pipeline, prompt: str) -> np.ndarray:
        return pipeline(SampleParams(prompt=prompt, frames=4, size=64, steps=3, seed=5))

    assert np.array_equal(sample(pipe, "a red circle"), sample(zeroed, "a red circle"))  # untagged: base exactly
    assert not np.array_equal(sample(pipe, f"a red circle, {TAG}"), sample(zeroed, f"a red circle, {TAG}"))

    # style_below_t: the base lays the draft out on the early steps, the style deltas act from t < 500 on
    monkeypatch.setenv("RDTF_CPU_RUNTIME", "torch")  # eager: every step goes through the hooks below
    late = StickerPipeline.from_pretrained(tmp_path / "styled" / "model", device="cpu")
    late.card.style_below_t = 500
    seen: list[tuple[int, int, bool]] = []
    late.unet.register_forward_pre_hook(
        lambda m, args: seen.append((int(args[0].shape[-1]), int(args[1].reshape(-1)[0]), style_on(m))))
    sample(late, f"a red circle, {TAG}")
    assert not style_on(late.unet)  # switched off after the sample: the next user of the network gets its base
    set_style(pipe.unet, True)  # a style run's network, switched on while it trains (its previews sample it)
    assert np.array_equal(sample(pipe, "a red circle"), sample(zeroed, "a red circle"))  # untagged: off meanwhile
    assert style_on(pipe.unet)  # … and on again for the training steps that follow
    set_style(pipe.unet, False)
    drafts = [(t, on) for side, t, on in seen if side == DRAFT]
    assert drafts and all(on == (t < 500) for t, on in drafts) and {on for _, on in drafts} == {True, False}
    assert not np.array_equal(sample(late, f"a red circle, {TAG}"), sample(pipe, f"a red circle, {TAG}"))
