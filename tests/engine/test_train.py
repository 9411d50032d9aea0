"""End-to-end engine tests on tiny real models: training lowers held-out loss, exact resume, save/load."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rdtf_engine.core.errors import CheckpointError, InputError, ModelError, UnsafeInputError
from rdtf_engine.core.events import Metrics
from rdtf_engine.core.requests import TrainRequest
from rdtf_engine.core.run_file import latest_checkpoint
from rdtf_engine.diffusion.pipeline import SampleParams, StickerPipeline
from rdtf_engine.jobs.api import GenerateRequest, generate
from rdtf_engine.model.store import load_model_folder, validate_model_folder
from rdtf_engine.training.checkpoint import load_checkpoint
from rdtf_engine.training.loop import train
from rdtf_engine.training.state import warmup_steps


def test_training_lowers_heldout_denoising_loss(tiny_run):
    out, result, events = tiny_run
    assert result["step"] == 100 and not result["stopped"]
    vals = [e.val_loss for e in events if isinstance(e, Metrics) and e.stage == "validation"]
    assert len(vals) >= 2
    assert vals[-1] < 0.75 * vals[0], vals  # held-out loss clearly below where it started
    assert (out / "done.json").is_file()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in x for x in lines) and any("val" in x for x in lines)
    last = [e for e in events if isinstance(e, Metrics) and e.stage == "train"][-1]
    assert last.loss is not None and last.lr and last.steps_per_s and last.eta_s is not None
    assert last.task_weights and sum(last.task_counts.values()) > 0 and last.curriculum == "adaptive"
    assert sum(last.task_shares().values()) == pytest.approx(1.0)
    assert {"lr", "steps_per_s", "eta_s", "weights", "tasks"} <= set([x for x in lines if "loss" in x][-1])


def test_model_folder_is_complete_and_safetensors_only(tiny_run):
    out, _, _ = tiny_run
    card = validate_model_folder(out / "model")
    assert card.preset == "tiny" and card.size == 32 and card.num_frames == 8 and card.steps == 100
    assert card.latent_scale > 0
    files = [p.name for p in (out / "model").rglob("*") if p.is_file()]
    assert any(f.endswith(".safetensors") for f in files)
    assert not any(f.endswith((".bin", ".pt", ".ckpt", ".pkl")) for f in files)
    for p in (out / "checkpoints").rglob("*.safetensors"):
        assert p.stat().st_size <= 16 * 2**20


def test_save_load_gives_identical_outputs(tiny_run):
    out, _, _ = tiny_run
    pipe_a = StickerPipeline.from_pretrained(out / "model", "cpu")
    a = pipe_a(SampleParams("a red circle bouncing", frames=8, size=32, steps=4, seed=7))
    unet, vae, card = load_model_folder(out / "model")
    from rdtf_engine.model.text import get_text_encoder

    pipe_b = StickerPipeline(unet, vae, card, get_text_encoder(card.text, "cpu"), torch.device("cpu"))
    b = pipe_b(SampleParams("a red circle bouncing", frames=8, size=32, steps=4, seed=7))
    assert a.shape == (8, 32, 32, 4) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    c = pipe_a(SampleParams("a red circle bouncing", frames=8, size=32, steps=4, seed=8))
    assert not np.array_equal(a, c)


def test_generate_with_locked_frames_keeps_them(tiny_run, tmp_path):
    out, _, _ = tiny_run
    first = generate(GenerateRequest(prompt="a blue star spinning", model=str(out), frames=8, size=32, steps=3, seed=1))
    from PIL import Image

    paths = []
    for i in (0, 7):
        p = tmp_path / f"f{i}.png"
        Image.fromarray(first.frames[i], "RGBA").save(p)
        paths.append(str(p))
    cond = [paths[0]] + [None] * 6 + [paths[1]]
    res = generate(GenerateRequest(prompt="a blue star spinning", model=str(out), frames=8, size=32, steps=3,
                                   seed=2, cond_frames=cond, out=str(tmp_path / "x.gif")))
    assert np.array_equal(res.frames[0], first.frames[0]) and np.array_equal(res.frames[7], first.frames[7])
    assert res.recipe["locked"] == [0, 7]
    long = generate(GenerateRequest(prompt="a blue star spinning", model=str(out), frames=20, size=32, steps=2, seed=3))
    assert long.frames.shape == (20, 32, 32, 4)


def test_strength_runs_the_last_steps_from_the_given_frames(tiny_run):
    """img2img strength: with a frame given, 0.5 of 4 steps runs 2 (the callbacks' total says so from the start),
    keeps the frame exactly,
    and differs from a full run; without given frames strength changes nothing."""
    pipe = StickerPipeline.from_pretrained(tiny_run[0] / "model", "cpu")
    lock = np.zeros((32, 32, 4), np.uint8)
    lock[8:24, 8:24] = (200, 30, 10, 255)
    calls: list = []
    half = pipe(SampleParams("a red square bouncing", 4, 32, steps=4, seed=3, cond_frames=[lock, None, None, None],
                             strength=0.5), callback=lambda i, n: calls.append((i, n)))
    full = pipe(SampleParams("a red square bouncing", 4, 32, steps=4, seed=3, cond_frames=[lock, None, None, None]))
    assert calls == [(0, 2), (1, 2), (2, 2)] and np.array_equal(half[0], lock) and not np.array_equal(half, full)
    assert np.array_equal(pipe(SampleParams("a red square bouncing", 4, 32, steps=3, seed=3, strength=0.3)),
                          pipe(SampleParams("a red square bouncing", 4, 32, steps=3, seed=3)))
    for bad in (0.0, 1.5):
        with pytest.raises(InputError, match="strength"):
            GenerateRequest(prompt="x", strength=bad).validate()


def test_resume_continues_exactly(tiny_run, tmp_path, make_request):
    tiny_request = make_request
    ae = str(tiny_run[0] / "autoencoder")
    train(tiny_request(tmp_path / "a", steps=6, checkpoint_every=3, autoencoder=ae))
    def stop_after_three() -> bool:
        # the periodic checkpoint at step 3 exists → stop before step 4 (a cooperative stop)
        return (tmp_path / "b" / "checkpoints" / "latest").exists()

    first = train(tiny_request(tmp_path / "b", steps=6, checkpoint_every=3, autoencoder=ae), should_stop=stop_after_three)
    assert first["stopped"] and first["step"] == 3
    resumed = train(TrainRequest.of(data="", out=str(tmp_path / "b"), steps=6, resume=True))
    assert resumed["step"] == 6
    ma, ea, _, sa = load_checkpoint(latest_checkpoint(tmp_path / "a"))
    mb, eb, _, sb = load_checkpoint(latest_checkpoint(tmp_path / "b"))
    for k in ma:
        assert torch.equal(ma[k], mb[k]), k
    for k in ea:
        assert torch.equal(ea[k], eb[k]), k
    assert sa["history"] == sb["history"]
    again = train(TrainRequest.of(data="", out=str(tmp_path / "b"), steps=0, resume=True))  # 0 = the run's own target
    assert again["step"] == 6 and not again["stopped"]
    assert sa["curriculum"] == sb["curriculum"]


def test_logged_loss_window_stays_aligned_after_a_resume(tiny_run, tmp_path, make_request):
    """A run stopped at step 3 and resumed logs steps 11…20 at step 20: the window (loss mean and the per-step
    "ms" split) must not stay shifted by the resume point (it used to cover steps 14…20 over 10 steps' time)."""
    ae = str(tiny_run[0] / "autoencoder")
    run = tmp_path / "w"
    first = train(make_request(run, steps=23, checkpoint_every=3, autoencoder=ae),
                  should_stop=lambda: (run / "checkpoints" / "latest").exists())
    assert first["step"] == 3
    train(TrainRequest.of(data="", out=str(run), steps=23, resume=True))
    rows = {r["step"]: r for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "loss" in r}
    history = load_checkpoint(latest_checkpoint(run))[3]["history"]
    assert len(history) == 23 and sorted(rows) == [10, 20, 23]
    assert rows[20]["loss"] == pytest.approx(sum(history[10:20]) / 10, rel=1e-6)
    assert rows[23]["loss"] == pytest.approx(sum(history[20:23]) / 3, rel=1e-6)
    assert rows[20]["elapsed_s"] >= rows[10]["elapsed_s"] >= 0


def test_existing_run_needs_resume_and_corrupt_checkpoint_is_typed(tiny_run, tmp_path, make_request):
    tiny_request = make_request
    out = tiny_run[0]
    with pytest.raises(InputError, match="--resume"):
        train(tiny_request(out, steps=5))
    with pytest.raises(InputError, match="nothing to resume"):
        train(TrainRequest.of(data="", out=str(tmp_path / "none"), resume=True))
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    ck = latest_checkpoint(bad)
    for f in ck.glob("model-*.safetensors"):
        f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_checkpoint(ck)
    with pytest.raises(CheckpointError):
        train(TrainRequest.of(data="", out=str(bad), steps=120, resume=True))


def test_model_folder_refuses_pickle_and_truncation(tiny_run, tmp_path):
    import pickle
    import shutil

    m = tmp_path / "m"
    shutil.copytree(tiny_run[0] / "model", m)
    weights = next((m / "unet").glob("*.safetensors"))
    weights.write_bytes(pickle.dumps({"evil": 1}))  # a pickle wearing a .safetensors name
    with pytest.raises(UnsafeInputError):
        validate_model_folder(m)
    weights.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    with pytest.raises(ModelError):
        validate_model_folder(m)
    with pytest.raises(ModelError):
        validate_model_folder(tmp_path / "missing")


def test_generate_live_preview_events(tiny_run):
    from rdtf_engine.core.events import Preview, Progress

    events = []
    res = generate(GenerateRequest(prompt="a red heart beating", model=str(tiny_run[0]), frames=8, size=32,
                                   steps=4, seed=3, preview_every=2), on_event=events.append)
    previews = [e for e in events if isinstance(e, Preview)]
    assert [p.step for p in previews] == [2] and len(previews[0].paths) == 8
    from PIL import Image

    with Image.open(previews[0].paths[0]) as im:
        assert im.size == (32, 32) and im.mode == "RGBA"
    assert [e.step for e in events if isinstance(e, Progress)][-1] == 4
    assert res.frames.shape == (8, 32, 32, 4)


def test_other_sizes_are_generated_at_the_native_size_and_resampled(tiny_run):
    """A 32 px model asked for 64 px samples at 32 px (its latent grid) and resamples; locked frames stay exact."""
    from rdtf_engine.formats.timing import fit_canvas

    pipe = StickerPipeline.from_pretrained(tiny_run[0] / "model", "cpu")
    native = pipe(SampleParams("a blue star spinning", 4, 32, steps=3, seed=5))
    big = pipe(SampleParams("a blue star spinning", 4, 64, steps=3, seed=5))
    assert big.shape == (4, 64, 64, 4)
    assert np.array_equal(big, fit_canvas(native, 64, 64))
    lock = np.zeros((64, 64, 4), np.uint8)
    lock[8:40, 8:40] = (10, 200, 30, 255)
    res = pipe(SampleParams("a blue star spinning", 4, 64, steps=2, seed=5, cond_frames=[lock, None, None, None]))
    assert res.shape == (4, 64, 64, 4) and np.array_equal(res[0], lock)


def test_init_from_starts_at_the_models_weights_with_its_autoencoder(tiny_run, tmp_path, make_request):
    """--init-from (fine-tuning): the run starts from the model's DFGN weights and reuses its autoencoder."""
    from rdtf_engine.core.errors import TrainingError

    base = tiny_run[0] / "model"
    events: list = []
    res = train(make_request(tmp_path / "ft", steps=1, lr=1e-9, ae_steps=1, init_from=str(base)),
                on_event=events.append)
    assert res["step"] == 1
    logs = " ".join(getattr(e, "message", "") for e in events)
    assert "initialised from" in logs and "using the autoencoder of" in logs
    assert not (tmp_path / "ft" / "autoencoder").exists()  # no new autoencoder was trained
    unet0, vae0, card0 = load_model_folder(base)
    unet1, vae1, card1 = load_model_folder(tmp_path / "ft" / "model")
    assert (card1.base_model, card1.base_steps, card1.steps) == (card0.name, card0.steps, 1)
    for (k, a), b in zip(unet0.state_dict().items(), unet1.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), k  # lr 1e-9: one step moves nothing measurable
    for a, b in zip(vae0.state_dict().values(), vae1.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(TrainingError, match="does not match"):
        train(make_request(tmp_path / "bad", steps=1, temporal="conv3d", init_from=str(base)))
    with pytest.raises(ModelError):
        train(make_request(tmp_path / "none", steps=1, init_from=str(tmp_path / "no-such-model")))


def test_warmup_is_short_for_a_fine_tune():
    # from scratch: 10 % of the run, at most 500 steps; a fine-tune of trained weights: at most 100
    assert [warmup_steps(n) for n in (1, 50, 2000, 1_000_000)] == [1, 5, 200, 500]
    assert [warmup_steps(n, fine_tune=True) for n in (1, 50, 2000, 1_000_000)] == [1, 5, 100, 100]


def test_the_optimizer_is_fused_on_cuda_and_cpu(tmp_path, make_request):
    # the CPU recipe's batch-2 step spent 43 ms in the per-tensor AdamW loop and 13 ms fused (of ≈ 700 ms)
    from rdtf_engine.model.dfgn import build_dfgn
    from rdtf_engine.training.run_setup import build_state

    req = make_request(tmp_path)
    model = build_dfgn(req.model)
    fused = {kind: build_state(req, model, 0, 0, kind).optimizer.defaults["fused"] for kind in ("cpu", "cuda", "mps")}
    assert fused == {"cpu": True, "cuda": True, "mps": False}


def test_the_eta_of_a_capped_run_ends_at_its_cap():
    """A time cap (the CPU pack recipe's 55 minutes) ends a slow machine's run before its last step: the ETA
    shown from the first steps is the cap's, not the steps'."""
    import time
    from types import SimpleNamespace

    from rdtf_engine.training.reporting import StepReport

    def report(minutes):
        r = StepReport.__new__(StepReport)
        r.run, r.t_start = SimpleNamespace(req=SimpleNamespace(run=SimpleNamespace(max_minutes=minutes))), time.time()
        return r

    assert report(0.0).capped(9000.0) == 9000.0  # no cap
    assert 3590 < report(60.0).capped(9000.0) <= 3600  # the steps would take 2.5 h: the cap ends it in 1 h
    assert report(60.0).capped(120.0) == 120.0  # the steps end first
    late = report(1.0)
    late.t_start -= 120
    assert late.capped(500.0) == 0.0  # past the cap: stopping now


def test_latent_cache_rendered_ahead_by_a_pool_equals_the_serial_cache(tiny_run):
    """The worker pool renders chunk k+1 while chunk k is encoded; the cache is the same as one built serially
    (clips, captions, key frames, latents), whatever the chunking and the worker count."""
    from rdtf_engine.data.latent_cache import build_latent_cache
    from rdtf_engine.data.sources import RenderPool, open_source
    from rdtf_engine.training.autoencoder import load_autoencoder

    vae, scale = load_autoencoder(tiny_run[0] / "autoencoder", torch.device("cpu"))
    src = open_source("builtin:shapes", 32, num_clips=40, seed=3)
    serial = build_latent_cache(src, vae, scale, torch.device("cpu"), chunk=16)
    phases: dict[str, float] = {}
    with RenderPool(src, workers=2) as pool:
        ahead = build_latent_cache(src, vae, scale, torch.device("cpu"), chunk=16, pool=pool, phases=phases)
    assert ahead.captions == serial.captions and ahead.keyframes == serial.keyframes
    assert ahead.lengths == serial.lengths and ahead.offsets == serial.offsets
    assert torch.allclose(ahead.latents, serial.latents, atol=1e-5)
    assert set(phases) == {"render", "encode", "keyframes"}


def test_word_dropout_of_the_request_reaches_the_captions(tiny_run, tmp_path, make_request, monkeypatch):
    """TrainConfig.word_dropout replaces the paper's 0.2 for a run (a pack's few-word captions lose their subject
    word one time in five otherwise); None keeps 0.2; outside 0…1 is a typed error."""
    from rdtf_engine.training import loop

    seen: list[tuple[float, list[str]]] = []
    real = loop.make_batch

    def spy(*args, **kw):
        batch = real(*args, **kw)
        seen.append((args[6], batch.captions))
        return batch

    monkeypatch.setattr(loop, "make_batch", spy)
    ae = str(tiny_run[0] / "autoencoder")
    train(make_request(tmp_path / "all", steps=2, autoencoder=ae, word_dropout=1.0))
    assert {wd for wd, _ in seen} == {1.0}
    words = [w for _, caps in seen for c in caps for w in c.split()]
    assert words and set(words) == {"#"}  # every word of every text caption dropped ("" = null prompt)
    seen.clear()
    train(make_request(tmp_path / "default", steps=2, autoencoder=ae))
    assert {wd for wd, _ in seen} == {0.2}
    with pytest.raises(InputError, match="word_dropout"):
        make_request(tmp_path / "bad", word_dropout=1.5).validate()


def test_the_motion_term_is_paid_logged_and_saved_with_the_weights(tiny_run, tmp_path):
    """--motion-weight: the frame-difference term (masks.masked_motion_mse) joins the loss of a real run."""
    from safetensors.torch import load_file

    from rdtf_engine.core.config import TrainConfig
    from tests.engine.conftest import tiny_request

    base = tiny_run[0] / "model"
    for name, extra in (("plain", {}), ("moving", {"motion_weight": 5.0})):
        train(tiny_request(tmp_path / name, steps=6, init_from=str(base), checkpoint_every=6, **extra))
    rows = [json.loads(x) for x in (tmp_path / "moving" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("motion_loss", 0) > 0 for r in rows if "loss" in r)
    assert not any("motion_loss" in json.loads(x) for x in (tmp_path / "plain" / "metrics.jsonl").read_text().splitlines())
    assert validate_model_folder(tmp_path / "moving" / "model").motion_weight == 5.0
    assert validate_model_folder(tmp_path / "plain" / "model").motion_weight == 0.0
    # same seed, same batches: only the term differs, and it moved the weights
    plain, moving = ({k: v for f in sorted((tmp_path / n / "model" / "unet").glob("*.safetensors"))
                      for k, v in load_file(f).items()} for n in ("plain", "moving"))
    assert plain.keys() == moving.keys() and any(not torch.equal(plain[k], moving[k]) for k in plain)
    for bad in (-0.1, 101.0):
        with pytest.raises(InputError, match="motion_weight"):
            TrainConfig(motion_weight=bad).validate()
