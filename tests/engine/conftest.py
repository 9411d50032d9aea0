"""Engine fixtures: one tiny real training run shared by the train, pipeline and CLI tests (CPU, seconds)."""

from __future__ import annotations

import pytest

from rdtf_engine.core.requests import TrainRequest


def tiny_request(out, **kw) -> TrainRequest:
    base = {"data": "builtin:shapes", "out": str(out), "preset": "tiny", "steps": 100, "size": 32, "batch_size": 8,
            "lr": 1e-3, "ae_steps": 150, "checkpoint_every": 50, "max_clips": 64, "seed": 0}
    base.update(kw)
    return TrainRequest.of(**base)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A 100-step tiny DFGN (+ its autoencoder) on builtin:shapes at 32 px: (run_dir, result, events)."""
    from rdtf_engine.training.loop import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    events: list = []
    result = train(tiny_request(out), on_event=events.append)
    return out, result, events


@pytest.fixture
def make_request():
    """The tiny training request, for tests that start their own runs."""
    return tiny_request
