"""CLI: train → generate → readable animated file; kill + --resume; bad input → one line, exit 2."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from rdtf_engine.cli.main import main


def env() -> dict:
    # computed per call: the session fixture sets RDTF_HOME after this module is imported
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}


def rdtf(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rdtf_engine", *args], capture_output=True, text=True,
                          timeout=timeout, env=env(), check=False)  # tests read returncode


def test_generate_gif_apng_and_png_folder(tiny_run, tmp_path):
    run = str(tiny_run[0])
    gif = tmp_path / "s.gif"
    r = rdtf("generate", "--model", run, "--prompt", "a red circle bouncing", "--steps", "3", "--seed", "1",
             "--out", str(gif))
    assert r.returncode == 0, r.stderr
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 8 and im.size == (32, 32)
    rc = main(["generate", "--model", run, "--prompt", "a star", "--steps", "2", "--frames", "6",
               "--out", str(tmp_path / "s.png")])
    assert rc == 0
    with Image.open(tmp_path / "s.png") as im:
        assert getattr(im, "is_animated", False) and im.n_frames == 6
    rc = main(["generate", "--model", run, "--prompt", "a star", "--steps", "2", "--frames", "4",
               "--keep", "0", "--from", str(gif), "--out", str(tmp_path / "frames")])
    assert rc == 0
    assert len(list((tmp_path / "frames").glob("*.png"))) == 4


@pytest.mark.parametrize(
    "args, needle",
    [
        (["generate", "--prompt", "x", "--frames", "0", "--out", "o.gif"], "frames"),
        (["generate", "--prompt", "x", "--frames", "10000", "--out", "o.gif"], "frames"),
        (["generate", "--prompt", "x", "--init", "/no/such.png", "--out", "o.gif"], "not found"),
        (["generate", "--prompt", "x", "--model", "/no/such/model", "--out", "o.gif"], "model"),
        (["train", "--data", "builtin:shapes", "--out", "r", "--preset", "huge"], "preset"),
        (["train", "--data", "builtin:nothing", "--out", "r", "--steps", "1"], "builtin"),
        (["train", "--data", "/no/such/folder", "--out", "r", "--steps", "1"], ""),
    ],
)
def test_bad_input_is_one_line_exit_2(args, needle, tmp_path, capsys, monkeypatch, tiny_run):
    monkeypatch.chdir(tmp_path)
    if args[0] == "generate" and "--model" not in args:
        args = args + ["--model", str(tiny_run[0])]
    rc = main(args)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error:") and "Traceback" not in err and len(err.splitlines()) == 1
    assert needle in err.lower()
    assert not (tmp_path / "o.gif").exists()


def test_corrupt_model_and_wrong_format(tiny_run, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_run[0] / "model", bad)
    for f in (bad / "unet").glob("*.safetensors"):
        f.write_bytes(b"garbage")
    assert main(["generate", "--model", str(bad), "--prompt", "x", "--size", "32", "--out", str(tmp_path / "o.gif")]) == 2
    assert "error:" in capsys.readouterr().err
    txt = tmp_path / "notes.gif"
    txt.write_text("this is not a gif")
    assert main(["generate", "--model", str(tiny_run[0]), "--prompt", "x", "--init", str(txt),
                 "--out", str(tmp_path / "o.gif")]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "o.gif").exists()


def test_kill_and_resume_continues_from_last_checkpoint(tiny_run, tmp_path):
    out = tmp_path / "killed"
    ae = str(tiny_run[0] / "autoencoder")
    cmd = [sys.executable, "-m", "rdtf_engine", "train", "--data", "builtin:shapes", "--out", str(out),
           "--preset", "tiny", "--size", "32", "--steps", "100000", "--batch-size", "4", "--max-clips", "32",
           "--checkpoint-every", "3", "--autoencoder", ae]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env())
    latest = out / "checkpoints" / "latest"
    deadline = time.time() + 400
    while not latest.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.5)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)  # no chance to clean up: the atomic checkpoint must be enough
    proc.wait(30)
    assert latest.exists(), "no checkpoint was written before the deadline"
    step = int(latest.read_text().strip().split("_")[1])
    r = rdtf("train", "--out", str(out), "--resume", "--steps", str(step + 2))
    assert r.returncode == 0, r.stderr
    assert f"resumed from step_{step:07d}" in r.stdout
    assert f"step={step + 2}" in r.stdout
    assert (out / "done.json").is_file()


def test_models_lists_runs(tiny_run, capsys):
    import shutil

    from rdtf_engine.core.paths import user_runs_dir

    dst = user_runs_dir() / "listed"
    if not dst.exists():
        shutil.copytree(tiny_run[0] / "model", dst / "model")
    assert main(["models"]) == 0
    assert "listed" in capsys.readouterr().out
    assert main(["models", "--json"]) == 0
    assert '"preset": "tiny"' in capsys.readouterr().out


def test_help_lists_every_command():
    r = rdtf("--help", timeout=120)
    for cmd in ("generate", "train", "train-autoencoder", "models", "eval", "worker", "import", "export", "check"):
        assert cmd in r.stdout
    assert Path(sys.executable).exists()


def test_train_init_from_inherits_the_models_architecture(tiny_run, tmp_path):
    """`rdtf train --init-from MODEL` takes preset, size and temporal layer from MODEL unless given."""
    import json

    out = tmp_path / "ft"
    rc = main(["train", "--data", "builtin:shapes", "--out", str(out), "--init-from", str(tiny_run[0]),
               "--steps", "1", "--batch-size", "2", "--max-clips", "8", "--checkpoint-every", "1"])
    assert rc == 0
    saved = json.loads((out / "run.json").read_text())
    cfg = saved["model"]
    assert (cfg["preset"], cfg["size"], cfg["temporal"]) == ("tiny", 32, "sti")
    assert saved["init_from"] == str(tiny_run[0])
    assert cfg["reference_attention"] == "off"  # the base model has none: inherited, and saved resolved


def test_a_fine_tune_keeps_its_bases_guidance_unless_it_asks_its_own(tiny_run, tmp_path):
    """A pack model tuned again (say its size deltas) draws at the guidance it was measured at: a fine-tune that
    asks none inherits the base card's; one that asks its own keeps that."""
    import json

    args = ["--data", "builtin:shapes", "--steps", "1", "--batch-size", "2", "--max-clips", "8",
            "--checkpoint-every", "1"]
    card = lambda run: json.loads((run / "model" / "config.json").read_text())
    pack = tmp_path / "pack"
    assert main(["train", *args, "--out", str(pack), "--init-from", str(tiny_run[0]), "--text-guidance", "8"]) == 0
    assert card(pack)["guidance_text"] == 8.0
    again, own = tmp_path / "again", tmp_path / "own"
    assert main(["train", *args, "--out", str(again), "--init-from", str(pack)]) == 0
    assert main(["train", *args, "--out", str(own), "--init-from", str(pack), "--text-guidance", "5"]) == 0
    assert (card(again)["guidance_text"], card(own)["guidance_text"]) == (8.0, 5.0)
    assert card(again)["guidance_image"] == 0.0  # the base asked none: the engine's default stays


def test_train_reference_attention_is_inherited_saved_and_kept_on_resume(tiny_run, tmp_path):
    """--reference-attention on: the fine-tune's DFGN config has it; a fine-tune of that model inherits it
    without the flag; --resume keeps the saved value."""
    import json

    args = ["--data", "builtin:shapes", "--steps", "1", "--batch-size", "2", "--max-clips", "8",
            "--checkpoint-every", "1"]
    on = tmp_path / "on"
    assert main(["train", *args, "--out", str(on), "--init-from", str(tiny_run[0]), "--reference-attention", "on"]) == 0
    assert json.loads((on / "model" / "unet" / "config.json").read_text())["reference_attention"] is True
    child = tmp_path / "child"
    assert main(["train", *args, "--out", str(child), "--init-from", str(on)]) == 0
    saved = child / "run.json"
    assert json.loads(saved.read_text())["model"]["reference_attention"] == "on"
    # a run saved before the modes existed holds a bool: it resumes as "on"
    saved.write_text(saved.read_text().replace('"reference_attention": "on"', '"reference_attention": true'))
    assert main(["train", "--out", str(child), "--resume", "--steps", "2"]) == 0
    unet = json.loads((child / "model" / "unet" / "config.json").read_text())
    assert unet["reference_attention"] is True and unet["reference_attention_all_levels"] is False


def test_train_reference_attention_all_grows_blocks_from_a_model_without_them(tiny_run, tmp_path, capsys):
    """--reference-attention all fine-tunes a plain model: its new blocks start as identity (logged), the model
    folder records both flags, and a fine-tune of the result inherits "all"."""
    import json

    args = ["--data", "builtin:shapes", "--steps", "1", "--batch-size", "2", "--max-clips", "8",
            "--checkpoint-every", "1"]
    grown = tmp_path / "all"
    grow = ["--out", str(grown), "--init-from", str(tiny_run[0]), "--reference-attention", "all"]
    assert main(["train", *args, *grow]) == 0
    assert "new reference-attention tensors start as identity" in capsys.readouterr().out
    unet = json.loads((grown / "model" / "unet" / "config.json").read_text())
    assert unet["reference_attention"] is True and unet["reference_attention_all_levels"] is True
    child = tmp_path / "child"
    assert main(["train", *args, "--out", str(child), "--init-from", str(grown)]) == 0
    assert json.loads((child / "run.json").read_text())["model"]["reference_attention"] == "all"


def test_continue_curriculum_takes_up_the_base_models_schedule(tiny_run, tmp_path):
    """--continue-curriculum: a fine-tune of the 100-step tiny model draws its tasks at index 100 + s of a
    120-step schedule, not at s of its own 20 (exact static weights with --curriculum linear)."""
    import json

    from rdtf_engine.core.errors import InputError
    from rdtf_engine.core.requests import TrainRequest
    from rdtf_engine.training.state import curriculum_span

    assert curriculum_span(TrainRequest.of(data="d", out="o", steps=20), 100) == (0, 20)
    assert curriculum_span(TrainRequest.of(data="d", out="o", steps=20, init_from="m", continue_curriculum=True),
                           100) == (100, 120)
    with pytest.raises(InputError, match="needs init_from"):
        TrainRequest.of(data="d", out="o", continue_curriculum=True).validate()
    args = ["--data", "builtin:shapes", "--steps", "20", "--batch-size", "2", "--max-clips", "8",
            "--checkpoint-every", "20", "--curriculum", "linear", "--init-from", str(tiny_run[0])]

    def weights_at_10(out):
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        return next(r["weights"] for r in rows if r.get("step") == 10 and "weights" in r)

    assert main(["train", *args, "--out", str(tmp_path / "own")]) == 0
    # the 10th step's tasks are drawn at step index 9: 0.1 + 0.4·9/10 (generation), 0.9 − 0.4·9/10 (interpolation)
    own = weights_at_10(tmp_path / "own")
    assert own["it2v"] == pytest.approx(0.46) and own["interpolation"] == pytest.approx(0.54)
    assert main(["train", *args, "--out", str(tmp_path / "cont"), "--continue-curriculum"]) == 0
    cont = weights_at_10(tmp_path / "cont")  # index 109 of a 120-step schedule: past its middle (60)
    assert cont["it2v"] == round(0.5 + 0.4 * 49 / 60, 4)  # metrics.jsonl keeps 4 decimals
    assert cont["interpolation"] == round(0.5 - 0.4 * 49 / 60, 4)
    assert json.loads((tmp_path / "cont" / "run.json").read_text())["train"]["continue_curriculum"] is True


@pytest.mark.parametrize("argv", [["pack", "move", "somewhere", "waving", "--to=--"],
                                  ["generate", "--prompt", "cat", "--steps=--", "--out", "x.gif"]])
def test_an_option_value_of_two_dashes_is_a_usage_error(argv, capsys):
    """argparse (3.11) turns ``--to=--`` into ``[]`` past the option's type: rdtf refuses it as usage (exit 2, one
    error line) instead of failing later with a TypeError."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "expected one value" in err and err.count("error:") == 1
