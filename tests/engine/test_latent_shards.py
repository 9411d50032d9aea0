"""Encoded latent shards (``rdtf data encode-shards``) and training that streams them a window at a time: the
shards hold exactly what the in-memory cache holds, windows split cleanly over processes and epochs, a streamed
run resumes exactly, and damaged or mismatched shards are typed errors."""

from __future__ import annotations

import json

import pytest
import torch

from rdtf_engine.cli.main import main
from rdtf_engine.core.errors import InputError, UnsafeInputError
from rdtf_engine.core.requests import TrainRequest
from rdtf_engine.core.run_file import latest_checkpoint
from rdtf_engine.data import latent_shards
from rdtf_engine.data.latent_cache import build_latent_cache
from rdtf_engine.data.latent_shards import LatentShards
from rdtf_engine.training.checkpoint import load_checkpoint
from rdtf_engine.training.loop import train


@pytest.fixture(scope="module")
def shards(tiny_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "shapes"
    model = tiny_run[0] / "model"
    rc = main(["data", "encode-shards", "--data", "builtin:shapes", "--model", str(model), "--max-clips", "24",
               "--clips-per-shard", "5", "--out", str(out), "--device", "cpu", "--json"])
    assert rc == 0
    return out, model


def test_shards_hold_what_the_cache_holds(shards):
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.training.autoencoder import load_autoencoder

    out, model = shards
    index = json.loads((out / "index.json").read_text())
    assert index["clips"] == 24 and [s["clips"] for s in index["train"]] == [5, 5, 5, 5, 3]
    assert index["val"]["clips"] == 1 and index["size"] == 32 and index["latent_shape"] == [4, 4, 4]
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "train-00000.tar", "train-00001.tar",
                                                      "train-00002.tar", "train-00003.tar", "train-00004.tar",
                                                      "val.tar"]
    got = LatentShards(out).load(index["train"][:1])
    vae, scale = load_autoencoder(model, torch.device("cpu"))
    ref = build_latent_cache(open_source("builtin:shapes", 32, num_clips=24, seed=0, training=True), vae, scale,
                             torch.device("cpu"), indices=[0, 1, 2, 3, 4])
    assert got.lengths == ref.lengths and got.captions == ref.captions and got.keyframes == ref.keyframes
    assert got.latents.dtype == torch.float16
    assert torch.allclose(got.latents.float(), ref.latents, atol=2e-3 * ref.latents.abs().max())  # stored in fp16


def test_windows_split_over_processes_and_cover_every_shard_each_epoch(shards, monkeypatch):
    monkeypatch.setattr(latent_shards, "WINDOW_SHARDS", 2)
    s = LatentShards(shards[0])
    names = [x["name"] for x in s.index["train"]]
    epoch = [x["name"] for w in range(3) for x in s.window_shards(w, seed=7)]  # 5 shards, 2 a window: 3 windows
    assert sorted(epoch) == sorted(names)
    assert [x["name"] for x in s.window_shards(3, seed=7)] != [] and s.window_shards(0, 7) == s.window_shards(0, 7)
    for w in range(3):
        a, b = s.window_shards(w, 7, 0, 2), s.window_shards(w, 7, 1, 2)
        both = {x["name"] for x in a} | {x["name"] for x in b}
        assert not ({x["name"] for x in a} & {x["name"] for x in b}) or len(s.window_shards(w, 7)) == 1
        assert both >= {x["name"] for x in s.window_shards(w, 7)}
    assert s.steps_per_window(batch_size=2) == 5 and s.steps_per_window(batch_size=2, world=2) == 2


def _request(out, model, data, **kw):
    base = {"data": f"shards:{data}", "out": str(out), "init_from": str(model), "steps": 8, "batch_size": 2,
            "lr": 1e-3, "checkpoint_every": 4, "seed": 0, "ae_steps": 0}
    base.update(kw)
    return TrainRequest.of(**base)


def test_a_streamed_run_trains_validates_and_resumes_exactly(shards, tmp_path, monkeypatch):
    monkeypatch.setattr(latent_shards, "WINDOW_SHARDS", 2)  # 5 steps a window: step 5 reads the next window
    data, model = shards
    straight = train(_request(tmp_path / "a", model, data))
    assert straight["step"] == 8
    rows = [json.loads(x) for x in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert any("val" in r for r in rows)  # the validation loss runs on the held-out shard
    card = json.loads((tmp_path / "a" / "model" / "config.json").read_text())
    assert card["data_summary"]["source"] == "latent-shards" and card["data_summary"]["clips"] == 24

    run = tmp_path / "b"
    first = train(_request(run, model, data), should_stop=lambda: (run / "checkpoints" / "latest").exists())
    assert first["stopped"] and first["step"] == 4
    assert train(TrainRequest.of(data="", out=str(run), steps=8, resume=True))["step"] == 8
    ma, _, _, sa = load_checkpoint(latest_checkpoint(tmp_path / "a"))
    mb, _, _, sb = load_checkpoint(latest_checkpoint(run))
    assert all(torch.equal(ma[k], mb[k]) for k in ma) and sa["history"] == sb["history"]


def test_damaged_or_foreign_shards_are_typed_errors(shards, tmp_path):
    import shutil

    data, model = shards
    with pytest.raises(InputError, match="encoded with: give --init-from"):
        train(_request(tmp_path / "x", model, data, init_from=None, ae_steps=10))
    with pytest.raises(InputError, match="decoder"):
        train(_request(tmp_path / "y", model, data, decoder_steps=2))
    with pytest.raises(InputError, match="px"):
        train(_request(tmp_path / "z", model, data, size=64))
    bad = tmp_path / "bad"
    shutil.copytree(data, bad)
    raw = bytearray((bad / "train-00001.tar").read_bytes())
    raw[700] ^= 0xFF
    (bad / "train-00001.tar").write_bytes(bytes(raw))
    s = LatentShards(bad)
    with pytest.raises(UnsafeInputError, match="damaged"):
        s.load([x for x in s.index["train"] if x["name"] == "train-00001.tar"])
    index = json.loads((data / "index.json").read_text())
    (bad / "index.json").write_text(json.dumps({**index, "format": 1}))  # one sample per clip, as once written
    with pytest.raises(InputError, match="format 1.*encode them again"):
        LatentShards(bad)
    (bad / "index.json").write_text(json.dumps({**index, "train": [{**index["train"][0], "clips": 4}]}))
    s = LatentShards(bad)
    with pytest.raises(UnsafeInputError, match="does not match the index"):
        s.load(s.index["train"])
    (bad / "index.json").write_text("{}")
    with pytest.raises(InputError, match="not a latent shard index"):
        LatentShards(bad)
