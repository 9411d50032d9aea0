"""Export (pass/fail per rule, save, pack), Models (list, rename, delete, import refusal), Gallery, settings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app.settings import Settings
from app.state.export import rules_of
from app.state.models import ModelImportRefused, validate_model_folder


def generate(qtbot, state):
    with qtbot.waitSignal(state.create.generated, timeout=3000) as blocker:
        state.create.generate()
    return blocker.args[0]


def test_export_check_shows_pass_and_fail_then_saves_only_passing(qtbot, state, fake, tmp_path):
    sticker = generate(qtbot, state)
    ex = state.export
    assert ex.sticker is sticker
    ex.set_selected(["line", "telegram", "nonsense"])
    assert ex.selected == ["telegram", "line"]
    with qtbot.waitSignal(ex.busy_changed, check_params_cb=lambda b: not b, timeout=3000):
        ex.check()
    res = ex.results
    assert res["telegram"]["ok"] and not res["line"]["ok"]
    assert [r["ok"] for r in res["line"]["rules"]] == [True, False]
    params = fake.last("export").params
    assert params["recipe"]["prompt"] == sticker.prompt  # the recipe is embedded
    assert params["options"] == {}
    frames = Path(params["input"])
    assert len(list(frames.glob("*.png"))) == 8 and json.loads((frames / "durations.json").read_text()) == [100] * 8
    dest = tmp_path / "saved"
    dest.mkdir()
    written = ex.save_to(str(dest))
    assert [Path(p).suffix for p in written] == [".webm"] and len(list(dest.iterdir())) == 1


def test_export_engine_error_is_shown_per_preset(qtbot, state, fake):
    generate(qtbot, state)
    fake.scripts["export"] = lambda p: [{"kind": "failed", "error_type": "ExportError",
                                         "message": "cannot get under 256 KB"}]
    state.export.set_selected(["telegram"])
    with qtbot.waitSignal(state.export.busy_changed, check_params_cb=lambda b: not b, timeout=3000):
        state.export.check()
    r = state.export.results["telegram"]
    assert not r["ok"] and "256 KB" in r["error"] and "another preset" in r["error"]


def test_export_pack_and_check_file(qtbot, state, fake, tmp_path):
    generate(qtbot, state)
    generate(qtbot, state)
    state.export.set_selected(["gif", "line"])
    with qtbot.waitSignal(state.message, timeout=3000) as msg:
        state.export.export_pack(state.gallery.entries, str(tmp_path / "pack"))
    assert len(list((tmp_path / "pack" / "gif").iterdir())) == 2
    assert msg.args[0] == "warning" and "2 problem(s)" in msg.args[1]  # line fails for both stickers
    with qtbot.waitSignal(state.export.busy_changed, check_params_cb=lambda b: not b, timeout=3000):
        state.export.check_file(str(tmp_path / "x.gif"), "discord")
    assert state.export.results["discord"]["ok"]


def test_rules_of_accepts_both_report_shapes():
    rule = {"name": "bytes", "ok": 1, "detail": "ok"}
    assert rules_of({"checks": [rule]}) == rules_of({"rules": [rule]}) == rules_of({"checks": {"rules": [rule]}})
    assert rules_of({"checks": [rule]})[0]["ok"] is True and rules_of({}) == []


def _model(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _weights() -> bytes:
    """A real (one-tensor) safetensors file: the engine validates weights by their content."""
    from safetensors.numpy import save

    return save({"w": np.zeros(4, np.float32)})


CARD = json.dumps({"name": "m", "preset": "tiny", "size": 32, "num_frames": 8}).encode()


def model_files(**extra: bytes) -> dict[str, bytes]:
    return {"config.json": CARD, "unet/config.json": b"{}", "unet/diffusion_pytorch_model.safetensors": _weights(),
            "vae/config.json": b"{}", "vae/diffusion_pytorch_model.safetensors": _weights(), **extra}


def test_model_import_validation(tmp_path):
    good = _model(tmp_path / "good", model_files())
    assert validate_model_folder(good) > 0
    cases = {
        "pickle": (model_files(**{"model.bin": b"x"}), "pickle"),
        "fake-weights": (model_files(**{"unet/diffusion_pytorch_model.safetensors": b"x"}), "safetensors"),
        "noweights": ({"config.json": CARD}, "unet"),
        "noconfig": ({k: v for k, v in model_files().items() if k != "config.json"}, "config.json"),
    }
    for name, (files, why) in cases.items():
        folder = _model(tmp_path / name, files)
        try:
            validate_model_folder(folder)
            raise AssertionError(name)
        except ModelImportRefused as e:
            assert why in str(e), (name, str(e))


def test_models_list_rename_delete_import(qtbot, state, dirs, tmp_path):
    mv = state.models
    with qtbot.waitSignal(mv.models_changed, timeout=2000):
        mv.refresh()
    assert fake_dirs(state) == [str(dirs.models), str(dirs.runs)]
    src = _model(tmp_path / "My Model", model_files())
    assert mv.import_folder(str(src))
    target = dirs.models / "my-model"
    assert (target / "unet" / "diffusion_pytorch_model.safetensors").exists()
    mv.rename(str(target), "Cats v2")
    target = dirs.models / "Cats v2"  # the engine names models after their folder
    assert json.loads((target / "config.json").read_text())["name"] == "Cats v2"
    with qtbot.waitSignal(state.message) as msg:
        mv.delete("builtin:default")
    assert "Shipped models" in msg.args[1]
    mv.delete(str(target))
    assert not target.exists()
    bad = _model(tmp_path / "bad", model_files(**{"model.ckpt": b"x"}))
    with qtbot.waitSignal(state.message) as msg:
        assert not mv.import_folder(str(bad))
    assert msg.args[0] == "error" and "safetensors" in msg.args[1]


def fake_dirs(state):
    return state.engine.last("models").params["dirs"]


def test_gallery_reopens_into_timeline_and_deletes(qtbot, state):
    first = generate(qtbot, state)
    generate(qtbot, state)
    gv = state.gallery
    assert len(gv.entries) == 2
    gv.select(first.id)
    with qtbot.waitSignal(state.page_requested) as page:
        gv.open()
    assert page.args == ["timeline"] and state.timeline.sticker.id == first.id
    state.create.set_value("prompt", "something else")
    with qtbot.waitSignal(state.page_requested) as page:
        gv.reuse()  # the recipe back into the Create form
    assert page.args == ["create"] and state.create.prompt == first.prompt
    assert state.create.seed == first.recipe["seed"]
    gv.delete(first.id)
    assert [s.id for s in gv.entries] != [first.id] and len(gv.entries) == 1 and gv.current is None


def test_corrupt_settings_fall_back_to_defaults(tmp_path):
    path = tmp_path / "settings.ini"
    path.write_bytes(b"\x00\xff[[[\nfoo=\x01\x02\"\n[bad")
    s = Settings(path)
    assert "defaults" in s.problem and (tmp_path / "settings.ini.corrupt").exists()
    assert s.get("create/frames") == 8
    s.set("create/frames", 12)
    s.set("timeline/speed", "fast")  # a wrong type on disk falls back for that key only
    s.sync()
    again = Settings(path)
    assert again.problem == "" and again.get("create/frames") == 12 and again.get("timeline/speed") == 1.0
    again.set("create/frames", 99)  # out of range
    assert again.get("create/frames") == 8
