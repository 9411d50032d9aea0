"""Property-based fuzzing of what callers hand the engine as data: request dicts (from the app, a request file or
the worker protocol) and dataset manifests (a dataset folder may come from anyone). Plus the input bounds found
by hand: captions that are spreadsheet formulas or bidi tricks, the start-image decode, a pack's total budget."""

from __future__ import annotations

import csv
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from rdtf_engine.core.errors import InputError, LimitError, RdtfError
from rdtf_engine.core.requests import GenerateRequest, TrainRequest, from_dict

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
                    max_leaves=12)
FUZZ = settings(max_examples=80, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _request_dicts(cls, required: dict):
    names = [f for f in cls.__dataclass_fields__]
    values = st.one_of(JSON, st.sampled_from(["cpu", "auto", "cuda", "tpu:7", "tiny", "dpm", "adaptive", "sti"]),
                       st.integers(-10, 600), st.floats(allow_nan=True, allow_infinity=True))
    return st.fixed_dictionaries({}, optional={**{n: values for n in names}, **required})


@FUZZ
@given(data=_request_dicts(GenerateRequest, {"prompt": st.text(max_size=40)}))
def test_generate_request_from_any_dict_is_valid_or_an_input_error(data):
    try:
        from_dict(GenerateRequest, data).validate()
    except InputError:
        return
    assert isinstance(data["prompt"], str) and 1 <= data.get("frames", 8) <= 24  # accepted means really valid


@pytest.mark.parametrize("value", [0, "a.png", {"0": "a.png"}])
def test_a_list_field_given_a_non_list_is_an_input_error(value):
    """``cond_frames: list[str | None]``: the '|' inside the brackets is not a union of the field (a case the
    fuzzer found: 0 got through to a TypeError)."""
    with pytest.raises(InputError, match="cond_frames must be list"):
        from_dict(GenerateRequest, {"prompt": "cat", "cond_frames": value}).validate()


@FUZZ
@given(data=_request_dicts(TrainRequest, {"data": st.text(max_size=10), "out": st.text(max_size=10)}))
def test_train_request_from_any_dict_is_valid_or_an_input_error(data):
    try:
        from_dict(TrainRequest, data).validate()
    except InputError:
        return
    assert data.get("checkpoint_every", 100) >= 1 and data.get("steps", 1000) >= 1


@FUZZ
@given(data=JSON)
def test_from_dict_of_a_non_object_is_an_input_error(data):
    if isinstance(data, dict) and "prompt" in data:
        return
    with pytest.raises(InputError):
        from_dict(GenerateRequest, data).validate()


# ---- dataset manifests ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    from rdtf_engine.datasets.dataset import import_pack

    root = tmp_path_factory.mktemp("manifest-fuzz")
    pack = root / "pack"
    pack.mkdir()
    frames = [Image.new("RGBA", (16, 16), (90 * i, 10, 10, 255)) for i in range(2)]
    frames[0].save(pack / "wave.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    import_pack(pack, root / "ds", size=32)
    return root / "ds"


def _entry():
    good = {"id": st.sampled_from(["0000_wave", "../x", "", "a/b", "0000_wave" * 20]),
            "frames": st.one_of(st.integers(-2, 3), st.sampled_from(["abc", 2.0, None, 10**30])),
            "durations_ms": st.one_of(st.just([100, 100]), JSON), "caption": JSON, "source": JSON, "labels": JSON,
            "original_frames": JSON}
    return st.one_of(JSON, st.fixed_dictionaries({}, optional=good))


@FUZZ
@given(doc=st.one_of(JSON, st.fixed_dictionaries(
    {"format": st.sampled_from(["rdtf-dataset", "x"])},
    optional={"clips": st.one_of(JSON, st.lists(_entry(), max_size=3)), "clips_dir": JSON, "size": JSON})))
def test_any_manifest_loads_or_is_a_typed_error(dataset, doc):
    from rdtf_engine.datasets.dataset import load_dataset

    manifest = dataset / "manifest.json"
    original = manifest.read_text()
    try:
        manifest.write_text(json.dumps(doc))
        try:
            clips = load_dataset(dataset, 32)
        except RdtfError:
            return
        assert clips and all(c.frames.shape[1:] == (32, 32, 4) for c in clips)
    finally:
        manifest.write_text(original)


@pytest.mark.parametrize("field,value,match", [("frames", "abc", "frames"), ("clips", [1, 2], "no readable"),
                                               ("clips", "x", "'clips' must be a list"),
                                               ("clips_dir", "../../etc", "clips_dir")])
def test_tampered_manifest_names_the_field(dataset, field, value, match):
    from rdtf_engine.datasets.dataset import load_dataset

    manifest = dataset / "manifest.json"
    original = manifest.read_text()
    doc = json.loads(original)
    if field == "frames":
        doc["clips"][0]["frames"] = value
    else:
        doc[field] = value
    try:
        manifest.write_text(json.dumps(doc))
        with pytest.raises(RdtfError, match=match):
            load_dataset(dataset, 32)
    finally:
        manifest.write_text(original)


def test_tampered_manifest_in_train_is_a_one_line_error(dataset, tmp_path, capsys):
    from rdtf_engine.cli.main import main

    manifest = dataset / "manifest.json"
    original = manifest.read_text()
    doc = json.loads(original)
    doc["clips"][0]["frames"] = "abc"
    try:
        manifest.write_text(json.dumps(doc))
        rc = main(["train", "--data", str(dataset), "--out", str(tmp_path / "run"), "--steps", "2", "--size", "32",
                   "--device", "cpu"])
    finally:
        manifest.write_text(original)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        (f"error: {dataset} has no readable sticker clips (skipped clip 0: manifest clips[0].frames must be a whole "
        "number 1-1000, got 'abc')")]
    assert not (tmp_path / "run").exists()


# ---- captions, start images, pack budgets --------------------------------------------------------------------
def test_captions_csv_neutralises_formulas_and_bidi(tmp_path):
    from rdtf_engine.datasets.dataset import import_pack, load_dataset

    pack = tmp_path / "pack"
    pack.mkdir()
    names = ["=cmd", "+sum", "@evil", "safe"]
    for i, _n in enumerate(names):
        Image.new("RGBA", (16, 16), (60 * i, 0, 0, 255)).save(pack / f"s{i}.png")
    captions = ["=cmd|' /C calc'!A0", "+SUM(A1)", "@x \u202egnp.exe", "a \u202ecat"]
    (pack / "captions.csv").write_text("file,caption\n" + "".join(f"s{i}.png,\"{c}\"\n" for i, c in
                                                                   enumerate(captions)), "utf-8")
    import_pack(pack, tmp_path / "ds", size=32)
    rows = list(csv.reader(io.StringIO((tmp_path / "ds" / "captions.csv").read_text("utf-8"))))[1:]
    cells = [r[1] for r in rows]
    assert not any(c.startswith(("=", "+", "-", "@")) for c in cells)
    assert not any("\u202e" in c for c in cells)
    trained = sorted(c.caption for c in load_dataset(tmp_path / "ds", 32))
    assert "=cmd|' /C calc'!A0" in trained  # the model reads the caption as written, without the quote


def test_start_image_decodes_only_the_first_frame(tmp_path, monkeypatch):
    from rdtf_engine.formats.frame_collector import FrameCollector
    from rdtf_engine.jobs.api import load_frame

    path = tmp_path / "long.gif"
    frames = [Image.new("RGBA", (64, 64), (i * 4, 255 - i * 4, 0, 255)) for i in range(60)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    added = []
    real_add = FrameCollector.add
    monkeypatch.setattr(FrameCollector, "add", lambda self, f, d: added.append(1) or real_add(self, f, d))
    frame = load_frame(str(path), 32)
    assert frame.shape == (32, 32, 4) and len(added) == 1  # not 60


def test_pack_import_has_a_total_budget(tmp_path):
    from rdtf_engine.datasets.dataset import PackBudget, import_pack

    pack = tmp_path / "pack"
    pack.mkdir()
    for i in range(4):
        Image.new("RGBA", (64, 64), (i, 0, 0, 255)).save(pack / f"s{i}.png")
    with pytest.raises(LimitError, match="split it into smaller packs"):
        import_pack(pack, tmp_path / "ds", size=32, budget=PackBudget(pixels=3 * 64 * 64))
    assert not (tmp_path / "ds").exists()
    with pytest.raises(LimitError, match="minute budget"):
        import_pack(pack, tmp_path / "ds", size=32, budget=PackBudget(seconds=-1))
