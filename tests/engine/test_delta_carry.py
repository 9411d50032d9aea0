"""tools/delta_carry.py: a size- or style-delta model carried as its deltas alone and shipped over its base with
the base's weight files kept byte for byte (tiny real models on CPU)."""

from __future__ import annotations

import filecmp

import pytest
import torch

from rdtf_engine.model.dfgn import DFGN
from rdtf_engine.model.store import load_model_folder, save_model_folder


@pytest.fixture
def carry(load_script):
    return load_script("tools/delta_carry.py")


@pytest.fixture
def base_and_grown(tiny_run, tmp_path):
    """(a fp16 base folder as the shipped one is stored, the same network with trained-looking rank-4 deltas)."""
    unet, vae, card = load_model_folder(tiny_run[0] / "model")
    base = save_model_folder(tmp_path / "base", unet, vae, card, dtype=torch.float16)
    unet, vae, card = load_model_folder(base)
    grown = DFGN.from_config({**dict(unet.config), "size_delta_rank": 4, "size_delta_off_latent": 2})
    missing = grown.load_state_dict(unet.state_dict(), strict=False).missing_keys
    assert missing and all(k.startswith("size_deltas.") for k in missing)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in grown.size_deltas.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    return base, save_model_folder(tmp_path / "grown", grown.eval(), vae, card, dtype=torch.float16)


def _with_style(grown, tmp_path, change_size: bool = False):
    """``grown`` given rank-4 style deltas too (as a style run leaves it: its size deltas as they were)."""
    unet, vae, card = load_model_folder(grown)
    styled = DFGN.from_config({**dict(unet.config), "style_delta_rank": 4})
    styled.load_state_dict(unet.state_dict(), strict=False)
    gen = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in styled.style_deltas.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        if change_size:
            next(styled.size_deltas.parameters()).add_(0.5)
    return save_model_folder(tmp_path / "styled", styled.eval(), vae, card, dtype=torch.float16)


def _state(folder):
    return load_model_folder(folder)[0].state_dict()


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_split_then_join_gives_the_model_back_bit_for_bit(carry, base_and_grown, tmp_path):
    base, grown = base_and_grown
    carry.main(["split", str(grown), str(tmp_path / "carried")])
    assert sorted(p.name for p in (tmp_path / "carried").iterdir()) == ["config.json", "deltas.safetensors",
                                                                        "unet.json"]
    carry.main(["join", str(tmp_path / "carried"), str(tmp_path / "joined"), "--base", str(base)])
    assert _same(_state(tmp_path / "joined"), _state(grown))


def test_join_refuses_deltas_trained_on_another_base(carry, base_and_grown, tmp_path):
    base, grown = base_and_grown
    carry.main(["split", str(grown), str(tmp_path / "carried")])
    unet, vae, card = load_model_folder(base)
    with torch.no_grad():
        next(unet.parameters()).add_(0.5)
    other = save_model_folder(tmp_path / "other", unet, vae, card, dtype=torch.float16)
    with pytest.raises(SystemExit, match="another base"):
        carry.main(["join", str(tmp_path / "carried"), str(tmp_path / "joined"), "--base", str(other)])


def test_ship_keeps_the_base_files_and_adds_the_deltas_as_one_shard(carry, base_and_grown, tmp_path):
    base, grown = base_and_grown
    out = tmp_path / "shipped"
    carry.main(["ship", str(grown), str(out), "--base", str(base)])
    assert _same(_state(out), _state(grown))  # loads through the trust checks as the trained model
    base_files = sorted(p.name for p in (base / "unet").glob("*.safetensors"))
    for name in base_files:
        assert filecmp.cmp(base / "unet" / name, out / "unet" / name, shallow=False)
    assert sorted(p.name for p in (out / "unet").glob("*.safetensors")) == sorted([*base_files, carry.shard_name("size_deltas.")])
    assert filecmp.cmp(grown / "vae" / "diffusion_pytorch_model.safetensors",
                       out / "vae" / "diffusion_pytorch_model.safetensors", shallow=False)
    assert filecmp.cmp(grown / "config.json", out / "config.json", shallow=False)


def test_ship_refuses_a_model_without_deltas_and_writes_nothing(carry, base_and_grown, tmp_path):
    base, _ = base_and_grown
    with pytest.raises(SystemExit, match="no deltas beyond"):
        carry.main(["ship", str(base), str(tmp_path / "shipped"), "--base", str(base)])
    assert not (tmp_path / "shipped").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".shipped")] == []


def test_style_deltas_ship_over_a_size_delta_base_as_one_more_shard(carry, base_and_grown, tmp_path):
    base, grown = base_and_grown
    carry.main(["ship", str(grown), str(tmp_path / "sized"), "--base", str(base)])  # the shipped size-delta model
    styled = _with_style(grown, tmp_path)
    carry.main(["split", str(styled), str(tmp_path / "carried")])  # both kinds travel; the base is the plain one
    carry.main(["join", str(tmp_path / "carried"), str(tmp_path / "joined"), "--base", str(tmp_path / "sized")])
    assert _same(_state(tmp_path / "joined"), _state(styled))
    out = tmp_path / "shipped"
    carry.main(["ship", str(styled), str(out), "--base", str(tmp_path / "sized")])
    assert _same(_state(out), _state(styled))
    sized_files = sorted(p.name for p in (tmp_path / "sized" / "unet").glob("*.safetensors"))
    assert carry.shard_name("size_deltas.") in sized_files
    for name in sized_files:  # the size deltas' shard too: unchanged, so stored once
        assert filecmp.cmp(tmp_path / "sized" / "unet" / name, out / "unet" / name, shallow=False)
    assert sorted(p.name for p in (out / "unet").glob("*.safetensors")) == sorted(
        [*sized_files, "diffusion_pytorch_model-style-deltas.safetensors"])


def test_ship_refuses_size_deltas_that_moved_over_a_base_that_holds_them(carry, base_and_grown, tmp_path):
    base, grown = base_and_grown
    carry.main(["ship", str(grown), str(tmp_path / "sized"), "--base", str(base)])
    styled = _with_style(grown, tmp_path, change_size=True)
    with pytest.raises(SystemExit, match="size_deltas differ"):
        carry.main(["ship", str(styled), str(tmp_path / "shipped"), "--base", str(tmp_path / "sized")])
    assert not (tmp_path / "shipped").exists()
