"""Create page state: the generation form, its progress, and the sticker it produced."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from app.jobs import Engine, JobHandle
from app.logs import human_message
from app.state.base import ViewModel, qprop
from app.state.sticker import MODEL_REF, GalleryStore, Sticker, from_result
from rdtf_engine.core.errors import InputError
from rdtf_engine.core.requests import DEFAULT_GUIDANCE_TEXT, GenerateRequest, PrepareRequest, sampling
from rdtf_engine.core.results import GeneratedSticker

EXAMPLES = [
    "a red heart beating",
    "cat waving hello",
    "smiling face bouncing",
    "star spinning",
    "thumbs up shaking",
    "ghost floating and blinking",
]
SIZES = [64, 128, 256, 512]
FORM_FIELDS = ("prompt", "frames", "size", "steps", "seed", "guidance", "model", "start_image", "end_image", "fast")
FEW_STEP = "lcm"  # the engine's few-step sampler: a model with few-step deltas draws with it when Fast is ticked


class CreateViewModel(ViewModel):
    prompt_changed = Signal(str)
    frames_changed = Signal(int)
    size_changed = Signal(int)
    steps_changed = Signal(int)
    seed_changed = Signal(int)
    guidance_changed = Signal(float)
    model_changed = Signal(str)
    models_changed = Signal(object)
    start_image_changed = Signal(str)
    end_image_changed = Signal(str)
    style_tag_changed = Signal(str)
    fast_steps_changed = Signal(int)
    fast_changed = Signal(bool)
    busy_changed = Signal(bool)
    progress_changed = Signal(float)
    status_changed = Signal(str)
    preview_changed = Signal(object)
    generated = Signal(object)  # Sticker

    prompt = qprop(str, "prompt", prompt_changed)
    frames = qprop(int, "frames", frames_changed)
    size = qprop(int, "size", size_changed)
    steps = qprop(int, "steps", steps_changed)
    seed = qprop(int, "seed", seed_changed)
    guidance = qprop(float, "guidance", guidance_changed)
    model = qprop(str, "model", model_changed)
    models = qprop(list, "models", models_changed)
    start_image = qprop(str, "start_image", start_image_changed)
    end_image = qprop(str, "end_image", end_image_changed)
    # The picked model's style tag ("" = none): words that switch its style deltas on (e.g. "in 3d style")
    style_tag = qprop(str, "style_tag", style_tag_changed)
    # The picked model's few-step sampler steps (0 = it has no few-step deltas), and whether to draw with them
    fast_steps = qprop(int, "fast_steps", fast_steps_changed)
    fast = qprop(bool, "fast", fast_changed)
    busy = qprop(bool, "busy", busy_changed)
    progress = qprop(float, "progress", progress_changed)
    status = qprop(str, "status", status_changed)
    preview = qprop(list, "preview", preview_changed)

    def __init__(self, engine: Engine, store: GalleryStore, settings: Any = None) -> None:
        super().__init__()
        self.engine, self.store, self.settings = engine, store, settings
        get = settings.get if settings is not None else (lambda k: None)
        self._prompt = EXAMPLES[0]
        self._frames = get("create/frames") or 8
        self._size = get("create/size") or 256
        self._steps = get("create/steps") or 0  # 0 = Auto: the engine's sampler and steps for the task
        self._seed = random.randrange(1 << 31)
        self._guidance = get("create/guidance") or DEFAULT_GUIDANCE_TEXT
        self._model = get("create/model") or "default"
        self._models: list[dict] = [{"name": "default", "path": "default", "builtin": True}]
        self._start_image = self._end_image = self._style_tag = ""
        self._fast_steps, self._fast = 0, bool(get("create/fast"))
        self._busy, self._progress, self._status, self._preview = False, 0.0, "", []
        # Request fields the form has no widget for; a reused recipe sets them so its sticker comes out the same.
        self.extra: dict[str, Any] = {}
        self.job: JobHandle | None = None
        self.last: Sticker | None = None
        self.prepare_job: JobHandle | None = None  # the engine getting ready for the form's model (prepare)
        self._prepared: tuple | None = None  # what it was last asked to get ready for

    def set_value(self, name: str, value: Any) -> None:
        """Form edits from widgets; values are validated when Generate is pressed, not per keystroke."""
        if name not in FORM_FIELDS:
            raise KeyError(name)
        changed_model = name == "model" and value != self._model
        self._set(name, value)
        if name == "model":
            self.extra.pop("model_sha256", None)  # another model: the recipe's weights no longer apply
        if changed_model:
            self._take_model_guidance(str(value))
        if name == "model":
            self._take_model_traits()
        if self.settings is not None and name in ("frames", "size", "steps", "guidance", "model", "fast"):
            self.settings.set(f"create/{name}", value)
        if name in ("model", "fast"):  # (frames and sizes are prepared by the next Generate itself)
            self.prepare()

    def prepare(self) -> None:
        """Have the engine load the picked model and build what Generate will draw with at the form's frames and
        size (``PrepareRequest``), so the first sticker takes what every later one does. Sent when the app opens
        (the model list arrives) and when another model or the Fast box is picked; one still waiting is replaced.
        Quiet: a model that cannot load is reported when Generate is pressed."""
        given = bool(self._start_image or self._end_image)
        scheduler = FEW_STEP if self._fast and self._fast_steps else None
        key = (self.model_ref(), int(self._frames), int(self._size), given, scheduler)
        if self._busy or key == self._prepared:
            return
        self.stop_preparing()
        self._prepared = key
        job = self.prepare_job = self.engine.submit(PrepareRequest(model=key[0], frames=key[1], size=key[2],
                                                                   given=given, scheduler=scheduler))
        job.failed.connect(lambda _t, _m, job=job: self._prepare_failed(job))

    def _prepare_failed(self, job: JobHandle) -> None:
        """A preparation that did not finish (cancelled, or the model did not load): the next trigger tries again."""
        if job is self.prepare_job:
            self.prepare_job, self._prepared = None, None

    def stop_preparing(self) -> None:
        """Stop a preparation still running (at its next denoising step: the loading under way finishes, and the
        job that asked needs it anyway); the next trigger prepares again."""
        if self.prepare_job is not None and not self.prepare_job.ended:
            self.engine.cancel(self.prepare_job)
            self._prepared = None
        self.prepare_job = None

    def _take_model_guidance(self, name: str) -> None:
        """A model picked by hand brings its own text guidance (a pack fine-tuned on a CPU draws its captions
        apart better at 8 than at the shipped model's 4); the user can still change it afterwards."""
        m = self._entry(name)
        if m is not None and m.get("guidance_text") is not None:
            self.set_value("guidance", float(m["guidance_text"]))

    def _take_model_traits(self) -> None:
        """What the picked model offers beyond the form: its style tag and its few-step sampler."""
        m = self._entry(self._model) or {}
        self._set("style_tag", str(m.get("style_tag") or ""))
        self._set("fast_steps", int(m.get("few_step_steps") or 0))

    def styled(self) -> bool:
        """Whether the prompt carries the picked model's style tag (case aside)."""
        return bool(self._style_tag) and self._style_tag.lower() in self._prompt.lower()

    def set_styled(self, on: bool) -> None:
        """Add the model's style tag to the prompt (", in 3d style") or take it out: the prompt stays the one
        thing the request carries, and what the user reads is what the engine gets."""
        tag = self._style_tag
        if not tag or bool(on) == self.styled():
            return
        prompt = self._prompt.strip()
        if on:
            prompt = f"{prompt.rstrip(' ,.')}, {tag}" if prompt else tag
        else:
            prompt = re.sub(r"\s*,?\s*" + re.escape(tag), "", prompt, flags=re.IGNORECASE).strip(" ,")
        self.set_value("prompt", prompt)

    def _entry(self, ref: str) -> dict | None:
        """The listed model of that folder or name."""
        return next((m for m in self._models if ref in (m.get("path"), m.get("name"))), None)

    def set_models(self, models: list[dict]) -> None:
        # Shipped models first: a new user should find the default at the top.
        ordered = sorted(models, key=lambda m: (not m.get("builtin", False), str(m.get("name", ""))))
        self._set("models", ordered or [{"name": "default", "path": "default", "builtin": True}])
        names = {m.get("name") for m in self._models} | {m.get("path") for m in self._models}
        if self._model not in names:
            self._set("model", str(self._models[0].get("name", "default")))
        self._take_model_traits()

    def model_ref(self) -> str:
        """What the engine gets: a user model's folder path, or a shipped model's name."""
        for m in self._models:
            if m.get("name") == self._model and not m.get("builtin", False) and m.get("path"):
                return str(m["path"])
        return self._model

    def _model_for(self, ref: str, sha256: str | None) -> str:
        """The picker entry for a recipe's model: the listed model with those weights, else the one at that
        folder or of that name, else the reference itself (the engine resolves it or says why not)."""
        for m in self._models:
            if sha256 and m.get("sha256") == sha256:
                return str(m.get("name"))
        m = self._entry(ref)
        return str(m.get("name")) if m is not None else ref

    def roll_seed(self) -> None:
        self._set("seed", random.randrange(1 << 31))

    def use_sticker(self, sticker: Sticker) -> None:
        """Fill the form from a sticker's recipe (the request that made it) and its given first / last frame:
        Generate then makes the same sticker again."""
        recipe = sticker.recipe
        req = GenerateRequest.from_recipe(recipe)
        given = {int(i) for i in recipe.get("locked") or []}
        paths = [f.path for f in sticker.frames]
        self._set("start_image", paths[0] if 0 in given and paths else "")
        self._set("end_image", paths[-1] if len(paths) > 1 and len(paths) - 1 in given else "")
        for name, value in (("prompt", req.prompt), ("frames", req.frames), ("size", req.size),
                            ("steps", req.steps), ("guidance", req.guidance_text)):
            if value is not None:
                self._set(name, value)
        if req.seed is not None:
            self._set("seed", int(req.seed))
        self._set("model", self._model_for(str(recipe.get(MODEL_REF) or req.model), req.model_sha256))
        if req.guidance_text is None:  # a recipe that leaves it to the model (the engine records it resolved)
            self._take_model_guidance(self._model)
        self.extra = {"guidance_image": req.guidance_image, "strength": req.strength, "scheduler": req.scheduler,
                      "duration_ms": req.duration_ms, "model_sha256": req.model_sha256}
        if req.scheduler == FEW_STEP:  # a sticker drawn fast: the box says so (the recipe's sampler is kept anyway)
            self._set("fast", True)

    def request(self) -> GenerateRequest:
        """The form as a request. Field ranges are checked by the engine when it receives it (the worker)."""
        cond: list[str | None] = []
        if self._start_image or self._end_image:
            cond = [None] * int(self._frames)
            cond[0] = self._start_image or None
            cond[-1] = self._end_image or cond[-1]
        steps = int(self._steps) or None  # None: the engine's default for the task (Auto in the form)
        extra = dict(self.extra)
        if self._fast and self._fast_steps:  # Auto = the model's own few-step count
            extra["scheduler"] = FEW_STEP
        elif extra.get("scheduler") == FEW_STEP:  # Fast unticked, or a model without the deltas picked
            extra.pop("scheduler")
        shown = sampling(extra.get("scheduler"), steps, bool(cond), self._fast_steps)[1]
        req = GenerateRequest(prompt=self._prompt.strip(), model=self.model_ref(), frames=int(self._frames),
                              size=int(self._size), steps=steps, seed=int(self._seed),
                              guidance_text=float(self._guidance), cond_frames=cond,
                              preview_every=max(1, shown // 4), **extra)  # a few live previews per window
        if not req.prompt:
            raise InputError("type a prompt first, or pick an example")
        for p in (self._start_image, self._end_image):
            if p and not Path(p).is_file():
                raise InputError(f"the image {p} does not exist")
        return req

    def generate(self) -> None:
        if self._busy:
            return
        try:
            req = self.request()
        except InputError as e:
            self.error(human_message("InputError", str(e)))
            return
        entry = self.store.new_entry_dir()
        req.frames_dir = str(entry / "gen-1")
        self._set("busy", True)
        self._set("progress", 0.0)
        self._set("status", "Starting the engine…")
        self._set("preview", [])
        job = self.engine.submit(req)
        self.job = job
        job.progress.connect(self._on_progress)
        job.preview.connect(lambda _step, p, _c: self._set("preview", list(p)))
        # e.g. "training a tiny demo model first" on a fresh install: say why it takes a while
        job.log_line.connect(lambda level, text: level in ("info", "warning") and self._set("status", text))
        job.finished.connect(lambda result: self._on_finished(entry, GeneratedSticker.from_dict(result), req))
        job.failed.connect(lambda t, m: self._on_failed(entry, t, m))

    def cancel(self) -> None:
        if self.job is not None and self._busy:
            self._set("status", "Cancelling…")
            self.engine.cancel(self.job)

    def _on_progress(self, stage: str, step: int, total: int, message: str) -> None:
        self._set("progress", step / total if total else 0.0)
        self._set("status", f"{stage.capitalize()} {step}/{total}" + (f" — {message}" if message else ""))

    def _on_finished(self, entry: Path, result: GeneratedSticker, req: GenerateRequest) -> None:
        sticker = from_result(entry, result, req)
        self.store.save(sticker)
        self.last, self.job = sticker, None
        self._set("preview", [f.path for f in sticker.frames])
        self._set("progress", 1.0)
        self._set("status", f"Done: {len(sticker.frames)} frames")
        self._set("busy", False)
        self.generated.emit(sticker)

    def _on_failed(self, entry: Path, error_type: str, message: str) -> None:
        self.job = None
        self.store.delete(entry.name)  # nothing was made: no empty gallery entry
        self._set("busy", False)
        self._set("progress", 0.0)
        if error_type == "Cancelled":
            self._set("status", "Cancelled")
            self.info("Generation cancelled.")
        else:
            self._set("status", "Failed")
            self.error(human_message(error_type, message))
