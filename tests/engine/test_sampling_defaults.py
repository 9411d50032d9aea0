"""The sampler and step count a generation runs when the request names none: UniPC 10 for text alone, DPM-Solver++
20 with frames given (core/requests.py ``sampling``); the sticker's recipe records what ran."""

from __future__ import annotations

import pytest

from rdtf_engine.core.errors import InputError
from rdtf_engine.core.events import Progress
from rdtf_engine.core.requests import GenerateRequest, sampling
from rdtf_engine.jobs.api import generate


@pytest.mark.parametrize(("scheduler", "steps", "frames", "expected"), [
    (None, None, False, ("unipc", 10)),  # text alone: the few-step sampler
    (None, None, True, ("dpm", 20)),  # frames given: DPM-Solver++ keeps more of the given character
    ("dpm", None, False, ("dpm", 20)),  # a named sampler without steps: 20
    ("unipc", None, True, ("unipc", 20)),
    ("ddim", None, False, ("ddim", 20)),
    (None, 7, False, ("unipc", 7)),  # steps given: the task's sampler at those steps
    (None, 7, True, ("dpm", 7)),
    ("ddim", 50, True, ("ddim", 50)),
])
def test_sampling_defaults_by_task(scheduler, steps, frames, expected):
    assert sampling(scheduler, steps, frames) == expected


def test_request_checks_named_values_only():
    GenerateRequest(prompt="x").validate()  # steps and scheduler left to the engine
    with pytest.raises(InputError, match="steps"):
        GenerateRequest(prompt="x", steps=0).validate()
    with pytest.raises(InputError, match="scheduler"):
        GenerateRequest(prompt="x", scheduler="euler").validate()


def test_the_recipe_records_the_sampler_and_steps_that_ran(tiny_run, tmp_path):
    model = str(tiny_run[0])
    events: list = []
    res = generate(GenerateRequest(prompt="a blue star spinning", model=model, frames=4, size=32, seed=1),
                   on_event=events.append)
    assert (res.recipe["scheduler"], res.recipe["steps"]) == ("unipc", 10)
    assert [e.step for e in events if isinstance(e, Progress)][-1] == 10
    again = generate(GenerateRequest.from_recipe(res.recipe, model=model))
    assert (again.frames == res.frames).all()  # the recipe remakes the sticker
    start = tmp_path / "start.png"
    from PIL import Image

    Image.fromarray(res.frames[0]).save(start)
    given = generate(GenerateRequest(prompt="a blue star spinning", model=model, frames=4, size=32, seed=1,
                                     init_image=str(start)))
    assert (given.recipe["scheduler"], given.recipe["steps"]) == ("dpm", 20)
