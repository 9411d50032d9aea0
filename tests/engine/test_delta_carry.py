"""tools/delta_carry.py: a size-delta model carried as its deltas alone and shipped over its base with the base's
weight files kept byte for byte (tiny real models on CPU)."""

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
    assert sorted(p.name for p in (out / "unet").glob("*.safetensors")) == sorted([*base_files, carry.DELTA_SHARD])
    assert filecmp.cmp(grown / "vae" / "diffusion_pytorch_model.safetensors",
                       out / "vae" / "diffusion_pytorch_model.safetensors", shallow=False)
    assert filecmp.cmp(grown / "config.json", out / "config.json", shallow=False)


def test_ship_refuses_a_model_without_deltas_and_writes_nothing(carry, base_and_grown, tmp_path):
    base, _ = base_and_grown
    with pytest.raises(SystemExit, match="no size deltas"):
        carry.main(["ship", str(base), str(tmp_path / "shipped"), "--base", str(base)])
    assert not (tmp_path / "shipped").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".shipped")] == []
