"""Training recipes: "train on my pack" fine-tunes a base model (the shipped one by default) end to end on CPU;
``--trainable`` keeps all but the chosen layers fixed; the finished run is listed as a model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from rdtf_engine.cli.main import main
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.recipes import APP_RECIPES, recipe
from rdtf_engine.core.requests import TrainRequest, to_dict
from rdtf_engine.training.finetune import ATTENTION_PARTS, TEXT_PARTS, apply_trainable


def tiny_pack(folder, n: int = 4):
    """n single-colour squares on transparency, with captions: a sticker pack in miniature."""
    folder.mkdir(parents=True)
    rows = ["file,caption"]
    for i in range(n):
        a = np.zeros((48, 48, 4), np.uint8)
        a[8 + 4 * i : 32 + 4 * i, 10:38] = (60 * i, 200 - 40 * i, 90, 255)
        Image.fromarray(a, "RGBA").save(folder / f"s{i}.png")
        rows.append(f"s{i}.png,a square number {i}")
    (folder / "captions.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_recipes_are_requests_the_cli_and_app_share():
    cpu, gpu = recipe("pack", "cpu"), recipe("pack", "cuda")
    assert cpu.init_from == gpu.init_from == "default" and not cpu.from_scratch
    assert cpu.model.preset is None and cpu.model.size is None  # the base model's architecture
    assert cpu.train.trainable == gpu.train.trainable == "all"
    assert cpu.train.decoder_steps > 0 and cpu.max_minutes == 50 and gpu.max_minutes == 0  # the CPU run is capped
    assert gpu.mixed_precision == "bf16" and gpu.train.batch_size > cpu.train.batch_size
    req = cpu.request("data/pack", "runs/x", device="cpu")
    assert (req.train.data, req.run.out, req.run.device, req.init_from) == ("data/pack", "runs/x", "cpu", "default")
    assert req.run.max_minutes == 50
    assert TrainRequest.from_dict(json.loads(json.dumps(to_dict(req)))) == req  # what the app sends
    assert all(recipe(n).from_scratch for n in APP_RECIPES[1:])
    with pytest.raises(InputError, match="unknown recipe"):
        recipe("huge")


def test_pack_recipe_fine_tunes_a_base_on_a_tiny_pack(tiny_run, tmp_path):
    """`rdtf train --data PACK --out R --init-from BASE` with the CPU pack recipe and `--trainable attention`: the
    base's architecture and autoencoder, only attention/temporal weights move, the recipe's time cap is kept
    unless --max-minutes is given, the run is listed as a model and generates."""
    from rdtf_engine.core.paths import user_runs_dir
    from rdtf_engine.jobs.api import GenerateRequest, generate, list_models
    from rdtf_engine.model.store import load_model_folder, validate_model_folder

    base = tiny_run[0] / "model"
    out = user_runs_dir() / "my-pack"
    rc = main(["train", "--data", str(tiny_pack(tmp_path / "pack")), "--out", str(out), "--recipe", "pack",
               "--init-from", str(base), "--steps", "3", "--checkpoint-every", "3", "--device", "cpu",
               "--trainable", "attention", "--decoder-steps", "0"])
    assert rc == 0
    saved = TrainRequest.from_dict(json.loads((out / "run.json").read_text()))
    assert (saved.model.preset, saved.model.size, saved.init_from) == ("tiny", 32, str(base))
    assert (saved.train.trainable, saved.train.batch_size, saved.train.steps) == ("attention", 2, 3)
    assert saved.run.max_minutes == 50
    # text → video gets the base's late task mix and whole captions (the CPU recipe's measured choice)
    assert saved.train.continue_curriculum is True and saved.train.word_dropout == 0.0
    assert not (out / "autoencoder").exists()  # the base's autoencoder, not a new one
    before, _, _ = load_model_folder(base)
    after, _, card = load_model_folder(out / "model")
    assert card.base_model == validate_model_folder(base).name and card.steps == 3
    moved = {k for k, v in after.state_dict().items() if not torch.equal(v, before.state_dict()[k])}
    assert moved and all(any(p in k for p in ATTENTION_PARTS) for k in moved), sorted(moved)[:5]
    assert "my-pack" in [m["name"] for m in list_models()]
    res = generate(GenerateRequest(prompt="a square number 2", model="my-pack", frames=4, size=32, steps=2, seed=0))
    assert res.frames.shape == (4, 32, 32, 4)
    # the recipe's text guidance travels in the card: generate draws with it unless told otherwise, and says so
    assert card.guidance_text == recipe("pack", "cpu").train.guidance_text == 8.0
    assert res.recipe["guidance_text"] == 8.0
    assert [m["guidance_text"] for m in list_models() if m["name"] == "my-pack"] == [8.0]
    told = generate(GenerateRequest(prompt="a square number 2", model="my-pack", frames=4, size=32, steps=2, seed=0,
                                    guidance_text=3.0))
    assert told.recipe["guidance_text"] == 3.0 and not np.array_equal(told.frames, res.frames)


def test_decoder_steps_tunes_the_decoder_alone_and_a_resume_reuses_it(tiny_run, tmp_path):
    """--decoder-steps: the fine-tune's model carries a decoder tuned on the pack while the encoder (so the latent
    space the DFGN lives in, and its scale) stays the base's exactly; resuming the run reuses the tuned decoder;
    a run from scratch refuses the option (it trains its whole autoencoder)."""
    from rdtf_engine.model.store import load_model_folder

    base = tiny_run[0] / "model"
    pack, out = tiny_pack(tmp_path / "pack"), tmp_path / "run"
    args = ["train", "--data", str(pack), "--out", str(out), "--init-from", str(base), "--batch-size", "2",
            "--decoder-steps", "3", "--checkpoint-every", "2", "--device", "cpu"]
    assert main([*args, "--steps", "2"]) == 0
    assert TrainRequest.from_dict(json.loads((out / "run.json").read_text())).train.decoder_steps == 3
    ae = json.loads((out / "autoencoder" / "ae.json").read_text())
    assert (ae["steps"], ae["decoder_only"], ae["fine_tuned"]) == (3, True, True)
    _, vae0, _ = load_model_folder(base)
    _, vae1, _ = load_model_folder(out / "model")
    assert vae1.config.scaling_factor == vae0.config.scaling_factor
    enc0, enc1 = vae0.state_dict(), vae1.state_dict()
    changed = {k for k in enc0 if not torch.equal(enc0[k], enc1[k])}
    assert changed and all(k.startswith(("decoder.", "post_quant_conv.")) for k in changed), sorted(changed)[:3]
    tuned = (out / "autoencoder" / "ae.json").stat().st_mtime_ns
    assert main(["train", "--out", str(out), "--resume", "--steps", "3", "--device", "cpu"]) == 0
    assert (out / "autoencoder" / "ae.json").stat().st_mtime_ns == tuned  # reused, not tuned again
    _, vae2, _ = load_model_folder(out / "model")
    assert all(torch.equal(v, vae1.state_dict()[k]) for k, v in vae2.state_dict().items())
    with pytest.raises(InputError, match="decoder_steps"):
        TrainRequest.of(data="d", out="o", decoder_steps=5).validate()
    with pytest.raises(InputError, match="decoder_steps"):
        TrainRequest.of(data="d", out="o", init_from="default", decoder_steps=-1).validate()
    assert recipe("pack", "cuda").train.decoder_steps > recipe("pack", "cpu").train.decoder_steps > 0


def test_trainable_text_moves_only_the_caption_mapping(tiny_run):
    """"text": the text projection and the text cross-attention's keys and values learn, nothing else."""
    from rdtf_engine.model.store import load_model_folder

    unet, _, _ = load_model_folder(tiny_run[0] / "model")
    n = apply_trainable(unet, "text")
    learning = [k for k, p in unet.named_parameters() if p.requires_grad]
    assert n == sum(p.numel() for p in unet.parameters() if p.requires_grad) and learning
    assert all(any(part in f".{k}" for part in TEXT_PARTS) for k in learning)
    assert any("attn2.to_k" in k for k in learning) and not any("attn1" in k or "attn2.to_q" in k for k in learning)
    assert apply_trainable(unet, "all") == sum(p.numel() for p in unet.parameters())


def test_request_parts_flat_forms_and_model_config(tmp_path):
    """Older flat requests (app, train_config.json) read into the parts; a ModelConfig builds its DFGN; the run
    file prefers run.json and falls back to the legacy files."""
    from rdtf_engine.core.config import ModelConfig
    from rdtf_engine.core.run_file import read_run_file, write_run_file
    from rdtf_engine.model.dfgn import build_dfgn

    flat = {"data": "d", "out": "o", "preset": "small", "size": 64, "steps": 3000, "resume": True, "unknown": 1}
    req = TrainRequest.from_dict(flat)
    assert (req.model.preset, req.model.size, req.train.steps, req.run.resume) == ("small", 64, 3000, True)
    assert TrainRequest.from_dict(to_dict(req)) == req
    with pytest.raises(InputError, match="unknown training option"):
        TrainRequest.of(data="d", nonsense=1)
    with pytest.raises(InputError, match="trainable"):
        TrainRequest.of(data="d", trainable="some").validate()
    assert ModelConfig().resolved() == ModelConfig("tiny", 64, 8, "sti", "off", draft_size=0, size_delta_rank=0,
                                                   style_delta_rank=0, few_step_rank=0)
    assert ModelConfig(size=32).resolved(ModelConfig("small", 128, 8, "sti", True)).reference_attention == "on"
    assert dict(build_dfgn(ModelConfig("tiny", temporal="conv3d")).config) == dict(build_dfgn("tiny", "conv3d").config)
    (tmp_path / "studio_request.json").write_text(json.dumps(flat))
    assert read_run_file(tmp_path) == req
    write_run_file(tmp_path, TrainRequest.of(data="new", out="o"))
    assert read_run_file(tmp_path).train.data == "new" and read_run_file(tmp_path / "none") is None


def test_train_flags_override_the_recipe_and_keep_what_they_do_not_name():
    """`--word-dropout` overrides the recipe's caption word dropout; the CPU pack recipe's own continue_curriculum
    is not undone by the absent `--continue-curriculum` flag; a recipe without them keeps the paper's defaults."""
    from rdtf_engine.cli.main import build_parser
    from rdtf_engine.cli.train import request_from_args

    def req(*flags):
        return request_from_args(build_parser().parse_args(["train", "--data", "p", "--out", "r", "--device", "cpu",
                                                            *flags]))

    pack = req("--recipe", "pack")
    assert pack.train.word_dropout == 0.0 and pack.train.continue_curriculum is True
    assert req("--recipe", "pack", "--word-dropout", "0.3").train.word_dropout == 0.3
    custom = req("--recipe", "custom")
    assert custom.train.word_dropout is None and custom.train.continue_curriculum is False
    assert req("--recipe", "custom", "--init-from", "default", "--continue-curriculum").train.continue_curriculum
    anchored = req("--init-from", "default", "--anchor", "default", "--anchor-weight", "3")
    assert (anchored.train.anchor, anchored.train.anchor_weight) == ("default", 3.0)
    assert (custom.train.anchor, custom.train.anchor_weight) == (None, 1.0)  # off unless named
    assert req("--init-from", "default", "--motion-weight", "0.5").train.motion_weight == 0.5
    grown = req("--init-from", "default", "--size", "256", "--draft-size", "128", "--size-delta-rank", "32",
                "--trainable", "deltas")
    assert (grown.model.size_delta_rank, grown.train.trainable) == (32, "deltas")
    assert custom.train.motion_weight == 0.0


def test_a_model_s_own_image_guidance_travels_in_its_card(tiny_run, tmp_path, monkeypatch):
    """``rdtf train --image-guidance G`` saves G in the card; frames given to that model are then held with G
    unless a request names another, and the sticker's recipe records the value used."""
    from rdtf_engine.core.config import TrainConfig
    from rdtf_engine.core.requests import DEFAULT_GUIDANCE_IMAGE, GenerateRequest
    from rdtf_engine.jobs.api import generate
    from rdtf_engine.model.store import list_models, validate_model_folder

    monkeypatch.setenv("RDTF_HOME", str(tmp_path / "home"))
    base = tiny_run[0] / "model"
    pack, out = tiny_pack(tmp_path / "pack"), tmp_path / "run"
    assert main(["train", "--data", str(pack), "--out", str(out), "--init-from", str(base), "--batch-size", "2",
                 "--steps", "2", "--checkpoint-every", "2", "--decoder-steps", "0", "--device", "cpu",
                 "--image-guidance", "2"]) == 0
    assert validate_model_folder(out / "model").guidance_image == 2.0
    assert validate_model_folder(base).guidance_image == 0.0  # a card without one: the engine's default
    start = str(pack / "s1.png")

    def draw(model, **kw):
        return generate(GenerateRequest(prompt="a square number 1", model=str(model), frames=4, size=32, steps=2,
                                        seed=0, init_image=start, **kw))

    own = draw(out / "model")
    assert own.recipe["guidance_image"] == 2.0
    told = draw(out / "model", guidance_image=DEFAULT_GUIDANCE_IMAGE)
    assert told.recipe["guidance_image"] == DEFAULT_GUIDANCE_IMAGE and not np.array_equal(told.frames, own.frames)
    assert draw(base).recipe["guidance_image"] == DEFAULT_GUIDANCE_IMAGE
    listed = {m["name"]: m for m in list_models(extra_dirs=[str(tmp_path)])}
    assert listed["run"]["guidance_image"] == 2.0 and listed["default"]["guidance_image"] == DEFAULT_GUIDANCE_IMAGE
    with pytest.raises(InputError, match="guidance_image"):
        TrainConfig(guidance_image=31.0).validate()
