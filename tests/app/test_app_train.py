"""Train view-model and run helpers: import report, captions, presets, run/pause/resume/stop, resume offers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_backend import write_checkpoint
from fake_engine import write_png

from app.state import runs
from app.state.train import TrainViewModel
from rdtf_engine.core.recipes import SCRATCH_WARNING
from rdtf_engine.core.requests import TrainRequest, to_dict

STICKERS = ("cat_wave", "dog_jump", "owl_blink", "fox_run")


def imported(qtbot, state, tmp_path, skipped=(), names=STICKERS):
    src = tmp_path / "pack"
    for i, name in enumerate(names):
        write_png(src / f"{name}.png", (200 - 40 * i, 100, 40 * i))

    def report(p):
        out = Path(p["out"])
        out.mkdir(parents=True)
        rows = "".join(f"{n}.png,{n.replace('_', ' ')},1\n" for n in names)
        (out / "captions.csv").write_text("file,caption,frames\n" + rows)
        return [{"kind": "finished", "result": {"out": str(out), "imported": [{"file": f"{n}.png"} for n in names],
                                                "skipped": list(skipped)}}]

    state.engine.scripts["import"] = report
    with qtbot.waitSignal(state.train.importing_changed, check_params_cb=lambda b: not b, timeout=2000):
        state.train.import_source(str(src))
    return src


def test_import_report_and_editable_captions(qtbot, state, tmp_path):
    skipped = [{"file": "evil.zip", "reason": "zip entry escapes the folder"}]
    with qtbot.waitSignal(state.message) as msg:
        src = imported(qtbot, state, tmp_path, skipped)
    assert "4 sticker(s)" in msg.args[1] and "1 skipped" in msg.args[1]
    tv = state.train
    assert tv.report["skipped"] == skipped
    assert [c["caption"] for c in tv.captions] == ["cat wave", "dog jump", "owl blink", "fox run"]
    assert tv.captions[0]["thumb"] == str(src / "cat_wave.png")  # thumbnails from the source folder
    tv.set_caption(1, " a dog jumping ")
    text = (Path(tv.dataset) / "captions.csv").read_text()
    assert "dog_jump.png,a dog jumping,1" in text and text.startswith("file,caption,frames")


def test_import_failure_is_a_human_message(qtbot, state, tmp_path):
    state.engine.scripts["import"] = lambda p: [{"kind": "failed", "error_type": "UnsafeInputError",
                                                 "message": "zip entry ../x escapes the archive"}]
    with qtbot.waitSignal(state.message) as msg:
        state.train.import_source(str(tmp_path))
    assert msg.args[0] == "error" and "refused for safety" in msg.args[1]
    assert not state.train.importing


def test_presets_and_estimates_follow_device_and_measurements(qtbot, state):
    tv = state.train
    with qtbot.waitSignal(tv.device_changed, timeout=2000):
        tv.refresh_device()
    assert "Fake CPU" in tv.estimate
    slow = runs.estimate_seconds("standard", {"device": "cpu"})
    assert runs.estimate_seconds("standard", {"device": "cuda:0"}) < slow
    assert runs.estimate_seconds("quick", {"device": "cpu"}) < slow
    assert runs.estimate_seconds("standard", {"device": "cpu"}, measured=100.0) < slow
    assert runs.estimate_seconds("pack", {"device": "cuda"}) <= 10 * 60 < runs.estimate_seconds("pack", {})
    # the CPU fine-tune is capped at its recipe's 50 minutes of steps (and the decoder's tune at 15 % of them)
    # however slow this machine measured: with the set-up, an hour at most
    capped = runs.estimate_seconds("pack", {}, measured=0.01)
    assert capped == pytest.approx(runs.SETUP_SECONDS["cpu"] + 50 * 60 * 1.15) and capped <= 3600
    assert tv.choice == "pack" and tv.warning == ""  # the default fine-tunes: no from-scratch warning
    tv.set_choice("quick")
    assert state.settings.get("train/recipe") == "quick" and tv.warning == SCRATCH_WARNING
    assert runs.format_duration(30) == "30 s" and runs.format_duration(600) == "10 min"
    assert runs.format_duration(7200) == "2.0 h"


def test_default_choice_builds_the_fine_tune_request(qtbot, state, tmp_path, fake_trainer):
    """The Train page's default sends the engine's pack recipe: fine-tune the shipped model (architecture and
    autoencoder left to the base), the CPU recipe on a CPU and the GPU one on CUDA; run.json holds it."""
    imported(qtbot, state, tmp_path)
    tv = state.train
    tv.start()
    params = fake_trainer.last("train").params
    req = TrainRequest.from_dict(params)
    assert req.init_from == "default" and req.model.preset is None and req.model.size is None
    assert req.train.autoencoder is None and req.train.data == tv.dataset and req.train.batch_size == 2
    assert req.run.max_minutes == 50  # the CPU recipe's cap travels with the request
    assert params == to_dict(req) and runs.read_request(tv.run_dir) == req
    assert tv.warning == ""
    with qtbot.waitSignal(tv.state_changed, check_params_cb=lambda s: s == "idle", timeout=2000):
        tv.stop()
    tv._set("device", {"device": "cuda:0", "name": "GPU"})  # what refresh_device reports on a CUDA machine
    tv.start()
    gpu = TrainRequest.from_dict(fake_trainer.last("train").params)
    assert gpu.init_from == "default" and gpu.run.mixed_precision == "bf16"
    assert gpu.train.batch_size > req.train.batch_size and gpu.train.trainable == "all" and gpu.run.max_minutes == 0


def test_run_pause_resume_finish(qtbot, state, tmp_path, fake_trainer):
    imported(qtbot, state, tmp_path)
    tv = state.train
    tv.set_choice("quick")
    tv.start()
    job = fake_trainer.last("train")
    assert tv.state == "running" and job.params["model"]["preset"] == "tiny" and not job.params["run"]["resume"]
    assert job.params["init_from"] is None
    run_dir = Path(job.params["run"]["out"])
    assert runs.read_request(run_dir).train.steps == 300  # saved so the run can be resumed after a restart
    sample = write_png(tmp_path / "grid.png", (1, 2, 3))
    fake_trainer.push(job, {"kind": "progress", "stage": "train", "step": 2, "total": 300, "message": "ETA 0:02:30",
                            "eta_s": 150.0})
    assert tv.speed == "ETA 0:02:30"  # the engine's first-steps ETA, before any metrics row
    fake_trainer.push(job, {"kind": "progress", "stage": "train", "step": 10, "total": 300},
                      {"kind": "metrics", "step": 10, "loss": 0.5, "steps_per_s": 2.0, "eta_s": 145,
                       "curriculum": "none", "bucket": 2, "gpu_mem_mb": 812},
                      {"kind": "metrics", "step": 20, "loss": 0.25},
                      {"kind": "metrics", "step": 20, "stage": "validation", "val_loss": 9.0},
                      {"kind": "preview", "step": 20, "paths": [sample], "caption": ""})
    assert tv.step == 20 and tv.losses == [(10, 0.5), (20, 0.25)] and tv.samples == [sample]
    assert tv.stage == "" and "2.00 steps/s" in tv.speed and "GPU 812 MB" in tv.speed
    fake_trainer.push(job, {"kind": "metrics", "step": 30, "loss": 0.2, "curriculum": "adaptive", "bucket": 3,
                            "task_weights": {"t2v": 1.2, "i2v": 0.6, "interpolation": 0.2}})
    assert tv.stage == "adaptive · t2v 60%, i2v 30% · difficulty 3"
    fake_trainer.push(job, {"kind": "metrics", "step": 2, "loss": 2.4, "stage": "autoencoder"})
    assert tv.stage == "autoencoder (loss 2.400)" and len(tv.losses) == 3
    with qtbot.waitSignal(tv.state_changed, check_params_cb=lambda s: s == "paused", timeout=2000):
        tv.pause()
    assert fake_trainer.cancelled == [job]
    tv.resume()
    job2 = fake_trainer.last("train")
    assert job2.params["run"]["resume"] is True and job2.params["run"]["out"] == str(run_dir)
    with qtbot.waitSignal(tv.model_ready, timeout=2000) as ready:
        fake_trainer.finish(job2, {"run_dir": str(run_dir), "model_dir": str(run_dir / "model"), "stopped": False})
    assert ready.args == [str(run_dir / "model")] and tv.state == "done"
    assert float(state.settings.raw("train/speed/cpu/quick")) == 2.0  # measured speed feeds the next estimate


def test_start_needs_data(qtbot, state):
    with qtbot.waitSignal(state.message) as msg:
        state.train.start()
    assert "folder or zip" in msg.args[1]


def test_crash_during_training_keeps_run_resumable(qtbot, state, tmp_path, fake_trainer):
    imported(qtbot, state, tmp_path)
    state.train.start()
    write_checkpoint(state.train.run_dir, 10)  # it got that far
    with qtbot.waitSignal(state.message) as msg:
        fake_trainer.crash()
    assert state.train.state == "paused" and "restarted" in msg.args[1]


def test_a_pack_too_small_is_said_at_import_and_a_failure_before_any_checkpoint_offers_no_resume(
        qtbot, state, tmp_path, fake_trainer):
    imported(qtbot, state, tmp_path, names=STICKERS[:3])
    tv = state.train
    assert "3 readable stickers" in tv.warning and "at least 4" in tv.warning  # before Start, not after
    tv.set_choice("quick")
    assert tv.warning == SCRATCH_WARNING  # from scratch has no pack minimum: its own warning instead
    tv.set_choice("pack")
    tv.start()  # the engine refuses it the same way
    job = fake_trainer.last("train")
    with qtbot.waitSignal(state.message) as msg:
        fake_trainer.push(job, {"kind": "failed", "error_type": "PackError",
                                "message": "pack: 3 readable stickers, a pack fine-tune needs at least 4"})
    assert msg.args[0] == "error" and "at least 4" in msg.args[1]
    assert tv.state == "idle"  # nothing to resume: Start again once the pack has more stickers
    assert runs.pack_size_warning(201).startswith("This pack has 201 stickers")
    assert runs.pack_size_warning(4) == runs.pack_size_warning(None) == ""


def _unfinished(runs_dir: Path, name: str, done: bool = False) -> Path:
    d = runs_dir / name
    write_checkpoint(d, 150)
    runs.write_request(d, TrainRequest.of(data="x", out=str(d), steps=300))
    if done:
        (d / "done.json").write_text("{}")
    return d


def test_resume_offer_on_reopen_and_dismiss(qtbot, state, dirs, fake_trainer):
    keep = _unfinished(dirs.runs, "20250101-1200-cats")
    _unfinished(dirs.runs, "20250101-1100-done", done=True)
    (dirs.runs / "20250101-1000-nocheckpoint").mkdir()
    state.train.scan_unfinished()
    assert [(o["name"], o["step"], o["steps"]) for o in state.train.offers] == [("20250101-1200-cats", 150, 300)]
    state.train.resume(str(keep))
    assert fake_trainer.last("train").params == to_dict(TrainRequest.of(data="x", out=str(keep), steps=300,
                                                                         resume=True))
    assert state.train.offers == []
    state.train.dismiss_offer(str(keep))
    fresh = TrainViewModel(state.engine, fake_trainer, dirs, state.settings)
    fresh.scan_unfinished()
    assert fresh.offers == []  # dismissed runs are not offered again


def test_offers_only_what_the_engine_resumes(qtbot, state, dirs, fake_trainer):
    """The offer's step is the engine's: an interrupted checkpoint write (no state.json) is not one, and a stale
    ``latest`` pointer falls back to the newest complete checkpoint, as ``latest_checkpoint`` does."""
    half = _unfinished(dirs.runs, "20250101-1300-half")
    (half / "checkpoints" / "step_0000400").mkdir()  # killed before its state.json was written
    bare = dirs.runs / "20250101-1400-bare"
    (bare / "checkpoints" / "step_0000100").mkdir(parents=True)  # no complete checkpoint at all
    runs.write_request(bare, TrainRequest.of(data="x", out=str(bare), steps=300))
    (half / "checkpoints" / "latest").write_text("step_0000400")  # pointer to the incomplete one
    state.train.scan_unfinished()
    assert [(o["name"], o["step"]) for o in state.train.offers] == [("20250101-1300-half", 150)]
    assert not runs.has_checkpoint(bare) and runs.has_checkpoint(half)
    (half / "checkpoints" / "latest").write_text("../../20250101-1400-bare/checkpoints/step_0000100")
    assert runs.unfinished_runs(dirs.runs)[0]["step"] == 150  # a pointer out of the folder is not followed


def test_stop_dismisses_the_run(qtbot, state, tmp_path, fake_trainer):
    imported(qtbot, state, tmp_path)
    state.train.start()
    run_dir = state.train.run_dir
    with qtbot.waitSignal(state.train.state_changed, check_params_cb=lambda s: s == "idle", timeout=2000):
        state.train.stop()
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    state.train.scan_unfinished()
    assert state.train.offers == []


def test_captions_csv_helpers(tmp_path):
    header, rows, col = runs.read_captions(tmp_path)
    assert (header, rows, col) == (["file", "caption"], [], 1)
    (tmp_path / "captions.csv").write_text('path,id,caption\n"a,b.gif",1,"hi, there"\n')
    header, rows, col = runs.read_captions(tmp_path)
    assert col == 2 and rows == [["a,b.gif", "1", "hi, there"]]
    rows[0][2] = 'say "hi"'
    runs.write_captions(tmp_path, header, rows)
    assert runs.read_captions(tmp_path)[1][0][2] == 'say "hi"'


def test_runs_of_older_versions_are_still_offered_and_resumed(qtbot, state, dirs, fake_trainer):
    """A run an older app started has only its flat studio_request.json: still offered, resumed as it was."""
    d = dirs.runs / "20240101-1200-old"
    write_checkpoint(d, 40)
    (d / "studio_request.json").write_text(json.dumps({"data": "x", "out": str(d), "preset": "small", "steps": 3000,
                                                       "ae_steps": 800, "size": 64, "batch_size": 4,
                                                       "resume": False}))
    state.train.scan_unfinished()
    assert [(o["name"], o["step"], o["steps"]) for o in state.train.offers] == [("20240101-1200-old", 40, 3000)]
    state.train.resume(str(d))
    params = fake_trainer.last("train").params
    assert params["run"]["resume"] is True and params["model"]["preset"] == "small" and params["train"]["steps"] == 3000
