"""tools/model_card.py: the card is written from what the run recorded — a mixed source names both parts, and a
report on held-out real clips gets its own table with the real clips' numbers beside the generated ones."""

from __future__ import annotations

import json
import shutil

import pytest


@pytest.fixture
def card_tool(load_script):
    return load_script("tools/model_card.py")


def _report(data: str, real: bool) -> dict:
    part = {"identity_accuracy": 0.9375, "frechet_distance": 101.1, "frechet_distance_reference_halves": 38.5,
            "motion_accuracy": None if real else 0.9167,
            "coherence": {"change": {"real": {"mean": 0.057}, "generated": {"mean": 0.071}},
                          "frozen": {"real": 0, "generated": 1}, "flicker": {"real": 0, "generated": 2}},
            "sharpness": {"real": {"mean": 0.984}, "generated": {"mean": 0.866}, "export_size": 512},
            "alpha_semi_share": {"generated": 0.015, "reference": 0.0016}, "reference_identity_accuracy": 0.9167}
    return {"data": data, "clips": 48, "sample_steps": 20, "seed": 1, "guidance_text": 4.0, "guidance_image": 5.0,
            "t2v": dict(part, identity_accuracy=0.0), "it2v": part}


def test_a_mixed_model_card_names_both_sources_and_reports_the_real_clips(card_tool, tiny_run, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_run[0] / "model", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(data="builtin:mixed", data_summary={
        "clips": 8000, "parts": {"fluent": 3169, "emoji": 4831}, "fluent_style": "in 3d style",
        "frame_counts": {"4": 1, "24": 2}, "motions": {"blink": 1, "spin": 2}})
    (folder / "config.json").write_text(json.dumps(cfg))
    metrics = [{"step": 10, "loss": 0.01, "steps_per_s": 1.8}, {"step": 10, "val": {"all": 0.004}}]
    card = card_tool.build_card(folder, metrics, _report("builtin:emoji-holdout", False), "1 × NVIDIA H200", 25.0,
                                real=_report("builtin:fluent-holdout", True), sheet="samples.jpg",
                                real_sheet="samples-real.jpg")
    assert "3169 windows of Fluent Emoji animated" in card and "4831 procedural clips" in card
    assert "2 motion classes; frame counts 4–24" in card and '", in 3d style"' in card
    assert "reserved for independent evaluation" in card and "`builtin:fluent-holdout`" in card
    assert card.count("Held out and never trained on") == 1
    assert "## Evaluation on held-out real clips (`rdtf eval --data builtin:fluent-holdout`, 48 clips" in card
    assert "| identity (nearest sprite of the set, first frames) | 0.0 % | 93.8 % | 91.7 % |" in card
    assert "| 101.1 | 101.1 | 38.5 |" in card  # Fréchet distance: t2v, it2v, the real halves
    assert "| edge sharpness at 512 px export | 0.866 | 0.866 | 0.984 |" in card
    assert "| frozen clips | 1 | 1 | 0 |" in card and "| flickering clips | 2 | 2 | 0 |" in card
    assert "](samples.jpg)" in card and "](samples-real.jpg)" in card
    assert "Fluent's animated emoji): prompts about scenes" in card and "Trained only on single emoji" not in card


def test_an_emoji_model_card_is_unchanged_without_a_real_clip_report(card_tool, tiny_run):
    card = card_tool.build_card(tiny_run[0] / "model", [], _report("builtin:emoji-holdout", False), "CPU", 0)
    assert "procedural clips of Noto Color Emoji" in card and "Fluent" not in card
    assert "held-out real clips" not in card and "](samples.png)" in card


def test_a_style_delta_model_card_names_the_style_data_and_its_limits(card_tool, tiny_run, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(tiny_run[0] / "model", folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(data="builtin:mixed", draft_size=16, style_tag="in 3d style", style_below_t=600, data_summary={
        "clips": 8000, "parts": {"fluent": 3169, "emoji": 4831}, "fluent_style": "in 3d style",
        "frame_counts": {"4": 1}, "motions": {"blink": 1},
        "style_deltas": {"name": "fluent", "clips": 12000, "files": 458, "size": 128}})
    (folder / "config.json").write_text(json.dumps(cfg))
    unet = json.loads((folder / "unet" / "config.json").read_text())
    (folder / "unet" / "config.json").write_text(json.dumps({**unet, "size_delta_rank": 4, "style_delta_rank": 4}))
    card = card_tool.build_card(folder, [], _report("builtin:emoji-holdout", False), "1 × NVIDIA H200", 25.0,
                                real=_report("builtin:fluent-holdout", True))
    assert ('- Style deltas: `builtin:fluent`, 12000 windows of 458 Fluent files at 128 px, captions ending '
            '", in 3d style".') in card
    assert ('rank-4 style deltas at the draft size, on only for prompts containing "in 3d style" without a given '
            "frame, on the draft's steps below t = 600") in card
    assert 'Text → video with "in 3d style" draws the 3-D style' in card and "Noto-like shapes" not in card
