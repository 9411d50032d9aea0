"""The run file: one ``run.json`` per training run, holding its ``TrainRequest`` (``to_dict``'s nested form).

The app writes it when it starts a run, the engine rewrites it once the request is resolved (a fine-tune's
architecture taken from its base model), and both read it back: the engine on ``--resume`` (the saved request
wins, see ``training.run_setup``), the app to offer unfinished runs. Runs made before this file existed keep
working: their ``train_config.json`` (engine) or ``studio_request.json`` (app) is read instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from rdtf_engine.core.atomic import write_text_atomic
from rdtf_engine.core.requests import TrainRequest, to_dict

RUN_FILE = "run.json"
LEGACY_RUN_FILES = ("train_config.json", "studio_request.json")  # flat requests of older engines / apps


def write_run_file(run_dir: str | Path, req: TrainRequest) -> Path:
    return write_text_atomic(Path(run_dir) / RUN_FILE, json.dumps(to_dict(req), indent=1))


def read_run_file(run_dir: str | Path) -> TrainRequest | None:
    """The run's request, from run.json or a legacy file; None if there is none or it is unreadable."""
    for name in (RUN_FILE, *LEGACY_RUN_FILES):
        try:
            data = json.loads((Path(run_dir) / name).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            try:
                return TrainRequest.from_dict(data)
            except (TypeError, ValueError):  # a hand-edited file with a wrong type: as good as none
                continue
    return None
