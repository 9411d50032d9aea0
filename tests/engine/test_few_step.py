"""Few-step deltas and consistency distillation (model/size_deltas.py FewStepDeltas, training/consistency.py): the
network distilled into low-rank companions that draw in a few unguided steps, switched on by the few-step sampler
("lcm") alone, so every other sampler draws with the network exactly as it was."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from rdtf_engine.core.config import ModelConfig, TrainConfig
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.requests import FEW_STEPS, TrainRequest, sampling
from rdtf_engine.diffusion.denoiser import combine_guidance
from rdtf_engine.model.dfgn import DFGN, build_dfgn
from rdtf_engine.model.size_deltas import count, few_step_on, set_few_step
from rdtf_engine.model.store import load_model_folder
from rdtf_engine.training import consistency as cd
from rdtf_engine.training.finetune import apply_trainable
from rdtf_engine.training.loop import train
from tests.engine.delta_fixtures import delta_eps, delta_pair

DRAFT, NATIVE = 4, 8  # latent sides of a 32 px draft and a 64 px native size


def _models() -> tuple[DFGN, DFGN]:
    """(a tiny DFGN with size and few-step deltas, the same network with size deltas only, sharing every weight)."""
    return delta_pair(few_step_rank=4)


def _eps(model: DFGN, side: int, grad: bool = False) -> torch.Tensor:
    return delta_eps(model, side, grad)


@pytest.mark.parametrize("grad", [False, True], ids=["sampling (merged)", "training (hooked)"])
def test_switched_off_the_network_is_itself_exactly_and_on_the_deltas_act_at_every_size(grad):
    both, sized = _models()
    assert count(both, "few_step_deltas") > 0 and not few_step_on(both)
    for side in (DRAFT, NATIVE):
        assert torch.equal(_eps(both, side, grad), _eps(sized, side, grad))  # off: bit for bit
    set_few_step(both, True)
    twin = copy.deepcopy(both)
    for side in (DRAFT, NATIVE):
        assert (_eps(both, side, grad) - _eps(sized, side, grad)).abs().max() > 1e-3
    set_few_step(both, False)
    assert few_step_on(twin) and torch.equal(_eps(both, NATIVE, grad), _eps(sized, NATIVE, grad))
    assert not set_few_step(sized, True)  # nothing to switch


def test_merged_weights_nest_inside_the_size_deltas_and_are_put_back():
    """At the native size both kinds act: the merged sampling path (W + ΔW_size + ΔW_fast swapped in and out) must
    equal the hooked training path, and every layer must hold its own weight afterwards."""
    both, _ = _models()
    before = {k: v.clone() for k, v in both.state_dict().items()}
    set_few_step(both, True)
    for side in (DRAFT, NATIVE):
        torch.testing.assert_close(_eps(both, side, grad=False), _eps(both, side, grad=True), rtol=1e-4, atol=1e-5)
    after = both.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_the_grid_and_the_boundary_condition_are_the_few_step_samplers():
    from diffusers import LCMScheduler

    from rdtf_engine.diffusion.schedule import LCM_T_SCALE

    grid = cd.grid_timesteps()
    assert grid[:3].tolist() == [19, 39, 59] and int(grid[-1]) == 999 and len(grid) == cd.GRID
    sched = LCMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="linear",
                         original_inference_steps=cd.GRID, timestep_scaling=LCM_T_SCALE)
    sched.set_timesteps(FEW_STEPS)
    assert set(sched.timesteps.tolist()) <= set(grid.tolist())  # the sampler steps on the grid the run distils on
    t = torch.tensor([0, 19, 259, 999])
    c_skip, c_out = cd.boundary_scalings(t)
    for i, ti in enumerate(t.tolist()):
        ref_skip, ref_out = sched.get_scalings_for_boundary_condition_discrete(ti)
        assert float(c_skip[i]) == pytest.approx(float(ref_skip), rel=1e-6)
        assert float(c_out[i]) == pytest.approx(float(ref_out), rel=1e-6, abs=1e-12)
    assert float(c_skip[0]) == 1.0 and float(c_out[0]) == 0.0  # f(x, 0) = x
    start, prev = cd.step_pairs(torch.tensor([0, 1, 49]))
    assert start.tolist() == [19, 39, 999] and prev.tolist() == [0, 19, 979]


def test_pseudo_huber_counts_the_valid_frames_alone():
    pred = torch.zeros(1, 4, 3, 2, 2)
    target = torch.full_like(pred, 0.3)
    target[:, :, 2] = 100.0  # a padded frame: must not count
    valid = torch.tensor([[1.0, 1.0, 0.0]])
    expect = (0.3**2 + cd.HUBER_C**2) ** 0.5 - cd.HUBER_C
    assert float(cd.pseudo_huber(pred, target, valid)) == pytest.approx(expect, rel=1e-6)


def test_the_teacher_is_guided_as_the_pipeline_guides():
    """Rows ∅∅ / img∅ / img·txt combined as ``combine_guidance`` does; with no frame given, text guidance alone."""
    torch.manual_seed(3)
    model = build_dfgn("tiny").eval()
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2, 4, 8, 4, 4, generator=gen)
    states, null = torch.randn(2, 32, 384, generator=gen), torch.randn(1, 32, 384, generator=gen)
    tmask, nmask = torch.ones(2, 32), torch.ones(1, 32)
    cond = torch.randn(2, 4, 8, 4, 4, generator=gen)
    cond[1] = 0  # the second clip: no frame given
    fm = torch.ones(2, 8, dtype=torch.bool)
    t = torch.tensor([300, 600])
    with torch.no_grad():
        got = cd.guided_teacher_eps(model, x, t, states, tmask, (null, nmask), cond, fm, (4.0, 5.0))
        for i in range(2):
            rows = model(x[i:i + 1].repeat(3, 1, 1, 1, 1), t[i:i + 1].repeat(3), torch.cat([null, null, states[i:i + 1]]),
                         torch.cat([torch.zeros_like(cond[i:i + 1]), cond[i:i + 1], cond[i:i + 1]]),
                         text_mask=torch.cat([nmask, nmask, tmask[i:i + 1]]))
            ref = combine_guidance(rows, torch.tensor([4.0, 5.0]))
            torch.testing.assert_close(got[i:i + 1], ref, rtol=1e-4, atol=1e-5)
        two = model(x[1:].repeat(2, 1, 1, 1, 1), t[1:].repeat(2), torch.cat([null, states[1:]]),
                    torch.zeros_like(cond[:2]), text_mask=torch.ones(2, 32))
        torch.testing.assert_close(got[1:], combine_guidance(two, torch.tensor([4.0, 5.0])), rtol=1e-4, atol=1e-5)


def test_the_loss_trains_the_few_step_deltas_alone_and_leaves_them_switched_off():
    both, _ = _models()
    both.train()
    n = apply_trainable(both, "few-step")
    assert n == count(both, "few_step_deltas")
    gen = torch.Generator().manual_seed(5)
    z0 = torch.randn(2, 4, 8, NATIVE, NATIVE, generator=gen)
    valid = torch.ones(2, 8)
    alphas = torch.linspace(0.9991, 0.0047, 1000)
    loss = cd.consistency_loss(both, z0, torch.zeros_like(z0), valid, torch.randn(2, 32, 384), torch.ones(2, 32),
                               (torch.zeros(1, 32, 384), torch.ones(1, 32)), torch.randn_like(z0),
                               torch.tensor([3, 40]), alphas, (4.0, 5.0))
    loss.backward()
    assert torch.isfinite(loss) and float(loss.detach()) > 0 and not few_step_on(both)
    for name, p in both.named_parameters():
        assert (p.grad is not None) == name.startswith("few_step_deltas.")
    assert any(float(p.grad.abs().max()) > 0 for p in both.few_step_deltas.parameters())


def test_config_request_and_sampler_checks(tmp_path):
    with pytest.raises(InputError, match="objective must be one of"):
        TrainConfig(objective="magic").validate()
    with pytest.raises(InputError, match="goes with trainable few-step"):
        TrainConfig(objective="consistency").validate()
    with pytest.raises(InputError, match="goes with trainable few-step"):
        TrainConfig(trainable="few-step").validate()
    with pytest.raises(InputError, match="few_step_rank must be between"):
        ModelConfig(few_step_rank=-1).validate()
    asked = TrainRequest.of(data="builtin:shapes", out=str(tmp_path / "r"), objective="consistency",
                            trainable="few-step", few_step_rank=4)
    with pytest.raises(InputError, match="needs the model it distils"):
        asked.validate()
    # a fine-tune never inherits its base's few-step deltas: distilled for the base, they would not fit it
    base = ModelConfig(preset="tiny", size=64, few_step_rank=8)
    assert ModelConfig().resolved(base).few_step_rank == 0 and ModelConfig(few_step_rank=8).resolved(base).few_step_rank == 8
    assert sampling("lcm", None, False) == ("lcm", FEW_STEPS) and sampling("lcm", None, True) == ("lcm", FEW_STEPS)
    assert sampling("lcm", 2, False) == ("lcm", 2)
    # a model whose card gives the few-step sampler's steps draws with them unless the request asks others
    assert sampling("lcm", None, False, 8) == ("lcm", 8) and sampling("lcm", 2, True, 8) == ("lcm", 2)
    assert sampling("dpm", None, False, 8) == ("dpm", 20)


def test_a_distillation_run_makes_a_model_that_draws_in_few_steps_and_as_before_otherwise(tiny_run, tmp_path,
                                                                                           monkeypatch):
    """A real run: the tiny 32 px model distilled into rank-4 few-step deltas (its own network frozen), then drawn
    with the few-step sampler (one unguided row a step) and with DPM-Solver++ (the base's drawing, exactly)."""
    import json

    from rdtf_engine.diffusion.pipeline import SampleParams, StickerPipeline
    from tests.engine.conftest import tiny_request

    base = tiny_run[0] / "model"
    events: list = []
    out = tmp_path / "fast"
    train(tiny_request(out, steps=6, init_from=str(base), objective="consistency", trainable="few-step",
                       few_step_rank=4, checkpoint_every=6, sample_every=3, lr=3e-3), on_event=events.append)
    messages = [getattr(e, "message", "") for e in events]
    assert any("distilling the network into its few-step deltas" in m and "text 4" in m for m in messages)
    assert list((out / "samples").glob("*.png"))  # previews drawn with the few-step sampler
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text("utf-8").splitlines()]
    held = [r["val"]["all"] for r in rows if "val" in r]  # the held-out distillation loss, step 0 and 6
    assert len(held) == 2 and all(np.isfinite(held))
    fast, _, card = load_model_folder(out / "model")
    ref, _, ref_card = load_model_folder(base)
    assert card.few_step_steps == FEW_STEPS and card.few_step_guidance == 4.0 and fast.config.few_step_delta_rank == 4
    assert card.base_model == ref_card.name and card.size == ref_card.size
    from rdtf_engine.model.store import list_models  # the model list (the app's Fast box) says it draws fast

    listed = {(m["name"], m["builtin"]): m.get("few_step_steps") for m in list_models(extra_dirs=[str(tmp_path)])}
    assert listed[("fast", False)] == FEW_STEPS and listed[("default", True)] == 0
    fast, ref = fast.float().eval(), ref.float().eval()
    assert torch.equal(_eps(fast, DRAFT), _eps(ref, DRAFT))  # the network itself: untouched
    assert any(float(p.detach().abs().max()) > 0 for n, p in fast.named_parameters() if n.endswith("up.weight"))

    monkeypatch.setenv("RDTF_CPU_RUNTIME", "torch")  # eager: every denoiser call goes through the hook below
    pipe = StickerPipeline.from_pretrained(out / "model", device="cpu")
    plain = StickerPipeline.from_pretrained(base, device="cpu")
    params = {"prompt": "a red circle", "frames": 4, "size": 32, "seed": 5}
    assert np.array_equal(pipe(SampleParams(**params, steps=3)), plain(SampleParams(**params, steps=3)))
    rows_seen: list[tuple[int, bool, int]] = []  # (rows, few-step deltas on, latent side) of each denoiser call
    pipe.unet.register_forward_pre_hook(
        lambda m, args: rows_seen.append((int(args[0].shape[0]), few_step_on(m), int(args[0].shape[-1]))))
    clip = pipe(SampleParams(**params, steps=FEW_STEPS, scheduler="lcm"))
    assert clip.shape == (4, 32, 32, 4) and clip.dtype == np.uint8
    assert rows_seen == [(1, True, 4)] * FEW_STEPS  # one unguided row a step, the deltas on
    assert not few_step_on(pipe.unet)  # … and off again after the sample
    again = pipe(SampleParams(**params, steps=FEW_STEPS, scheduler="lcm"))
    assert np.array_equal(clip, again)  # seeded: LCM's fresh noise between steps comes from the sample's generator
    with pytest.raises(InputError, match="needs a model distilled for it"):
        plain(SampleParams(**params, steps=FEW_STEPS, scheduler="lcm"))
    # a card's refine_sampler "lcm": the draft as asked (3 guided DPM-Solver++ steps at 32 px, the deltas off), the
    # refinement at 64 px by the few-step deltas (refine_strength 0.4 of 4 steps: 2 unguided ones)
    pipe.card.size, pipe.card.draft_size, pipe.card.refine_sampler = 64, 32, "lcm"
    rows_seen.clear()
    pipe(SampleParams(**{**params, "size": 64}, steps=3))
    assert [(r, on, s) for r, on, s in rows_seen] == [(2, False, 4)] * 3 + [(1, True, 8)] * 2
    assert not few_step_on(pipe.unet)
    plain.card.size, plain.card.draft_size, plain.card.refine_sampler = 64, 32, "lcm"
    with pytest.raises(InputError, match="needs a model distilled for it"):
        plain(SampleParams(**{**params, "size": 64}, steps=3))
    with pytest.raises(InputError, match="takes 1 to 50 steps"):
        pipe(SampleParams(**params, steps=60, scheduler="lcm"))
    # `rdtf generate --sampler lcm` without steps runs the card's few_step_steps (the recipe records them)
    from rdtf_engine.core.requests import GenerateRequest
    from rdtf_engine.jobs.api import generate

    card_file = out / "model" / "config.json"
    card_file.write_text(card_file.read_text("utf-8").replace('"few_step_steps": 4', '"few_step_steps": 3'), "utf-8")
    made = generate(GenerateRequest(prompt="a red circle", model=str(out / "model"), frames=4, size=32, seed=5,
                                    scheduler="lcm", device="cpu"))
    assert (made.recipe["scheduler"], made.recipe["steps"]) == ("lcm", 3)


def test_the_sampling_task_mix_is_fixed_and_weights_generation_by_use():
    import random

    from rdtf_engine.training.curriculum import SAMPLING_WEIGHTS, Curriculum, sample_task, task_weights
    from rdtf_engine.training.masks import TASKS

    assert set(SAMPLING_WEIGHTS) == set(TASKS)
    for step in (0, 500, 10_000):  # fixed: no schedule, no feedback from the loss
        assert task_weights("sampling", step, 1000) == SAMPLING_WEIGHTS
    rng = random.Random(0)
    draws = [sample_task(SAMPLING_WEIGHTS, rng) for _ in range(8000)]
    assert draws.count("t2v") / len(draws) == pytest.approx(3 / 8, abs=0.02)  # 3 of 8 weight units
    assert draws.count("i2v") / len(draws) == pytest.approx(0.5 / 8, abs=0.01)
    from rdtf_engine.core.config import CurriculumConfig

    cur = Curriculum(CurriculumConfig(mode="sampling", horizon=10), seed=1)
    assert cur.next_task(3)[1] == SAMPLING_WEIGHTS


def test_the_cli_makes_a_consistency_run_of_the_few_step_deltas_on_the_sampling_mix():
    from rdtf_engine.cli.main import build_parser
    from rdtf_engine.cli.train import request_from_args

    def asked(*flags: str):
        return request_from_args(build_parser().parse_args(["train", "--data", "p", "--out", "r", "--device", "cpu",
                                                            "--init-from", "default", *flags]))

    req = asked("--objective", "consistency")
    assert (req.train.objective, req.train.trainable, req.model.few_step_rank, req.train.curriculum) == (
        "consistency", "few-step", 16, "sampling")
    req = asked("--objective", "consistency", "--few-step-rank", "8", "--curriculum", "adaptive")
    assert (req.model.few_step_rank, req.train.curriculum) == (8, "adaptive")
    assert asked().train.objective == "noise" and asked().model.few_step_rank is None


def test_a_card_names_only_the_few_step_sampler_for_its_refinement():
    import json
    from pathlib import Path

    from rdtf_engine.core.errors import ModelError
    from rdtf_engine.core.model_schema import CARD_SCHEMA, check_object

    card = json.loads((Path(__file__).parents[2] / "resources/models/default/config.json").read_text("utf-8"))
    assert check_object({**card, "refine_sampler": "lcm", "few_step_steps": 4}, CARD_SCHEMA, "card")[
        "refine_sampler"] == "lcm"
    with pytest.raises(ModelError, match="refine_sampler"):
        check_object({**card, "refine_sampler": "dpm"}, CARD_SCHEMA, "card")
    with pytest.raises(ModelError, match="few_step_steps"):
        check_object({**card, "few_step_steps": 51}, CARD_SCHEMA, "card")
