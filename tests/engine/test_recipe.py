"""The recipe inside a written sticker is its request: read it back, regenerate, get the same pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from rdtf_engine.core.errors import InputError
from rdtf_engine.core.model_folder import weights_sha256
from rdtf_engine.core.requests import GenerateRequest, from_wire, to_wire
from rdtf_engine.formats.loader import load_clip
from rdtf_engine.jobs.api import generate
from rdtf_engine.platforms.check import inspect_bytes


def read_recipe(path) -> dict:
    return inspect_bytes(path.read_bytes())[2]


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_regenerating_from_a_stickers_recipe_is_bit_for_bit(tiny_run, tmp_path, fmt):
    """Every request field travels in the file (seed resolved, model by name + weights hash), no local path
    does; the given first frame comes from the sticker itself. From a lossless file (PNG/APNG, and the PNG
    frames the app keeps) the remake is bit for bit; from a lossy WebP it is as close as the compression allows."""
    model = tiny_run[0] / "model"
    start = np.zeros((32, 32, 4), np.uint8)
    start[6:26, 6:26] = (220, 40, 30, 255)
    Image.fromarray(start, "RGBA").save(tmp_path / "start.png")
    first = tmp_path / f"first.{fmt}"
    req = GenerateRequest(prompt="a red square bouncing", model=str(model), frames=4, size=32, steps=3,
                          guidance_text=3.0, guidance_image=2.5, strength=0.7, scheduler="ddim", duration_ms=80,
                          init_image=str(tmp_path / "start.png"), out=str(first))
    req.validate()
    made = generate(req)

    recipe = read_recipe(first)
    text = json.dumps(recipe)
    assert str(tmp_path) not in text and "model_path" not in recipe and "init_image" not in recipe
    assert recipe["model_sha256"] == weights_sha256(model) and isinstance(recipe["seed"], int)
    assert {k: recipe[k] for k in ("guidance_image", "strength", "scheduler", "duration_ms", "locked")} == {
        "guidance_image": 2.5, "strength": 0.7, "scheduler": "ddim", "duration_ms": 80, "locked": [0]}

    sticker = load_clip(str(first))
    given = tmp_path / "given.png"
    Image.fromarray(sticker.frames[0], "RGBA").save(given)
    again = GenerateRequest.from_recipe(recipe, model=str(model), cond_frames=[str(given), None, None, None],
                                        out=str(tmp_path / f"again.{fmt}"))
    again.validate()
    remade = generate(again)
    if fmt == "png":  # lossless: the given frame read back is the one first given, so the sticker comes back exactly
        assert np.array_equal(remade.frames, made.frames)
        assert np.array_equal(load_clip(again.out).frames, sticker.frames)
    else:  # lossy WebP: the given frame read back differs by compression, and so, slightly, does the remake
        diff = np.abs(remade.frames.astype(int) - made.frames.astype(int))
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 8


def test_requests_cross_the_wire_unchanged():
    req = GenerateRequest(prompt="cat", frames=3, cond_frames=["a.png", None, None], scheduler="ddim", seed=4)
    op, params = to_wire(req)
    assert op == "generate" and from_wire(op, json.loads(json.dumps(params))) == req
    with pytest.raises(InputError, match="unknown op"):
        from_wire("paint", {})
    with pytest.raises(InputError, match="prompt"):
        from_wire("generate", {"frames": 3})
    # every request's fields are typed on arrival: a number where a path belongs is refused, naming the field
    for op, params, field in [("export", {"input": 5, "preset": "telegram", "out": "x.webm"}, "input"),
                              ("export", {"input": "a.gif", "preset": "telegram", "out": "x", "options": []}, "options"),
                              ("check", {"path": "a.gif", "preset": ["telegram"]}, "preset"),
                              ("models", {"dirs": "runs"}, "dirs")]:
        with pytest.raises(InputError, match=field):
            from_wire(op, params).validate()
