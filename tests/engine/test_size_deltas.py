"""Size deltas (model/size_deltas.py): low-rank layer companions that act only off the draft-size latent grid, so
a network trained through them alone stays its base exactly at the draft size."""

from __future__ import annotations

import copy

import pytest
import torch

from rdtf_engine.core.config import ModelConfig
from rdtf_engine.core.errors import InputError, TrainingError
from rdtf_engine.model.dfgn import DFGN, build_dfgn
from rdtf_engine.model.size_deltas import count
from rdtf_engine.model.store import load_model_folder
from rdtf_engine.training.finetune import apply_trainable
from rdtf_engine.training.loop import train

DRAFT, NATIVE = 4, 8  # latent sides of a 32 px draft and a 64 px native size


def _pair(rank: int = 4) -> tuple[DFGN, DFGN]:
    """(a tiny DFGN with size deltas, the same network without them, sharing every base weight)."""
    torch.manual_seed(0)
    with_deltas = build_dfgn(ModelConfig(preset="tiny", size=64, draft_size=32, size_delta_rank=rank)).eval()
    plain = build_dfgn(ModelConfig(preset="tiny", size=64)).eval()
    base = {k: v for k, v in with_deltas.state_dict().items() if not k.startswith("size_deltas.")}
    plain.load_state_dict(base)
    return with_deltas, plain


def _randomise_deltas(model: DFGN, scale: float = 0.05) -> None:
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.size_deltas.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * scale)


def _eps(model: DFGN, side: int, grad: bool = False) -> torch.Tensor:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 4, 8, side, side, generator=gen)
    text = torch.randn(2, 32, 384, generator=gen)
    mask = torch.tensor([[True] * 8, [True] * 5 + [False] * 3])
    with torch.set_grad_enabled(grad):
        return model(x, torch.tensor([100, 700]), text, torch.zeros_like(x), frame_mask=mask)


def test_every_layer_gets_a_delta_and_they_start_as_nothing():
    model, plain = _pair()
    layers = [m for m in plain.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear))]
    assert len(model.size_deltas.deltas) == len(layers) > 20
    assert count(model) > 0 and count(plain) == 0
    for side in (DRAFT, NATIVE):  # zero-initialised up-projections: the same network at every size
        assert torch.equal(_eps(model, side), _eps(plain, side))


def test_at_the_draft_size_the_network_is_its_base_exactly_and_elsewhere_the_deltas_act():
    model, plain = _pair()
    _randomise_deltas(model)
    assert torch.equal(_eps(model, DRAFT), _eps(plain, DRAFT))  # bit for bit, whatever the deltas hold
    assert (_eps(model, NATIVE) - _eps(plain, NATIVE)).abs().max() > 1e-3


def _training_eps(model: DFGN, side: int) -> torch.Tensor:
    """``_eps`` with gradients on: the training path, output + Δ(input) per layer."""
    with torch.enable_grad():
        return _eps(model, side, grad=True).detach()


def test_sampling_runs_each_layer_once_with_merged_weights_and_puts_its_own_back():
    """Without gradients every layer runs W + ΔW in one go (no extra convolutions): the same ε̂ as the training
    path's W(x) + Δ(x) to rounding, the layer's own weights untouched."""
    model, _ = _pair()
    _randomise_deltas(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    params = [id(p) for p in model.parameters()]
    torch.testing.assert_close(_eps(model, NATIVE), _training_eps(model, NATIVE), rtol=1e-4, atol=1e-5)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert [id(p) for p in model.parameters()] == params


@pytest.mark.parametrize("change", ["fused_adamw", "data_copy"])
def test_sampling_sees_every_change_of_the_deltas(change):
    """The ways a training run changes weights that leave ``Tensor._version`` alone — a fused AdamW step and the
    EMA's ``.data`` copies — must reach the next sample: a merged-weight cache keyed on the version once made a
    run's validation use its step-0 deltas throughout."""
    model, _ = _pair()
    _randomise_deltas(model)
    first = _eps(model, NATIVE)
    deltas = list(model.size_deltas.parameters())
    if change == "fused_adamw":
        opt = torch.optim.AdamW(deltas, lr=0.05, fused=True)
        with torch.enable_grad():
            _eps(model, NATIVE, grad=True).square().mean().backward()
        opt.step()
    else:
        for q in deltas:
            q.data.copy_(q.data * 2)
    second = _eps(model, NATIVE)
    assert (second - first).abs().max() > 1e-3
    torch.testing.assert_close(second, _training_eps(model, NATIVE), rtol=1e-4, atol=1e-5)


def test_an_error_inside_a_layer_leaves_its_own_weight_in_place():
    model, _ = _pair()
    _randomise_deltas(model)
    conv = model.conv_in
    own = conv.weight

    def boom(module, args):
        raise RuntimeError("boom")

    handle = conv.register_forward_pre_hook(boom)  # runs after the swap
    with pytest.raises(RuntimeError, match="boom"):
        _eps(model, NATIVE)
    handle.remove()
    assert conv.weight is own


def test_a_copy_of_the_model_uses_its_own_deltas():
    model, plain = _pair()
    _randomise_deltas(model)
    twin = copy.deepcopy(model)  # what the EMA snapshot and the fp16 export do
    with torch.no_grad():
        for p in twin.size_deltas.parameters():
            p.zero_()
    assert torch.equal(_eps(twin, NATIVE), _eps(plain, NATIVE))
    assert (_eps(model, NATIVE) - _eps(plain, NATIVE)).abs().max() > 1e-3  # the original kept its own


def test_deltas_survive_a_save_and_a_load(tmp_path):
    model, _ = _pair()
    _randomise_deltas(model)
    model.save_pretrained(tmp_path / "unet")
    again = DFGN.from_pretrained(tmp_path / "unet").eval()
    assert again.config.size_delta_rank == 4 and again.config.size_delta_off_latent == DRAFT
    assert torch.equal(_eps(again, NATIVE), _eps(model, NATIVE))


def test_trainable_deltas_freezes_everything_else_and_a_model_without_deltas_refuses_it():
    model, plain = _pair()
    n = apply_trainable(model, "deltas")
    assert n == count(model)
    assert all(p.requires_grad == name.startswith("size_deltas.") for name, p in model.named_parameters())
    with pytest.raises(TrainingError, match="no parameter"):
        apply_trainable(plain, "deltas")


def test_the_rank_is_checked_and_needs_a_draft_size():
    with pytest.raises(InputError, match="draft_size"):
        ModelConfig(preset="tiny", size=64, size_delta_rank=4).validate()
    with pytest.raises(InputError, match="size_delta_rank"):
        ModelConfig(preset="tiny", size=64, draft_size=32, size_delta_rank=-1).validate()
    ModelConfig(preset="tiny", size=64, draft_size=32, size_delta_rank=4).validate()
    # a fine-tune at the base's draft size inherits no deltas (they would never act there)
    base = ModelConfig(preset="tiny", size=64, draft_size=32, size_delta_rank=4).resolved()
    assert ModelConfig(size=32).resolved(base).size_delta_rank == 0
    # … which is where a fine-tune that names no size trains (the pack recipes on the 256 px default); asked for
    # the native size, or to keep it (a draft-only run), it keeps the base's deltas and draft size
    plain = ModelConfig().resolved(base)
    assert (plain.size, plain.draft_size, plain.size_delta_rank) == (32, 0, 0)
    for native in (ModelConfig(size=64).resolved(base), ModelConfig().resolved(base, keep_native=True)):
        assert (native.size, native.draft_size, native.size_delta_rank) == (64, 32, 4)


def test_a_draft_only_fine_tune_trains_the_draft_network_alone_and_keeps_the_native_size(tiny_run, tmp_path):
    """--draft-only on a size-delta base, in small: every step at the draft size, the size deltas frozen, the
    decoder tuned at both sizes; the result keeps the base's native size and deltas and draws the way the base
    does (draft_given, refine_strength, refine_guidance), while its draft-size network has learnt."""
    import json

    from rdtf_engine.core.requests import TrainRequest
    from rdtf_engine.training.finetune import resolve_architecture
    from tests.engine.conftest import tiny_request

    grown = tmp_path / "grown"
    train(tiny_request(grown, steps=2, size=64, draft_size=32, size_delta_rank=4, trainable="deltas",
                       init_from=str(tiny_run[0] / "model"), checkpoint_every=2, lr=3e-3))
    cfg = json.loads((grown / "model" / "config.json").read_text())
    # how this base draws: its fine-tunes must draw alike
    cfg.update(draft_given=True, refine_strength=0.5, refine_guidance=1.0)
    (grown / "model" / "config.json").write_text(json.dumps(cfg))

    def asked(**kw):
        flat = {"data": "builtin:shapes", "out": str(tmp_path / "x"), "init_from": str(grown / "model"), **kw}
        return resolve_architecture(TrainRequest.of(**flat))

    assert (asked().model.size, asked().model.draft_size) == (32, 0)  # by default: a draft-size model
    assert (asked(draft_only=True).model.size, asked(draft_only=True).model.draft_size) == (64, 32)

    events: list = []
    req = tiny_request(tmp_path / "pack", steps=6, size=None, preset=None, init_from=str(grown / "model"),
                       checkpoint_every=6, decoder_steps=2, sample_every=6, draft_only=True)
    train(req, on_event=events.append)
    messages = [getattr(e, "message", "") for e in events]
    assert any("every step at the draft size 32 px" in m for m in messages)
    assert any("every other step on" in m and "at 32 px" in m for m in messages)  # the decoder at both sizes
    tuned, _, card = load_model_folder(tmp_path / "pack" / "model")
    base, _, _ = load_model_folder(grown / "model")
    assert (card.size, card.draft_size, card.draft_given, card.refine_strength, card.refine_guidance) == (
        64, 32, True, 0.5, 1.0)
    assert tuned.config.size_delta_rank == 4
    mine, theirs = tuned.state_dict(), base.state_dict()
    assert all(torch.equal(mine[k], theirs[k]) for k in mine if k.startswith("size_deltas."))  # frozen
    assert (_eps(tuned.float().eval(), DRAFT) - _eps(base.float().eval(), DRAFT)).abs().max() > 1e-4  # learnt
    assert list((tmp_path / "pack" / "samples").glob("*.png"))  # previews drawn the two-stage way


def test_draft_only_needs_a_drafting_base_and_cannot_train_the_size_deltas(tiny_run, tmp_path):
    from rdtf_engine.core.config import TrainConfig
    from rdtf_engine.core.requests import TrainRequest

    with pytest.raises(InputError, match="draft_only"):
        TrainConfig(data="d", draft_only=True, trainable="deltas").validate()
    with pytest.raises(InputError, match="draft_only"):
        TrainRequest.of(data="d", out="o", preset="tiny", size=64, draft_only=True).validate()
    with pytest.raises(InputError, match="no draft size"):  # a base that does not draft: caught with its data
        train(TrainRequest.of(data="builtin:shapes", out=str(tmp_path / "plain"), init_from=str(tiny_run[0] / "model"),
                              draft_only=True, device="cpu", steps=1, max_clips=8))


def test_a_deltas_only_fine_tune_learns_the_native_size_and_leaves_the_draft_size_untouched(tiny_run, tmp_path):
    """A real run: a 32 px base grown to 64 px through rank-4 deltas alone (no draft-size steps at all), its
    decoder tuned first at both sizes (the pipeline decodes the 32 px drafts with it)."""
    from tests.engine.conftest import tiny_request

    base = tiny_run[0] / "model"
    events: list = []
    train(tiny_request(tmp_path / "grown", steps=12, size=64, draft_size=32, size_delta_rank=4, trainable="deltas",
                       init_from=str(base), checkpoint_every=12, lr=3e-3, decoder_steps=2), on_event=events.append)
    messages = [getattr(e, "message", "") for e in events]
    assert any("only the size deltas train" in m for m in messages)
    assert any("every other step on" in m and "at 32 px" in m for m in messages)  # the decoder's draft-size half
    grown, _, _ = load_model_folder(tmp_path / "grown" / "model")
    ref, _, _ = load_model_folder(base)
    assert grown.config.size_delta_rank == 4 and count(grown) > 0
    assert torch.equal(_eps(grown.float().eval(), DRAFT), _eps(ref.float().eval(), DRAFT))
    delta_weights = [p for n, p in grown.named_parameters() if n.startswith("size_deltas.") and n.endswith("up.weight")]
    assert any(p.abs().max() > 0 for p in delta_weights)  # the deltas learnt something …
    assert (_eps(grown.float().eval(), NATIVE) - _eps(ref.float().eval(), NATIVE)).abs().max() > 1e-4  # … at 64 px

    # Shards encoded for this base default to the size its fine-tunes train at (its 32 px draft size), so a
    # fine-tune takes them as they are.
    import json

    from rdtf_engine.cli.main import main

    shards = tmp_path / "shards"
    assert main(["data", "encode-shards", "--data", "builtin:shapes", "--model", str(tmp_path / "grown" / "model"),
                 "--max-clips", "6", "--out", str(shards), "--device", "cpu", "--json"]) == 0
    assert json.loads((shards / "index.json").read_text())["size"] == 32
    train(tiny_request(tmp_path / "from-shards", steps=1, data=f"shards:{shards}", size=None, preset=None,
                       init_from=str(tmp_path / "grown" / "model"), checkpoint_every=1, max_clips=6))
    assert load_model_folder(tmp_path / "from-shards" / "model")[2].size == 32


def test_ddp_looks_for_unused_parameters_only_when_the_deltas_sit_out_some_steps():
    """With all weights training and a draft size, the deltas get no gradient on the draft-size steps: DDP must not
    wait for them there. Trained alone, they are used on every step (there are no draft-size steps)."""
    from rdtf_engine.core.requests import TrainRequest
    from rdtf_engine.training.run_setup import make_accelerator

    def handler(**kw):
        req = TrainRequest.of(data="d", out="o", preset="tiny", size=64, draft_size=32, device="cpu", **kw)
        return make_accelerator(req).ddp_handler

    assert handler(size_delta_rank=4).find_unused_parameters
    assert handler(size_delta_rank=4, trainable="deltas") is None
    assert handler(style_delta_rank=4).find_unused_parameters  # switched off while all weights train
    assert handler(style_delta_rank=4, trainable="style", style_tag="in 3d style") is None
    assert handler() is None
