"""Two sizes in one model: training alternates the model's size and its draft size, and text → video drafts at
the small size and refines at the large one (ModelConfig.draft_size, ModelCard.draft_size)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rdtf_engine.core.config import ModelCard, ModelConfig
from rdtf_engine.core.errors import InputError
from rdtf_engine.diffusion.pipeline import SampleParams, StickerPipeline, sampled_steps
from rdtf_engine.model.store import validate_model_folder
from rdtf_engine.training.loop import train


def test_draft_size_must_lie_below_the_size_and_a_fine_tune_inherits_it_only_below_its_base():
    ModelConfig(size=64, draft_size=32).validate()
    for bad in (64, 96, 20, 36):
        with pytest.raises(InputError, match="draft_size"):
            ModelConfig(size=64, draft_size=bad).validate()
    base = ModelConfig(preset="small", size=256, draft_size=128).resolved()
    assert ModelConfig().resolved(base).draft_size == 128  # a fine-tune at the base's size keeps its draft
    assert ModelConfig(size=128).resolved(base).draft_size == 0  # … one at the draft size has none
    assert ModelConfig(size=128, draft_size=64).resolved(base).draft_size == 64  # … unless it names one
    assert ModelConfig().resolved().draft_size == 0  # from scratch: off
    card = ModelCard(name="m", preset="small", size=256, num_frames=8, draft_size=128)
    assert card.model_config().draft_size == 128


@pytest.fixture(scope="module")
def two_size_run(tiny_run, tmp_path_factory):
    """The tiny 32 px model fine-tuned at 64 px with a 32 px draft size for 4 steps, the batches' latent sides
    recorded: (run_dir, sides, result)."""
    from rdtf_engine.training import loop
    from tests.engine.conftest import tiny_request

    sides: list[int] = []
    real = loop.make_batch

    def spy(cache, *a, **kw):
        sides.append(int(cache.latents.shape[-1]))
        return real(cache, *a, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(loop, "make_batch", spy)
    try:
        out = tmp_path_factory.mktemp("runs") / "two"
        res = train(tiny_request(out, steps=4, size=64, draft_size=32, init_from=str(tiny_run[0] / "model"),
                                 checkpoint_every=2))
    finally:
        mp.undo()
    return out, sides, res


def test_draft_every_picks_which_steps_train_at_the_draft_size():
    from rdtf_engine.core.config import TrainConfig
    from rdtf_engine.training.data_prep import TrainData, TwoSizeTrainData

    class Cache:  # stands for a LatentCache: only its summary is read when the two are paired
        def summary(self):
            return {"frames": 3}

    big, small = Cache(), Cache()
    for every, want in ((2, [big, small] * 3), (3, [big, big, small] * 2)):
        data = TwoSizeTrainData(TrainData(big, [0], [1], None, 1.0, {}), small, every)
        seen = []
        for step in range(6):
            data.at_step(step)
            seen.append(data.cache)
        assert seen == want and data.heldout == (big, [1])  # held-out clips: always the model's size
    with pytest.raises(InputError, match="draft_every"):
        TrainConfig(draft_every=1).validate()


def test_training_alternates_the_two_sizes_and_the_card_records_the_draft(two_size_run):
    out, sides, res = two_size_run
    assert res["step"] == 4
    assert sides == [8, 4, 8, 4]  # 64 px → 8 × 8 latents on even steps, 32 px → 4 × 4 on odd ones
    card = validate_model_folder(out / "model")
    assert (card.size, card.draft_size) == (64, 32)
    assert json.loads((out / "model" / "config.json").read_text())["draft_size"] == 32
    assert card.data_summary["draft_frames"] == card.data_summary["frames"]  # the same clips at both sizes


def test_text_to_video_drafts_small_then_refines_from_the_upsampled_draft(two_size_run, monkeypatch):
    pipe = StickerPipeline.from_pretrained(two_size_run[0] / "model", "cpu")
    calls = []
    real = pipe._windows

    def spy(given, known, run, st, init, offset):
        calls.append((tuple(given.shape), run, None if init is None else tuple(init.shape), offset))
        return real(given, known, run, st, init, offset)

    monkeypatch.setattr(pipe, "_windows", spy)
    ticks: list[tuple[int, int]] = []
    out = pipe(SampleParams("a blue star spinning", 4, 64, steps=5, seed=2),
               callback=lambda i, n: ticks.append((i, n)))
    refine = sampled_steps(5, pipe.card.refine_strength)
    assert out.shape == (4, 64, 64, 4) and out.dtype == np.uint8
    # the draft on the 4 × 4 grid from pure noise, then the refinement on 8 × 8 from the upsampled draft
    assert calls == [((4, 4, 4, 4), 5, None, 0), ((4, 4, 8, 8), refine, (4, 4, 8, 8), 5)]
    assert ticks[0] == (0, 5 + refine) and [i for i, _ in ticks] == list(range(5 + refine + 1))
    again = pipe(SampleParams("a blue star spinning", 4, 64, steps=5, seed=2))
    assert np.array_equal(out, again)  # seed-deterministic through both stages

    calls.clear()  # frames given: no draft, the model's own size from the given frames
    lock = np.zeros((64, 64, 4), np.uint8)
    lock[8:40, 8:40] = (10, 200, 30, 255)
    res = pipe(SampleParams("a blue star spinning", 4, 64, steps=4, seed=2, cond_frames=[lock, None, None, None]))
    assert [c[0] for c in calls] == [(4, 4, 8, 8)] and np.array_equal(res[0], lock)


def test_the_live_preview_follows_the_draft_and_a_single_stage_throughout(two_size_run):
    """A drafted sample previews its draft's estimates only (the refinement's full-size decodes cost a second each
    on a CPU), shown at the output size; with frames given there is one stage, previewed throughout."""
    pipe = StickerPipeline.from_pretrained(two_size_run[0] / "model", "cpu")
    seen: list[tuple[int, tuple]] = []
    pipe(SampleParams("a blue star spinning", 4, 64, steps=10, seed=2, preview_every=2),
         preview=lambda step, frames: seen.append((step, frames.shape)))
    # the draft's steps 2, 4, 6, 8 of 10, at the output size; none of the refinement's 4 (12 was its preview)
    assert seen == [(k, (4, 64, 64, 4)) for k in (2, 4, 6, 8)]
    seen.clear()
    lock = np.zeros((64, 64, 4), np.uint8)
    pipe(SampleParams("a blue star spinning", 4, 64, steps=6, seed=2, preview_every=1, strength=1.0,
                      cond_frames=[lock, None, None, None]),
         preview=lambda step, frames: seen.append((step, frames.shape)))
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5]


def test_a_model_without_a_draft_size_samples_as_before(two_size_run, tmp_path):
    """The same weights with draft_size 0 in the card: one stage at the model's size."""
    folder = tmp_path / "flat"
    shutil.copytree(two_size_run[0] / "model", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["draft_size"] = 0
    (folder / "config.json").write_text(json.dumps(cfg))
    pipe = StickerPipeline.from_pretrained(folder, "cpu")
    ticks: list[int] = []
    pipe(SampleParams("a blue star spinning", 4, 64, steps=5, seed=2), callback=lambda i, n: ticks.append(n))
    assert set(ticks) == {5}


def test_a_card_with_draft_given_drafts_image_and_text_to_video_too(two_size_run, tmp_path, monkeypatch):
    """``draft_given``: frames given are downscaled into the draft and locked in both stages; all frames given:
    nothing to draft."""
    folder = tmp_path / "dg"
    shutil.copytree(two_size_run[0] / "model", folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "draft_given": True}))
    pipe = StickerPipeline.from_pretrained(folder, "cpu")
    calls = []
    real = pipe._windows

    def spy(given, known, run, st, init, offset):
        calls.append((tuple(given.shape), tuple(known), run, None if init is None else tuple(init.shape)))
        return real(given, known, run, st, init, offset)

    monkeypatch.setattr(pipe, "_windows", spy)
    lock = np.zeros((64, 64, 4), np.uint8)
    lock[8:40, 8:40] = (10, 200, 30, 255)
    res = pipe(SampleParams("a blue star spinning", 4, 64, steps=4, seed=2, cond_frames=[lock, None, None, None]))
    refine = sampled_steps(4, pipe.card.refine_strength)
    known = (True, False, False, False)
    assert calls == [((4, 4, 4, 4), known, 4, None), ((4, 4, 8, 8), known, refine, (4, 4, 8, 8))]
    assert np.array_equal(res[0], lock)
    calls.clear()
    pipe(SampleParams("a blue star spinning", 2, 64, steps=4, seed=2, cond_frames=[lock, lock]))
    assert [c[0] for c in calls] == [(2, 4, 8, 8)]


def test_refine_guidance_draws_the_refinement_alone_at_its_scale(two_size_run, tmp_path, monkeypatch):
    """``refine_guidance`` 1: text → video's draft keeps the request's guidance (two rows a step), its refinement
    runs the conditional row alone; with a frame given (``draft_given``) both stages keep the request's guidance
    (three rows), which holds the given character."""
    folder = tmp_path / "rg"
    shutil.copytree(two_size_run[0] / "model", folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "draft_given": True, "refine_guidance": 1.0}))
    pipe = StickerPipeline.from_pretrained(folder, "cpu")
    assert pipe.card.refine_guidance == 1.0
    rows: list[tuple[int, int]] = []  # (latent side, rows) per denoiser call
    real = pipe.unet.forward
    monkeypatch.setattr(pipe.unet, "forward",
                        lambda x, *a, **k: rows.append((x.shape[-1], x.shape[0])) or real(x, *a, **k))
    refine = sampled_steps(5, pipe.card.refine_strength)
    pipe(SampleParams("a blue star spinning", 4, 64, steps=5, seed=2, guidance_text=4.0))
    assert rows == [(4, 2)] * 5 + [(8, 1)] * refine
    rows.clear()
    lock = np.zeros((64, 64, 4), np.uint8)
    lock[8:40, 8:40] = (10, 200, 30, 255)
    res = pipe(SampleParams("a blue star spinning", 4, 64, steps=5, seed=2, guidance_text=4.0, guidance_image=5.0,
                            cond_frames=[lock, None, None, None]))
    assert rows == [(4, 3)] * 5 + [(8, 3)] * refine and np.array_equal(res[0], lock)


def test_an_evaluation_may_refine_at_another_guidance_than_the_card(two_size_run, capsys):
    from rdtf_engine.cli.main import main
    from rdtf_engine.core.requests import with_refine_guidance

    card = validate_model_folder(two_size_run[0] / "model")
    assert with_refine_guidance(card) is card
    assert with_refine_guidance(card, 1).refine_guidance == 1.0 and card.refine_guidance == 0.0
    for bad in (-1, 31):
        with pytest.raises(InputError, match="refine guidance"):
            with_refine_guidance(card, bad)
    model = str(two_size_run[0] / "model")
    capsys.readouterr()
    assert main(["eval", "--model", model, "--data", "builtin:shapes", "--refine-guidance", "-1"]) == 2
    assert main(["eval-pack", "--model", model, "--pack", model, "--refine-guidance", "99"]) == 2
    err = capsys.readouterr().err
    assert "got -1" in err and "got 99" in err  # both refused for the guidance, before anything is drawn
