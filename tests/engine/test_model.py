"""DFGN denoiser: shapes, padding isolation, identity-at-init, save/load, parameter budgets, gradient flow."""

from __future__ import annotations

import pytest
import torch

from rdtf_engine.core.errors import InputError
from rdtf_engine.model import DFGN, STILayer, TemporalAttention, build_dfgn, count_parameters
from rdtf_engine.model.blocks import FrameInfo, masked_attention
from rdtf_engine.model.sti import Conv3DTemporalLayer

TEXT_DIM = 384


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # These models are tiny: with 2+ intra-op threads on a busy 2-core box, OpenMP spin-waiting makes a
    # 30 ms forward take seconds. One thread is faster here and deterministic; restored afterwards.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _inputs(b=2, f=4, h=4, w=4, length=6):
    sample = torch.randn(b, 4, f, h, w)
    cond = torch.randn(b, 4, f, h, w)
    text = torch.randn(b, length, TEXT_DIM)
    return sample, cond, text


def _perturb_zero_inits(model: torch.nn.Module) -> None:
    """Zero-init projections and w1 = 0 make whole branches inert at init; give them values so tests see them."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".w1") or not p.any():
                p.normal_(0.0, 0.2)


@pytest.mark.parametrize("temporal", ["sti", "conv3d"])
@pytest.mark.parametrize(("preset", "f", "size"), [("tiny", 4, 4), ("small", 8, 8)])
def test_forward_shapes(preset, f, size, temporal):
    model = build_dfgn(preset, temporal=temporal).eval()
    sample, cond, text = _inputs(f=f, h=size, w=size)
    fm = torch.ones(2, f, dtype=torch.bool)
    fm[1, f // 2 :] = False
    with torch.no_grad():
        out = model(
            sample,
            torch.tensor([3, 999]),
            text,
            cond * fm[:, None, :, None, None],
            frame_mask=fm,
            text_mask=torch.tensor([[1] * 6, [1] * 3 + [0] * 3]),
        )
    assert out.shape == (2, 4, f, size, size)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("hw", [(1, 1), (5, 3), (6, 7)])
def test_odd_and_tiny_latent_sizes(hw):
    model = build_dfgn("tiny").eval()
    sample, cond, text = _inputs(b=1, f=3, h=hw[0], w=hw[1])
    with torch.no_grad():
        out = model(sample, 500, text, cond)  # python-scalar timestep, no masks
    assert out.shape == (1, 4, 3, *hw)


@pytest.mark.parametrize("temporal", ["sti", "conv3d"])
def test_padded_frames_do_not_influence_valid_frames(temporal):
    model = build_dfgn("tiny", temporal=temporal).eval()
    _perturb_zero_inits(model)  # otherwise the cross-frame branches are zero and the test would be vacuous
    sample, cond, text = _inputs()
    fm = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=torch.bool)
    cond = cond * fm[:, None, :, None, None]
    pad = ~fm
    sample2, cond2 = sample.clone(), cond.clone()
    sample2.permute(0, 2, 1, 3, 4)[pad] = 5 * torch.randn(int(pad.sum()), 4, 4, 4)
    cond2.permute(0, 2, 1, 3, 4)[pad] = 5 * torch.randn(int(pad.sum()), 4, 4, 4)
    t = torch.tensor([10, 700])
    with torch.no_grad():
        out1 = model(sample, t, text, cond, frame_mask=fm).permute(0, 2, 1, 3, 4)
        out2 = model(sample2, t, text, cond2, frame_mask=fm.float()).permute(0, 2, 1, 3, 4)  # 0/1 mask works too
    assert torch.allclose(out1[fm], out2[fm], atol=1e-5)
    assert not torch.allclose(out1[pad], out2[pad])  # sanity: the perturbation did reach the padded frames
    # ... and without the mask the same perturbation does leak into real frames (the mask is what isolates them)
    with torch.no_grad():
        leak1 = model(sample, t, text, cond).permute(0, 2, 1, 3, 4)
        leak2 = model(sample2, t, text, cond2).permute(0, 2, 1, 3, 4)
    assert not torch.allclose(leak1[fm], leak2[fm], atol=1e-5)


def test_sti_init_and_identity_of_temporal_attention():
    model = build_dfgn("tiny")
    stis = [m for m in model.modules() if isinstance(m, STILayer)]
    assert stis
    for sti in stis:
        assert sti.w1.item() == 0.0 and sti.w2.item() == 1.0
    temporal_attn = [m for m in model.modules() if isinstance(m, TemporalAttention)]
    assert len(temporal_attn) >= 3  # transformer_in + cross-attention levels + mid
    x = torch.randn(2 * 4, 16, 3, 3)
    for ta in temporal_attn:
        assert not ta.attn.to_out.weight.any() and not ta.attn.to_out.bias.any()
        assert not ta.ff[-1].weight.any()
    ta = TemporalAttention(16, 2, 8, num_frames=8)
    frames = FrameInfo(4, torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool))
    assert torch.equal(ta(x, frames), x)  # a fresh temporal block is the identity


def test_sti_semantic_branch_masks_padded_keys():
    sti = STILayer(16, heads=2, head_dim=8, norm_num_groups=8)
    x = torch.randn(4, 16, 4, 4)  # B=1, F=4
    frames = FrameInfo(4, torch.tensor([[1, 1, 0, 0]], dtype=torch.bool))
    x2 = x.clone()
    x2[2:] = torch.randn(2, 16, 4, 4)
    s1, s2 = sti.semantic(x, frames), sti.semantic(x2, frames)
    assert torch.allclose(s1[:2], s2[:2], atol=1e-6)
    # below 2×2 the pooling is skipped and the layer still works
    assert sti(torch.randn(4, 16, 1, 3), frames).shape == (4, 16, 1, 3)


def test_masked_attention_never_nan():
    q = k = v = torch.randn(2, 2, 5, 8)
    mask = torch.tensor([[True, True, False, False, False], [False] * 5])
    out = masked_attention(q, k, v, mask)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("masked", [False, True])
def test_attention_over_many_sequences_goes_in_slices_with_the_same_result(masked):
    """More sequences than one attention call may take (a CUDA grid limit) are split: the same numbers."""
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(7, 2, 5, 8, generator=g) for _ in range(3))
    mask = torch.rand(7, 5, generator=g) > 0.4 if masked else None
    whole = masked_attention(q, k, v, mask)
    assert torch.allclose(masked_attention(q, k, v, mask, max_sequences=3), whole, atol=1e-6)
    assert torch.allclose(masked_attention(q, k, v, mask, max_sequences=7), whole)


def test_save_load_round_trip(tmp_path):
    model = build_dfgn("tiny").eval()
    _perturb_zero_inits(model)
    sample, cond, text = _inputs()
    fm = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    with torch.no_grad():
        ref = model(sample, torch.tensor([1, 2]), text, cond, frame_mask=fm)
    model.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert "diffusion_pytorch_model.safetensors" in files and "config.json" in files
    assert not any(name.endswith(".bin") for name in files)
    loaded = DFGN.from_pretrained(tmp_path).eval()
    assert loaded.config.temporal_layer == "sti" and list(loaded.config.block_out_channels) == [16, 32]
    with torch.no_grad():
        out = loaded(sample, torch.tensor([1, 2]), text, cond, frame_mask=fm)
    assert torch.equal(out, ref)


def test_parameter_budgets():
    assert count_parameters(build_dfgn("tiny")) < 1_000_000
    small = count_parameters(build_dfgn("small"))
    assert small <= 16_000_000
    # medium: the wider candidate whose fp16 weights, with the shipped autoencoder (7.8 MB), stay inside 48 MiB
    medium = count_parameters(build_dfgn("medium"))
    assert 1.4 * small <= medium and medium * 2 + 7.8e6 <= 48 * 2**20
    with torch.device("meta"):  # shapes only: 0.9 B parameters without allocating 3.7 GB
        paper = build_dfgn("paper")
    assert 0.9e9 <= count_parameters(paper) <= 1.0e9
    assert tuple(paper.config.block_out_channels) == (320, 640, 1024, 1280)
    assert paper.config.layers_per_block == 2 and paper.config.attention_head_dim == 64


@pytest.mark.parametrize("temporal", ["sti", "conv3d"])
def test_every_parameter_gets_gradient(temporal):
    model = build_dfgn("tiny", temporal=temporal).train()
    _perturb_zero_inits(model)  # with zero-init outputs, the layers feeding them get exactly-zero gradient at init
    sample, cond, text = _inputs()
    fm = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    out = model(sample, torch.tensor([5, 900]), text, cond * fm[:, None, :, None, None], frame_mask=fm)
    out.square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    assert not dead, dead


def test_conv3d_ablation_layers_and_gradient_checkpointing():
    model = build_dfgn("tiny", temporal="conv3d")
    assert any(isinstance(m, Conv3DTemporalLayer) for m in model.modules())
    assert not any(isinstance(m, STILayer) for m in model.modules())
    model.enable_gradient_checkpointing()
    sample, cond, text = _inputs()
    out = model(sample, torch.tensor([5, 9]), text, cond)
    out.mean().backward()
    assert model.conv_out.weight.grad is not None


def test_bad_inputs_raise_input_error():
    with pytest.raises(InputError):
        build_dfgn("huge")
    with pytest.raises(InputError):
        build_dfgn("tiny", temporal="lstm")
    model = build_dfgn("tiny", num_frames=4)
    sample, cond, text = _inputs(f=6)
    with pytest.raises(InputError):
        model(sample, 1, text, cond)  # more frames than the model was built for
    sample, cond, text = _inputs()
    with pytest.raises(InputError):
        model(sample, 1, text, cond[:, :, :3])
    with pytest.raises(InputError):
        model(sample, torch.tensor([1, 2, 3]), text, cond)  # 3 timesteps for 2 clips


# ---------------------------------------------------------------------------------------------- reference attention
def test_reference_rows_point_at_the_first_given_frame_or_frame_0():
    from rdtf_engine.model.reference import reference_rows

    cond = torch.zeros(3, 4, 4, 2, 2)
    cond[0, 1, 2, 0, 0] = -0.5  # clip 0: frame 2 given (one negative value is enough)
    cond[2, :, 1] = 1.0  # clip 2: frames 1 and 3 given -> the first one
    cond[2, :, 3] = 1.0
    assert reference_rows(cond).tolist() == [2, 2, 2, 2, 4, 4, 4, 4, 9, 9, 9, 9]  # clip 1: none given -> frame 0


def test_reference_attention_processor_appends_the_reference_tokens_only_to_self_attention():
    from diffusers.models.attention_processor import Attention, AttnProcessor2_0

    from rdtf_engine.model.reference import ReferenceAttnProcessor

    torch.manual_seed(0)
    attn = Attention(query_dim=16, heads=2, dim_head=8).eval()
    x = torch.randn(3, 5, 16)  # (B·F, N, C)
    rows = torch.tensor([0, 0, 0])
    plain = AttnProcessor2_0()
    with torch.no_grad():
        out = ReferenceAttnProcessor()(attn, x, reference_rows=rows)
        # the reference frame itself: its own tokens twice = plain self-attention, exactly
        assert torch.allclose(out[0], plain(attn, x)[0], atol=1e-6)
        # another frame: attention over its own tokens + the reference's
        want = plain(attn, x[1:2], encoder_hidden_states=torch.cat([x[1:2], x[0:1]], dim=1))
        assert torch.allclose(out[1:2], want, atol=1e-6)
        assert not torch.allclose(out[1], plain(attn, x)[1], atol=1e-3)
        cross = Attention(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8).eval()
        ctx = torch.randn(3, 7, 12)
        assert torch.equal(ReferenceAttnProcessor()(cross, x, ctx, reference_rows=rows), plain(cross, x, ctx))


def test_reference_attention_adds_no_weights_and_loads_any_model_of_its_preset(tmp_path):
    torch.manual_seed(0)
    plain = build_dfgn("tiny").eval()
    _perturb_zero_inits(plain)
    plain.save_pretrained(tmp_path)
    ref = DFGN.from_pretrained(tmp_path, reference_attention=True).eval()  # a config override, same weights
    assert ref.config.reference_attention and not plain.config.reference_attention
    assert plain.state_dict().keys() == ref.state_dict().keys()
    sample, cond, text = _inputs()
    with torch.no_grad():  # one frame: the reference is the frame itself, so nothing changes
        a = plain(sample[:, :, :1], torch.tensor([1, 2]), text, cond[:, :, :1])
        b = ref(sample[:, :, :1], torch.tensor([1, 2]), text, cond[:, :, :1])
        assert torch.allclose(a, b, atol=1e-5)
        # several frames: the other frames now see the reference frame, and every parameter still gets a gradient
        assert not torch.allclose(plain(sample, 1, text, cond), ref(sample, 1, text, cond), atol=1e-4)
    ref.train()
    ref(sample, torch.tensor([1, 2]), text, cond).square().mean().backward()
    assert all(p.grad is not None for p in ref.parameters())


def test_reference_modes_map_to_exact_config_flags():
    from rdtf_engine.core.config import config_reference_mode, reference_flags, reference_mode

    values = (None, False, True, "off", "on", "all")
    assert [reference_mode(v) for v in values] == ["off", "off", "on", "off", "on", "all"]
    assert reference_flags("off") == {"reference_attention": False, "reference_attention_all_levels": False}
    assert reference_flags("on") == {"reference_attention": True, "reference_attention_all_levels": False}
    assert reference_flags("all") == {"reference_attention": True, "reference_attention_all_levels": True}
    for mode in ("off", "on", "all"):
        assert config_reference_mode(reference_flags(mode)) == mode
    assert config_reference_mode({}) == "off"  # a model older than reference attention
    with pytest.raises(InputError, match="reference attention"):
        reference_mode("everywhere")
    with pytest.raises(InputError, match="needs reference_attention"):
        DFGN(reference_attention_all_levels=True)


def test_reference_attention_all_adds_blocks_only_where_there_is_no_attention_and_they_start_as_identity(tmp_path):
    torch.manual_seed(0)
    on = build_dfgn("tiny", reference_attention="on").eval()
    _perturb_zero_inits(on)
    grown = build_dfgn("tiny", reference_attention="all").eval()
    blocks = [n for n, _ in grown.named_modules() if n.endswith(".ref_attn")]
    # tiny: level 0 has no attention (1 down layer, 2 up layers); level 1 and the mid block have their own
    assert blocks == ["down_blocks.0.layers.0.ref_attn", "up_blocks.1.layers.0.ref_attn",
                      "up_blocks.1.layers.1.ref_attn"]
    new = set(grown.state_dict()) - set(on.state_dict())
    assert new and all(".ref_attn." in k for k in new) and set(on.state_dict()) < set(grown.state_dict())
    grown.load_state_dict(on.state_dict(), strict=False)
    sample, cond, text = _inputs()
    with torch.no_grad():  # zero output projections: exactly the model it grew from
        t = torch.tensor([1, 2])
        assert torch.equal(on(sample, t, text, cond), grown(sample, t, text, cond))
        _perturb_zero_inits(grown)
        assert not torch.allclose(on(sample, 1, text, cond), grown(sample, 1, text, cond), atol=1e-4)
    grown.train()
    grown(sample, torch.tensor([1, 2]), text, cond).square().mean().backward()
    assert all(p.grad is not None and p.grad.any() for n, p in grown.named_parameters() if ".ref_attn." in n)
    grown.save_pretrained(tmp_path)
    again = DFGN.from_pretrained(tmp_path)
    assert again.config.reference_attention_all_levels and set(again.state_dict()) == set(grown.state_dict())


def test_reference_attention_block_attends_over_own_and_reference_tokens():
    """One ReferenceAttention block: identity at init; then frame 1 = x + attention over [own + frame 0's tokens]
    and the reference frame 0 = x + plain self-attention (its own tokens twice)."""
    from rdtf_engine.model.reference import ReferenceAttention

    torch.manual_seed(0)
    block = ReferenceAttention(channels=8, head_dim=8, groups=1).eval()
    with torch.no_grad():
        x = torch.randn(2, 8, 2, 2)  # frames 0 (reference) and 1, 2 × 2 tokens each
        refs = torch.tensor([0, 0])
        assert torch.equal(block(x, refs), x)  # zero output projection: identity
        block.attn.to_out[0].weight.copy_(torch.eye(8))
        out = block(x, refs)
        plain = block.attn.processor.__class__.__mro__[1]()  # AttnProcessor2_0: self-attention without the extension
        tokens = block.norm(x).flatten(2).transpose(1, 2)
        want1 = plain(block.attn, tokens[1:2], torch.cat([tokens[1:2], tokens[0:1]], dim=1))
        assert torch.allclose(out[1], x[1] + want1[0].transpose(0, 1).reshape(8, 2, 2), atol=1e-5)
        want0 = plain(block.attn, tokens[0:1])
        assert torch.allclose(out[0], x[0] + want0[0].transpose(0, 1).reshape(8, 2, 2), atol=1e-5)
