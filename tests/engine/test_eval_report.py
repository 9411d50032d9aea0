"""`rdtf eval` end to end on the tiny model: every metric of the report is present and sane."""

from __future__ import annotations

import json

import torch
from PIL import Image

from rdtf_engine.cli.main import main
from rdtf_engine.data.sources import open_source
from rdtf_engine.eval.classifier import save_classifier, train_motion_classifier
from rdtf_engine.jobs.evaluate import evaluate_model, name_emoji_misses, summarize


def test_eval_report_on_tiny_model(tiny_run, tmp_path, capsys):
    clf = train_motion_classifier(open_source("builtin:shapes", 32, num_clips=96, seed=5), 30, batch_size=16,
                                  max_clips=96, input_size=32, width=8)
    folder = save_classifier(clf, tmp_path / "clf")
    rep = evaluate_model(str(tiny_run[0]), "builtin:shapes", num_clips=3, steps=2, classifier_path=str(folder),
                         device="cpu")
    assert rep["clips"] == 3 and rep["preset"] == "tiny"
    assert set(rep["val_loss"]) >= {"t2v", "it2v", "interpolation", "pred_forward", "all"}
    assert all(v > 0 for v in rep["val_loss"].values())
    for part in ("t2v", "it2v"):
        assert 0.0 <= rep[part]["motion_accuracy"] <= 1.0
        assert rep[part]["frechet_distance"] >= 0.0
    s = summarize(rep)
    assert s["val_loss"] == rep["val_loss"]["all"] and s["motion_acc"] is not None
    grid = tmp_path / "grid.png"
    assert main(["eval", "--model", str(tiny_run[0]), "--data", "builtin:shapes", "--clips", "2", "--steps", "1",
                 "--classifier", str(folder), "--device", "cpu", "--json", "--grid", str(grid)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["clips"] == 2 and len(out["grid"]["captions"]) == 2
    with Image.open(grid) as im:  # 2 prompts × (real, t2v, it2v) rows of num_frames tiles
        w, h = im.size
    assert h == 6 * (h // 6) and w // (h // 6) == out["grid"]["frames"]
    # The model card's sheet: one prompt, 3 frames a row, every clip enlarged 2× by the export upscaler, as JPEG.
    sheet = tmp_path / "sheet.jpg"
    assert main(["eval", "--model", str(tiny_run[0]), "--data", "builtin:shapes", "--clips", "2", "--steps", "1",
                 "--classifier", str(folder), "--device", "cpu", "--json", "--grid", str(sheet), "--grid-rows", "1",
                 "--grid-size", "64", "--grid-frames", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["grid"]["size"] == 64 and out["grid"]["frames"] == 3 and len(out["grid"]["captions"]) == 1
    with Image.open(sheet) as im:
        assert im.format == "JPEG" and im.size == (3 * 64, 3 * 64)
    # A sampling-settings sweep: image&text→video only, at the guidance it asks for.
    assert main(["eval", "--model", str(tiny_run[0]), "--data", "builtin:shapes", "--clips", "2", "--steps", "1",
                 "--classifier", str(folder), "--device", "cpu", "--json", "--tasks", "it2v",
                 "--guidance", "2", "--image-guidance", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["t2v"] is None and out["it2v"]["clips"] == 2
    assert out["guidance_text"] == 2.0 and out["guidance_image"] == 5.0
    assert main(["eval", "--model", str(tiny_run[0]), "--data", "builtin:shapes", "--tasks", "v2v"]) == 2
    assert main(["eval", "--model", str(tiny_run[0]), "--data", "builtin:shapes", "--grid", str(sheet),
                 "--grid-size", "9000"]) == 2


def test_builtin_emoji_eval_uses_the_shipped_gpu_classifier(monkeypatch):
    # the model card's numbers must be reproducible from a clean checkout: no CPU re-training of the classifier
    from rdtf_engine.jobs import evaluate as report

    monkeypatch.setattr(report, "CLASSIFIER_STEPS", {"cuda": 0, "cpu": 0})  # training would be a bug here
    clf = report._classifier(None, "builtin:emoji-holdout", torch.device("cpu"), lambda e: None)
    assert clf.input_size == 64 and clf.width == 32 and len(clf.classes) == 19
    assert clf.summary["source"] == "builtin:emoji"


def test_emoji_identity_misses_are_named():
    rep = {"t2v": None, "it2v": {"identity_misses": [{"wanted": "1f40f", "found": "1f411"},
                                                     {"wanted": "1f40f", "found": None}]}}
    name_emoji_misses(rep)
    assert [m["found_name"] for m in rep["it2v"]["identity_misses"]] == ["sheep", None]
