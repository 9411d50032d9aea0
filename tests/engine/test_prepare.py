"""Preparing a model (``rdtf prepare`` / the worker's ``prepare``): after it, a sticker of the same shapes builds no
denoiser runtime of its own; the request is checked like the others."""

from __future__ import annotations

import json

import pytest

from rdtf_engine.core.errors import InputError
from rdtf_engine.core.requests import GenerateRequest, PrepareRequest, from_wire
from rdtf_engine.diffusion import cpu_choice


def test_the_prepare_request_is_checked_like_a_generate_request():
    req = from_wire("prepare", {"model": "default", "frames": 4, "size": 128, "given": True})
    assert isinstance(req, PrepareRequest) and req.given
    req.validate()
    for bad in ({"frames": 0}, {"size": 100}, {"size": 4096}, {"scheduler": "euler"}, {"device": "tpu:7"},
                {"model": ""}, {"given": "yes"}):
        with pytest.raises(InputError):
            from_wire("prepare", {"model": "default", **bad}).validate()


@pytest.mark.skipif(not cpu_choice.onnx_installed(), reason="onnxruntime not installed")
@pytest.mark.slow  # exports a tiny denoiser to ONNX for two shapes
def test_a_prepared_model_draws_its_first_sticker_with_what_was_built(tiny_run, monkeypatch, tmp_path, capsys):
    from rdtf_engine.cli.main import main
    from rdtf_engine.jobs import api

    monkeypatch.setenv("RDTF_HOME", str(tmp_path))
    monkeypatch.setenv("RDTF_CPU_RUNTIME", "onnx")
    monkeypatch.setattr(api, "_PIPES", {})  # a process that has drawn nothing yet
    model = str(tiny_run[1]["model_dir"])
    assert main(["--events", "jsonl", "prepare", "--model", model, "--frames", "4", "--given"]) == 0
    done = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert done["kind"] == "finished" and done["result"]["graphs"] >= 1 and done["result"]["device"] == "cpu"
    text_only = api.prepare(PrepareRequest(model=model, frames=4, size=32))
    assert text_only["graphs"] >= 1
    pipe = next(iter(api._PIPES.values()))
    built = dict(pipe.step_fns._built)
    assert built and all(f is not None for f in built.values())  # every shape got its ONNX Runtime step

    frame = tmp_path / "start.png"
    from PIL import Image

    Image.new("RGBA", (32, 32), (200, 30, 30, 255)).save(frame)
    for req in (GenerateRequest(prompt="a circle", model=model, frames=4, size=32, seed=1),
                GenerateRequest(prompt="a circle", model=model, frames=4, size=32, seed=1, init_image=str(frame))):
        api.generate(req)
        assert set(pipe.step_fns.used) <= set(built)  # nothing built for the sticker itself
    assert pipe.step_fns._built.keys() == built.keys()
