"""The export's upscalers: the measurement harness, the learned upscaler's files, and the export path using it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import InputError, ModelError
from rdtf_engine.eval import upscale as ev
from rdtf_engine.formats.timing import fit_canvas
from rdtf_engine.model.upscaler import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Upscaler,
    builtin_upscaler,
    load_upscaler,
    save_upscaler,
    upscale_2x,
)
from rdtf_engine.platforms import upscale as up
from rdtf_engine.platforms.conform import ExportOptions, conform, parse_options
from rdtf_engine.platforms.presets import PRESETS
from rdtf_engine.training.upscaler import PairBank, is_validation


def constant(n: int = 2, side: int = 16, rgba=(200, 80, 30, 255)) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgba, np.uint8), (n, side, side, 4)).copy()


def disc(n: int = 3, side: int = 32) -> np.ndarray:
    """A soft-edged disc moving right on a transparent canvas: (n, side, side, 4)."""
    yy, xx = np.mgrid[:side, :side]
    out = np.zeros((n, side, side, 4), np.uint8)
    for i in range(n):
        d = np.hypot(yy - side / 2, xx - side / 3 - i)
        out[i, ..., 3] = np.clip((side / 4 - d) * 128, 0, 255).astype(np.uint8)
        out[i, ..., :3] = (30, 140, 220)
    return out


def premultiplied(frames: np.ndarray) -> np.ndarray:
    f = frames.astype(np.float32)
    return np.concatenate([f[..., :3] * f[..., 3:] / 255, f[..., 3:]], -1)


# ---------------------------------------------------------------------------------------------- harness
@pytest.mark.parametrize("method", up.CANDIDATES)
def test_every_candidate_gives_a_constant_image_back_with_its_alpha(method):
    """A constant opaque frame has nothing to sharpen or invent: every upscaler returns it exactly."""
    model = Upscaler()  # untrained = bicubic correction of zero
    real = constant(side=32)
    rep = ev.evaluate(real, [method], factor=2, export_factor=4, model=model)
    c = rep["candidates"][method]
    assert c["psnr_db"] == float("inf") and c["alpha_iou"] == 1.0 and c["acutance"] == 0.0
    big = up.resize_frames(real[:, ::2, ::2], 64, 64, method, model=model)
    assert big.shape == (2, 64, 64, 4) and (big == real[0, 0, 0]).all()


def test_learned_shapes_and_alpha():
    model = Upscaler()
    x = torch.rand(3, 4, 8, 10)
    assert model(x).shape == (3, 4, 16, 20)
    clear = np.zeros((2, 8, 10, 4), np.uint8)
    assert not upscale_2x(model, clear, passes=2).any()  # transparent stays transparent, shape (B, 4H, 4W, 4)
    assert upscale_2x(model, clear, passes=2).shape == (2, 32, 40, 4)
    opaque = disc()
    opaque[..., 3] = 255
    assert (upscale_2x(model, opaque)[..., 3] == 255).all()


def test_score_of_identical_frames_and_learned_passes():
    f = disc()
    s = ev.score(f, f)
    assert s["psnr_db"] == float("inf") and s["alpha_iou"] == 1.0 and s["acutance"] > 0
    assert [up.learned_passes(s) for s in (1.0, 1.9, 2.0, 3.9, 4.0, 10.0)] == [0, 0, 1, 1, 2, 3]


def test_sharpening_raises_acutance_and_tuning_picks_from_its_grid():
    real = np.concatenate([disc(2, 32), constant(1, 32, (0, 0, 0, 0))])
    lz = ev.evaluate(real, ["lanczos", "unsharp"], unsharp=(1.0, 160, 0))["candidates"]
    assert lz["unsharp"]["acutance"] > lz["lanczos"]["acutance"]
    grid = ((0.5, 30, 0), (1.0, 80, 0))
    tuned = ev.tune_unsharp(real, grid=grid)
    assert tuple(tuned["best"]) in grid and len(tuned["table"]) == 2
    best = max(tuned["table"], key=lambda r: r["psnr_db"])
    assert best["unsharp"] == tuned["best"]


# ---------------------------------------------------------------------------------------------- files
def test_save_load_round_trip(tmp_path):
    m = Upscaler(width=8, depth=2)
    torch.nn.init.normal_(m.body[-2].weight, std=0.01)
    m.summary = {"steps": 3}
    back = load_upscaler(save_upscaler(m, tmp_path / "u"))
    assert back.summary == {"steps": 3}
    x = torch.rand(1, 4, 6, 6)
    assert torch.equal(back(x), m(x))


@pytest.mark.parametrize("damage", ["missing", "pickle", "arch", "shape", "json"])
def test_loader_rejects_a_bad_upscaler_with_a_typed_error(tmp_path, damage):
    d = save_upscaler(Upscaler(width=8, depth=2), tmp_path / "u")
    cfg = json.loads((d / CONFIG_FILE).read_text())
    if damage == "missing":
        (d / WEIGHTS_FILE).unlink()
    elif damage == "pickle":
        (d / WEIGHTS_FILE).write_bytes(b"\x80\x04\x95" + b"\0" * 64)  # a pickle's opening bytes
    elif damage == "arch":
        (d / CONFIG_FILE).write_text(json.dumps({**cfg, "arch": "something-else"}))
    elif damage == "shape":
        (d / CONFIG_FILE).write_text(json.dumps({**cfg, "width": 9}))
    else:
        (d / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelError):
        load_upscaler(d)


def test_shipped_upscaler_loads_and_is_small():
    m = builtin_upscaler()
    assert 10_000 <= m.num_parameters() <= 100_000 and m.summary.get("steps", 0) > 0


# ---------------------------------------------------------------------------------------------- export path
def small_clip(side: int = 128) -> Clip:
    return Clip(np.stack([fit_canvas(disc(4), side, side)[i] for i in range(4)]), [100] * 4, "disc")


def test_export_upscales_with_the_learned_upscaler_by_default_and_lanczos_on_request():
    tg = PRESETS["telegram"]
    learned, _, trades = conform(small_clip(), tg, parse_options({}, tg))
    assert any("learned upscaler" in t for t in trades) and learned.frames.shape[1:] == (512, 512, 4)
    lanczos, _, trades = conform(small_clip(), tg, parse_options({"upscaler": "lanczos"}, tg))
    assert any("Lanczos upscale" in t for t in trades)
    np.testing.assert_array_equal(lanczos.frames, fit_canvas(small_clip().frames, 512, 512))
    assert not np.array_equal(learned.frames, lanczos.frames)
    assert np.abs(premultiplied(learned.frames) - premultiplied(lanczos.frames)).mean() < 3  # a correction only


def test_no_upscale_needed_exports_exactly_as_before():
    tg = PRESETS["telegram"]
    for side in (512, 300):  # already the canvas; enlarged less than 2×: Lanczos as always, no note
        clip = small_clip(side)
        got, _, trades = conform(clip, tg, ExportOptions())
        np.testing.assert_array_equal(got.frames, fit_canvas(clip.frames, 512, 512))
        assert not any("upscal" in t for t in trades)


def test_falls_back_to_lanczos_when_the_learned_upscaler_is_unavailable(monkeypatch):
    monkeypatch.setattr(up, "learned_available", lambda: "torch is not installed (torch)")
    tg = PRESETS["telegram"]
    got, _, trades = conform(small_clip(), tg, ExportOptions())
    np.testing.assert_array_equal(got.frames, fit_canvas(small_clip().frames, 512, 512))
    assert any("learned upscaler unavailable" in t for t in trades)


def test_bad_upscaler_option_is_an_input_error():
    with pytest.raises(InputError, match="upscaler must be one of"):
        parse_options({"upscaler": "bicubic"}, PRESETS["telegram"])


# ---------------------------------------------------------------------------------------------- training data
def test_validation_split_is_stable_and_keeps_variants_together():
    assert is_validation("1f44b") == is_validation("1f44b-1f3fd")
    share = np.mean([is_validation(f"{cp:x}") for cp in range(0x1F300, 0x1F6FF)])
    assert 0.05 < share < 0.15


def test_pair_bank_patches_line_up():
    bank = PairBank([(fit_canvas(disc(2, 32), 128, 128), 1.0)], seed=1)
    lo, hi = bank.batch(4)
    assert lo.shape == (4, 4, 32, 32) and hi.shape == (4, 4, 64, 64)
    assert (hi[:, 3].amax(dim=(1, 2)) > 0.05).all()
    # the small patch is the big one shrunk: the same mean coverage
    assert torch.allclose(lo[:, 3].mean(dim=(1, 2)), hi[:, 3].mean(dim=(1, 2)), atol=0.03)


# ---------------------------------------------------------------------------------------------- CLI
def test_cli_export_with_either_upscaler(tmp_path, capsys):
    from rdtf_engine.cli.main import main
    from rdtf_engine.platforms.export import write_clip

    src = tmp_path / "frames"
    write_clip(small_clip(), src, fmt="frames")
    for name in ("learned", "lanczos"):
        out = tmp_path / f"{name}.webm"
        assert main(["export", str(src), "--preset", "telegram", "--out", str(out), "--upscaler", name,
                     "--json"]) == 0
        rep = json.loads(capsys.readouterr().out)
        assert rep["ok"] and out.is_file()
        assert any(("learned upscaler" if name == "learned" else "Lanczos upscale") in t for t in rep["trades"])


@pytest.mark.parametrize("args, needle", [
    (["eval-upscale", "--data", "builtin:fluent"], "training data"),
    (["eval-upscale", "--candidates", "lanczos,magic"], "magic"),
    (["eval-upscale", "--files", "0"], "--files"),
    (["train-upscaler", "--out", "u", "--max-minutes", "0"], "max-minutes"),
])
def test_cli_upscale_commands_refuse_bad_input_in_one_line(args, needle, capsys, tmp_path, monkeypatch):
    from rdtf_engine.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and needle in err
