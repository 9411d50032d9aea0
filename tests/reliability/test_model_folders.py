"""Malicious and broken model folders: each is refused with a typed error and nothing in it is executed.

A tiny real model folder (tiny DFGN with its weights sharded behind an index, tiny autoencoder) is built once;
each test copies it and breaks one thing. ``torch.load`` is replaced by a trap for the whole module, and a
planted pickle would create a marker file when unpickled: neither may ever fire.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import tracemalloc
from pathlib import Path

import pytest
import torch

from rdtf_engine.core.config import ModelCard
from rdtf_engine.core.errors import ModelError, UnsafeInputError
from rdtf_engine.core.model_trust import INDEX, check_safetensors, check_weights_folder
from rdtf_engine.model.store import load_model_folder, save_model_folder, validate_model_folder

SHARDED_UNET = "200KB"  # the tiny DFGN (≈ 0.6 MB) becomes a few shards behind an index


class Planted:
    """Unpickling this creates the marker file (what a real attack would do with os.system)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    from rdtf_engine.model.autoencoder import build_autoencoder
    from rdtf_engine.model.dfgn import build_dfgn

    torch.manual_seed(0)
    unet, vae = build_dfgn("tiny"), build_autoencoder("tiny", 32)
    out = tmp_path_factory.mktemp("models") / "tiny"
    save_model_folder(out, unet, vae, ModelCard(name="tiny", preset="tiny", size=32, num_frames=8))
    shutil.rmtree(out / "unet")
    unet.save_pretrained(out / "unet", safe_serialization=True, max_shard_size=SHARDED_UNET)
    assert (out / "unet" / INDEX).is_file()
    return out


@pytest.fixture(autouse=True)
def no_torch_load(monkeypatch):
    calls: list = []

    def trap(*args, **kwargs):
        calls.append(args[:1])
        raise AssertionError("torch.load was called on a model-folder file")

    monkeypatch.setattr(torch, "load", trap)
    yield calls
    assert not calls, f"torch.load was called: {calls}"


@pytest.fixture
def model(tiny_folder, tmp_path) -> Path:
    dst = tmp_path / "m"
    shutil.copytree(tiny_folder, dst)
    return dst


def index_of(folder: Path) -> dict:
    return json.loads((folder / "unet" / INDEX).read_text())


def point_index_at(folder: Path, shard: str) -> None:
    idx = index_of(folder)
    first = next(iter(idx["weight_map"].values()))
    idx["weight_map"] = {k: (shard if v == first else v) for k, v in idx["weight_map"].items()}
    (folder / "unet" / INDEX).write_text(json.dumps(idx))


def test_the_good_folder_loads_with_safetensors_only(model):
    unet, vae, card = load_model_folder(model)
    assert card.preset == "tiny" and not unet.training and next(unet.parameters()).dtype == torch.float32
    assert len(list((model / "unet").glob("*.safetensors"))) > 1  # really sharded behind an index
    assert all(not p.is_meta for p in [*unet.parameters(), *vae.parameters()])


@pytest.mark.parametrize("shard_name", ["evil.index.json", "weights.bin", "config.json.bak"])
def test_index_naming_a_pickle_is_refused_and_never_unpickled(model, tmp_path, shard_name):
    marker = tmp_path / "MARKER"
    (model / "unet" / shard_name).write_bytes(pickle.dumps(Planted(marker), protocol=2))
    point_index_at(model, shard_name)
    with pytest.raises(UnsafeInputError):
        load_model_folder(model)
    assert not marker.exists()


@pytest.mark.parametrize("name", ["../outside.safetensors", "sub/x.safetensors", "/etc/passwd", "..", ".hidden"])
def test_index_names_outside_the_folder_are_refused(model, name):
    point_index_at(model, name)
    with pytest.raises(UnsafeInputError, match="plain file names|only .safetensors"):
        validate_model_folder(model)


def test_pickle_beside_safetensors_is_refused_even_unreferenced(model, tmp_path):
    marker = tmp_path / "MARKER"
    (model / "vae" / "diffusion_pytorch_model.bin").write_bytes(pickle.dumps(Planted(marker)))
    with pytest.raises(UnsafeInputError, match="pickle"):
        load_model_folder(model)
    (model / "vae" / "diffusion_pytorch_model.bin").unlink()
    (model / "notes.dat").write_bytes(pickle.dumps(Planted(marker)))  # by magic bytes, whatever the name
    with pytest.raises(UnsafeInputError, match="pickle"):
        validate_model_folder(model)
    assert not marker.exists()


def test_symlinked_shard_pointing_outside_is_refused(model, tmp_path):
    shard = next(iter(index_of(model)["weight_map"].values()))
    outside = tmp_path / "outside.safetensors"
    shutil.move(model / "unet" / shard, outside)
    os.symlink(outside, model / "unet" / shard)
    with pytest.raises(UnsafeInputError, match="symbolic link"):
        load_model_folder(model)


def _rewrite_header(path: Path, edit) -> None:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])


def _overlap(h):
    b = sorted((v for k, v in h.items() if k != "__metadata__"), key=lambda v: v["data_offsets"][0])[1]
    b["data_offsets"] = [b["data_offsets"][0] - 4, b["data_offsets"][1] - 4]  # same length, 4 bytes overlap


def _dtype_lie(h):
    v = next(v for k, v in h.items() if k != "__metadata__" and v["dtype"] == "F32")
    v["dtype"] = "F16"


def _out_of_range(h):
    v = max((v for k, v in h.items() if k != "__metadata__"), key=lambda v: v["data_offsets"][1])
    v["data_offsets"][1] += 1 << 40


@pytest.mark.parametrize(("edit", "match"), [
    (_overlap, "overlaps"),
    (_dtype_lie, "spans"),
    (_out_of_range, "spans|cover"),
    (lambda h: next(v for k, v in h.items() if k != "__metadata__").update(dtype="PICKLE"), "unknown dtype"),
    (lambda h: next(v for k, v in h.items() if k != "__metadata__").update(shape=[-1, 4]), "bad shape"),
    (lambda h: h.update(__metadata__={"format": 1}), "__metadata__"),
])
def test_safetensors_header_lies_are_refused(model, edit, match):
    path = model / "vae" / "diffusion_pytorch_model.safetensors"
    _rewrite_header(path, edit)
    with pytest.raises(ModelError, match=match):
        check_safetensors(path)
    with pytest.raises(ModelError):
        load_model_folder(model)


def test_header_length_beyond_the_file_and_truncation(model):
    path = model / "vae" / "diffusion_pytorch_model.safetensors"
    data = path.read_bytes()
    path.write_bytes(struct.pack("<Q", len(data) * 2) + data[8:])
    with pytest.raises(ModelError, match="header length"):
        check_safetensors(path)
    path.write_bytes(data[:-7])
    with pytest.raises(ModelError, match="truncated"):
        check_safetensors(path)


def test_index_and_shards_must_agree(model):
    idx = index_of(model)
    name = next(iter(idx["weight_map"]))
    idx["weight_map"]["ghost.weight"] = idx["weight_map"][name]
    (model / "unet" / INDEX).write_text(json.dumps(idx))
    with pytest.raises(ModelError, match="no shard holds"):
        validate_model_folder(model)


def _card(model: Path, **changes) -> None:
    card = json.loads((model / "config.json").read_text())
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            card[outer][inner] = value
        else:
            card[key] = value
    (model / "config.json").write_text(json.dumps(card))


@pytest.mark.parametrize(("change", "match"), [
    ({"size": "32"}, "size must be an integer"),
    ({"size": 1e9}, "size must be an integer"),
    ({"num_frames": -3}, "num_frames must be an integer in 1..256"),
    ({"preset": ["tiny"]}, "preset must be a string"),
    ({"diffusion.num_train_timesteps": 1_000_000_000}, "num_train_timesteps must be an integer in 2..10,000"),
    ({"diffusion.beta_schedule": "cosine; rm -rf"}, "beta_schedule must be one of"),
    ({"text.max_tokens": 10**12}, "max_tokens"),
    ({"text": [1, 2]}, "text must be a JSON object"),
    ({"latent_scale": True}, "latent_scale must be a number"),
])
def test_bad_card_values_name_the_field(model, change, match):
    _card(model, **change)
    with pytest.raises(ModelError, match=match):
        validate_model_folder(model)


@pytest.mark.parametrize(("raw", "match"), [
    (b"[1, 2, 3]", "must be a JSON object, got a list"),
    (b"\xff\xfe{\x00}", "not UTF-8"),
    (b'{"size": NaN}', "not valid JSON"),
    (b'{"name": "a", "name": "b"}', "duplicate key"),
    (b"{" * 100_000, "not valid JSON|nested too deeply"),
    (b" " * (2 << 20), "larger than"),
])
def test_unparseable_cards(model, raw, match):
    (model / "config.json").write_bytes(raw)
    with pytest.raises(ModelError, match=match):
        validate_model_folder(model)


def test_a_list_as_unet_config_names_the_file_not_the_internet(model):
    (model / "unet" / "config.json").write_text("[1]")
    with pytest.raises(ModelError) as info:
        load_model_folder(model)
    assert "unet/config.json" in str(info.value) and "internet" not in str(info.value)


@pytest.mark.parametrize(("change", "match"), [
    ({"block_out_channels": [16, "32"]}, r"block_out_channels\[1\] must be an integer"),
    ({"layers_per_block": 10**9}, "layers_per_block must be an integer in 1..8"),
    ({"cross_attn_levels": [False]}, "one entry per"),
    ({"_class_name": "UNet2DConditionModel"}, "_class_name must be DFGN"),
    ({"norm_num_groups": 7}, "describes no buildable network"),
])
def test_bad_unet_configs(model, change, match):
    cfg = json.loads((model / "unet" / "config.json").read_text())
    cfg.update(change)
    (model / "unet" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=match):
        load_model_folder(model)


def test_a_config_claiming_huge_layers_fails_before_allocating(model):
    cfg = json.loads((model / "vae" / "config.json").read_text())
    cfg["block_out_channels"] = [4096, 4096, 4096, 4096]  # ≈ 10 GB of fp32 weights if it were built for real
    cfg["norm_num_groups"] = 32
    (model / "vae" / "config.json").write_text(json.dumps(cfg))
    tracemalloc.start()
    try:
        with pytest.raises(ModelError, match="do not match"):
            load_model_folder(model)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 << 20, f"peak {peak >> 20} MiB"


def test_rdtf_models_lists_good_models_and_skips_a_bad_folder(tiny_folder, tmp_path, monkeypatch, capsys):
    from rdtf_engine.cli.main import main

    home = tmp_path / "home"
    shutil.copytree(tiny_folder, home / "models" / "good")
    shutil.copytree(tiny_folder, home / "models" / "broken")
    (home / "models" / "broken" / "config.json").write_text("[]")
    shutil.copytree(tiny_folder, home / "models" / "timesteps")
    _card(home / "models" / "timesteps", **{"diffusion.num_train_timesteps": 10**9})
    monkeypatch.setenv("RDTF_HOME", str(home))
    assert main(["models"]) == 0
    out, err = capsys.readouterr()
    assert "good" in out and "broken" not in out and "timesteps" not in out
    assert len(err.strip().splitlines()) == 2 and "must be a JSON object" in err and "num_train_timesteps" in err
    assert "Traceback" not in err
    assert main(["models", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert "error" not in listed["good"] and "ModelError" in listed["broken"]["error"]


def test_a_text_encoder_folder_with_a_pickle_is_refused(tmp_path):
    folder = tmp_path / "text"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps({"w": 1}))
    with pytest.raises(UnsafeInputError):
        check_weights_folder(folder, "text_encoder")


def test_a_text_encoder_inside_a_model_folder_is_checked(model):
    (model / "text_encoder").mkdir()
    (model / "text_encoder" / "config.json").write_text("{}")
    (model / "text_encoder" / "model.safetensors").write_bytes(struct.pack("<Q", 2) + b"{}" + b"extra")
    with pytest.raises(ModelError, match="text_encoder/model.safetensors"):
        validate_model_folder(model)
