"""Train page state: import a pack, fix captions, pick a recipe, run/pause/resume/stop a training run.

The default recipe fine-tunes the shipped model on the pack (``rdtf_engine.core.recipes``); training from
scratch is the advanced choice, shown with a warning. Import and device queries go to the ``engine`` worker;
the run itself goes to the separate ``trainer`` worker so it survives whatever generation does. The page sends
a ``TrainRequest`` (``to_dict``) and keeps it in the run's ``run.json``. Pause and Stop both cancel the job (the
engine writes a checkpoint on stop); Resume sends the saved request again with ``run.resume`` set. Stop also
remembers the run as dismissed so it is not offered for resuming at the next start.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from app.logs import human_message
from app.state import runs
from app.state.base import ViewModel, qprop
from rdtf_engine.core.events import Metrics, event_from_dict
from rdtf_engine.core.recipes import APP_RECIPES, DEFAULT_RECIPE, SCRATCH_WARNING
from rdtf_engine.core.requests import TrainRequest, to_dict

MAX_LOSS_POINTS = 5000  # the plot keeps every step of a standard run; a long run is thinned 2:1 past this


class TrainViewModel(ViewModel):
    source_changed = Signal(str)
    importing_changed = Signal(bool)
    report_changed = Signal(object)
    captions_changed = Signal(object)
    dataset_changed = Signal(str)
    choice_changed = Signal(str)
    device_changed = Signal(object)
    estimate_changed = Signal(str)
    warning_changed = Signal(str)
    state_changed = Signal(str)
    step_changed = Signal(int)
    total_changed = Signal(int)
    losses_changed = Signal(object)
    stage_changed = Signal(str)
    samples_changed = Signal(object)
    speed_changed = Signal(str)
    offers_changed = Signal(object)
    model_ready = Signal(str)  # model folder of a finished run

    source = qprop(str, "source", source_changed)
    importing = qprop(bool, "importing", importing_changed)
    report = qprop(dict, "report", report_changed)
    captions = qprop(list, "captions", captions_changed)
    dataset = qprop(str, "dataset", dataset_changed)
    choice = qprop(str, "choice", choice_changed)
    device = qprop(dict, "device", device_changed)
    estimate = qprop(str, "estimate", estimate_changed)
    warning = qprop(str, "warning", warning_changed)  # the from-scratch warning, "" for a fine-tune
    state = qprop(str, "state", state_changed)  # idle | running | stopping | paused | done
    step = qprop(int, "step", step_changed)
    total = qprop(int, "total", total_changed)
    losses = qprop(list, "losses", losses_changed)
    stage = qprop(str, "stage", stage_changed)
    samples = qprop(list, "samples", samples_changed)
    speed = qprop(str, "speed", speed_changed)
    offers = qprop(list, "offers", offers_changed)

    def __init__(self, engine: Any, trainer: Any, dirs: Any, settings: Any = None) -> None:
        super().__init__()
        self.engine, self.trainer, self.dirs, self.settings = engine, trainer, dirs, settings
        self._source, self._importing, self._report, self._captions, self._dataset = "", False, {}, [], ""
        choice = settings.get("train/recipe") if settings is not None else DEFAULT_RECIPE
        self._choice = choice if choice in APP_RECIPES else DEFAULT_RECIPE
        self._device: dict = {}
        self._estimate, self._warning = "", ""
        self._state, self._step, self._total = "idle", 0, 0
        self._losses: list[tuple[int, float]] = []
        self._stage, self._samples, self._speed, self._offers = "", [], "", []
        self._header: list[str] = ["file", "caption"]
        self._rows: list[list[str]] = []
        self._col = 1
        self.run_dir: Path | None = None
        self.job: Any | None = None
        self._pausing = False
        self._last_speed = 0.0
        self._update_estimate()

    # ---- data ------------------------------------------------------------------------------------------
    def import_source(self, path: str) -> None:
        """A folder or zip of stickers → a normalised dataset folder plus a report of what was skipped."""
        if self._importing:
            return
        self._set("source", path)
        self._set("importing", True)
        out = runs.new_run_dir(self.dirs.datasets, Path(path).stem)
        job = self.engine.submit("import", {"path": path, "out": str(out), "size": runs.IMPORT_SIZE})
        job.finished.connect(lambda report: self._on_imported(out, report))
        job.failed.connect(self._on_import_failed)

    def _on_imported(self, out: Path, report: dict) -> None:
        self._set("importing", False)
        self._set("report", dict(report))
        self._set("dataset", str(report.get("out") or out))
        self.load_captions()
        self._update_estimate()  # (a pack too small or too big for the fine-tune is said now, not at Start)
        n, skipped = len(report.get("imported") or []), len(report.get("skipped") or [])
        self.info(f"Imported {n} sticker(s)" + (f"; {skipped} skipped (see the report)." if skipped else "."))

    def _on_import_failed(self, error_type: str, message: str) -> None:
        self._set("importing", False)
        self.error(human_message(error_type, message))

    def load_captions(self) -> None:
        self._header, self._rows, self._col = runs.read_captions(Path(self._dataset))
        src = Path(self._source) if self._source and Path(self._source).is_dir() else None
        self._set("captions", [{"key": r[0], "caption": r[self._col] if self._col < len(r) else "",
                                "thumb": runs.thumbnail_for(Path(self._dataset), r[0], src)} for r in self._rows])

    def set_caption(self, row: int, text: str) -> None:
        if not (0 <= row < len(self._rows)):
            return
        r = self._rows[row]
        r += [""] * (self._col + 1 - len(r))
        r[self._col] = text.strip()
        caps = list(self._captions)
        caps[row] = {**caps[row], "caption": text.strip()}
        self._set("captions", caps)
        runs.write_captions(Path(self._dataset), self._header, self._rows)

    # ---- recipe and estimate --------------------------------------------------------------------------
    def set_choice(self, choice: str) -> None:
        if choice in APP_RECIPES and self._set("choice", choice):
            if self.settings is not None:
                self.settings.set("train/recipe", choice)
            self._update_estimate()

    def refresh_device(self) -> None:
        job = self.engine.submit("device", {})
        job.finished.connect(lambda info: (self._set("device", dict(info)), self._update_estimate()))

    def _speed_key(self) -> str:
        return f"train/speed/{runs.device_kind(self._device)}/{self._choice}"

    def _update_estimate(self) -> None:
        measured = None
        if self.settings is not None:
            try:
                measured = float(self.settings.raw(self._speed_key(), 0) or 0) or None
            except (TypeError, ValueError):
                measured = None
        secs = runs.estimate_seconds(self._choice, self._device, measured)
        where = self._device.get("name") or runs.device_kind(self._device).upper()
        self._set("estimate", f"about {runs.format_duration(secs)} on {where}")
        scratch = runs.recipe_for(self._choice, self._device).from_scratch
        stickers = len(self._rows) if self._dataset else None
        self._set("warning", SCRATCH_WARNING if scratch else runs.pack_size_warning(stickers))

    # ---- the run ---------------------------------------------------------------------------------------
    def start(self) -> None:
        if self._state in ("running", "stopping"):
            return
        if not self._dataset:
            self.warn("Pick a folder or zip of stickers first.")
            return
        run_dir = runs.new_run_dir(self.dirs.runs, Path(self._source or self._dataset).stem)
        req = runs.train_request(self._choice, self._device, self._dataset, run_dir)
        runs.write_request(run_dir, req)  # the run can be resumed even if the app closes before a checkpoint
        self._set("losses", [])
        self._set("samples", [])
        self._run(run_dir, req)

    def resume(self, run_dir: str | None = None) -> None:
        target = Path(run_dir) if run_dir else self.run_dir
        req = runs.read_request(target) if target else None
        if req is None or self._state in ("running", "stopping"):
            self.warn("There is no run to resume.")
            return
        self._set("offers", [o for o in self._offers if o["run_dir"] != str(target)])
        self._run(target, dataclasses.replace(req, run=dataclasses.replace(req.run, out=str(target), resume=True)))

    def _run(self, run_dir: Path, req: TrainRequest) -> None:
        self.run_dir, self._pausing, self._last_speed = run_dir, False, 0.0
        self._set("total", int(req.train.steps))
        self._set("speed", "")
        self._set("state", "running")
        job = self.trainer.submit("train", to_dict(req))
        self.job = job
        job.progress.connect(self._on_progress)
        job.metrics.connect(self._on_metrics)
        job.preview.connect(lambda _s, paths, _c: self._set("samples", list(paths)))
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)

    def pause(self) -> None:
        if self._state == "running" and self.job is not None:
            self._pausing = True
            self._set("state", "stopping")
            self.trainer.cancel(self.job)

    def stop(self) -> None:
        """Stop for good: like pause, and the run is not offered for resuming again."""
        if self.run_dir is not None:
            self._dismiss(str(self.run_dir))
        if self._state == "running" and self.job is not None:
            self._pausing = False
            self._set("state", "stopping")
            self.trainer.cancel(self.job)
        elif self._state == "paused":
            self._set("state", "idle")

    def _on_progress(self, stage: str, step: int, total: int, msg: str) -> None:
        if stage == "train":
            self._set("step", step)
            self._set("total", total)
            if msg and not self._last_speed:  # the engine's ETA from its first steps, until metrics arrive
                self._set("speed", msg)
        else:  # e.g. the autoencoder phase before the denoiser trains
            self._set("stage", f"{stage} {step}/{total}")

    def _on_metrics(self, step: int, m: Metrics | dict) -> None:
        if isinstance(m, dict):  # a worker protocol line not decoded yet
            m = event_from_dict({"kind": "metrics", "step": step, **m})
        if m.stage == "autoencoder":
            # The autoencoder trains first with its own step count and a different loss: say so, keep the
            # denoiser's curve clean.
            if m.loss is not None:
                self._set("stage", f"autoencoder (loss {m.loss:.3f})")
            return
        if m.stage != "train":  # the held-out loss: the curve shows the training loss only
            return
        if m.loss is not None:
            self._set("step", m.step)
            pts = self._losses + [(m.step, float(m.loss))]
            self._set("losses", pts[::2] if len(pts) > MAX_LOSS_POINTS else pts)
        self._set("stage", curriculum_text(m))
        parts = []
        if m.steps_per_s:
            self._last_speed = float(m.steps_per_s)
            parts.append(f"{self._last_speed:.2f} steps/s")
        if m.eta_s is not None:
            parts.append(f"ETA {runs.format_duration(float(m.eta_s))}")
        if m.gpu_mem_mb:
            parts.append(f"GPU {float(m.gpu_mem_mb):.0f} MB")
        if parts:
            self._set("speed", " · ".join(parts))

    def _on_finished(self, result: dict) -> None:
        self.job = None
        if self._last_speed and self.settings is not None:
            self.settings.set_raw(self._speed_key(), self._last_speed)  # better estimates next time
            self._update_estimate()
        if result.get("stopped"):
            self._set("state", "paused" if self._pausing else "idle")
            self.info("Training paused; a checkpoint was saved." if self._pausing else "Training stopped.")
            return
        self._set("state", "done")
        if result.get("model_dir"):
            self.model_ready.emit(str(result["model_dir"]))
        self.info("Training finished. Your model is in the model picker.")

    def _on_failed(self, error_type: str, message: str) -> None:
        self.job = None
        if error_type == "Cancelled":
            self._set("state", "paused" if self._pausing else "idle")
            return
        # checkpoints survive a crash: offer Resume — unless it failed before its first one (a pack it cannot
        # read, too few stickers): then there is nothing to resume, and Start again is the way
        resumable = self.run_dir is not None and runs.has_checkpoint(self.run_dir)
        self._set("state", "paused" if resumable else "idle")
        self.error(human_message(error_type, message))

    # ---- resume offers ---------------------------------------------------------------------------------
    def _dismissed(self) -> set[str]:
        raw = self.settings.raw("train/dismissed", []) if self.settings is not None else []
        return set(raw if isinstance(raw, list) else [raw] if raw else [])

    def _dismiss(self, run_dir: str) -> None:
        if self.settings is not None:
            self.settings.set_raw("train/dismissed", sorted(self._dismissed() | {run_dir}))

    def scan_unfinished(self) -> None:
        self._set("offers", runs.unfinished_runs(self.dirs.runs, self._dismissed()))

    def dismiss_offer(self, run_dir: str) -> None:
        self._dismiss(run_dir)
        self._set("offers", [o for o in self._offers if o["run_dir"] != run_dir])


def curriculum_text(m: Metrics) -> str:
    """"adaptive · t2v 60%, i2v 30% · difficulty 3": the curriculum mode, its two likeliest tasks, its bucket."""
    if not m.curriculum:
        return ""
    tasks = ", ".join(f"{k} {v:.0%}" for k, v in list(m.task_shares().items())[:2])
    difficulty = f" · difficulty {m.bucket}" if m.bucket is not None else ""
    return m.curriculum + (f" · {tasks}" if tasks else "") + difficulty
