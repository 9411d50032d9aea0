"""FakeEngine: an in-process stand-in for ``app.jobs.EngineClient`` that replays scripted protocol events.

View-model and page tests use it to play any situation — progress, cancel, a worker crash, import reports,
export pass/fail — without a subprocess. Events go through the real ``JobHandle.dispatch``, so the app code under
test sees exactly what it would see from a worker (decoded into the engine's typed events). Ops listed in ``hold`` stay open until the test pushes
events with ``push``/``finish``/``fail``; the others replay their script on the next event-loop turns.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, QTimer, Signal

from app.jobs import JobHandle, make_job
from rdtf_engine.core.requests import Request, from_wire


def write_png(path: Path, colour: tuple[int, int, int], size: int = 32) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.zeros((size, size, 4), np.uint8)
    img[size // 4: 3 * size // 4, size // 4: 3 * size // 4] = (*colour, 255)
    Image.fromarray(img, "RGBA").save(path)
    return str(path)


def generate_events(params: dict) -> list[dict]:
    folder = Path(params.get("frames_dir") or "/tmp/fake-frames")
    n = int(params.get("frames", 8))
    cond = params.get("cond_frames") or [None] * n
    seed = int(params.get("seed") or 0)
    frames = [c or write_png(folder / f"frame_{i:03d}.png", ((seed + 40 * i) % 255, 80, 200 - 8 * i))
              for i, c in enumerate(cond)]
    steps = int(params.get("steps") or 4)
    events: list[dict] = [{"kind": "progress", "stage": "denoise", "step": i + 1, "total": steps} for i in range(steps)]
    # The engine's recipe: the request's fields, the seed, the model's identity, which frames were given.
    locked = [i for i, c in enumerate(cond) if c]
    recipe = from_wire("generate", params).recipe(seed, str(params.get("model")), "f" * 64, locked)
    events.append({"kind": "finished", "result": {"frames": frames, "durations_ms": [100] * n, "recipe": recipe,
                                                   "out": None, "size": [32, 32]}})
    return events


def export_events(params: dict) -> list[dict]:
    out = Path(params["out"])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(b"GIF89a" + json.dumps(params.get("recipe")).encode())
    ok = params["preset"] != "line"  # LINE fails on purpose: tests need a red rule
    checks = [{"name": "bytes", "ok": True, "detail": f"{out.stat().st_size} B"},
              {"name": "frame count 5-20", "ok": ok, "detail": "8 frames" if ok else "24 frames > 20"}]
    return [{"kind": "finished", "result": {"path": str(out), "bytes": out.stat().st_size, "checks": checks,
                                            "trades": []}}]


def pack_events(params: dict) -> list[dict]:
    """The fake backend's pack job run now (files written at once); its events replayed like a worker's."""
    from dataclasses import asdict

    import fake_backend

    events: list[dict] = []
    try:
        result = fake_backend.pack(from_wire("pack", params), lambda e: events.append(asdict(e)), lambda: False)
    except Exception as e:  # noqa: BLE001 - a typed engine error becomes the job's failed event
        return events + [{"kind": "failed", "error_type": type(e).__name__, "message": str(e)}]
    return events + [{"kind": "finished", "result": result}]


DEFAULT_MODELS = [
    {"name": "my-cats", "path": "/nowhere/my-cats", "preset": "tiny", "params": 10, "size": 64, "builtin": False,
     "data": "12 clips", "created": "2025-03-01", "guidance_text": 8.0, "few_step_steps": 4},
    {"name": "default", "path": "builtin:default", "preset": "small", "params": 12_000_000, "size": 256,
     "builtin": True, "data": "emoji", "created": "2025-01-01", "guidance_text": 4.0, "style_tag": "in 3d style"},
]


def export_pack_events(p: dict) -> list[dict]:
    """The fake worker's pack export (files zipped or copied, no encoding), run at once: its result event."""
    from fake_backend import export_pack

    from rdtf_engine.core.requests import PackExportRequest

    result = export_pack(PackExportRequest(**p), lambda _e: None, lambda: False)
    return [{"kind": "progress", "stage": "export-pack", "step": 1, "total": 1, "message": ""},
            {"kind": "finished", "result": result}]


class FakeEngine(QObject):
    state_changed = Signal(str)
    crashed = Signal(str)
    job_started = Signal(object)
    ready_changed = Signal(bool)

    def __init__(self, name: str = "engine", hold: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.name, self.hold = name, set(hold)
        self.state, self.running = "ready", True
        self.submitted: list[JobHandle] = []
        self.cancelled: list[JobHandle] = []
        self.jobs: dict[str, JobHandle] = {}
        self._ids = itertools.count(1)
        self.scripts: dict[str, Callable[[dict], list[dict]]] = {
            "generate": generate_events,
            "export": export_events,
            "pack": pack_events,
            "export-pack": export_pack_events,
            "check": lambda p: [{"kind": "finished", "result": {"rules": [
                {"name": "bytes", "ok": p["preset"] != "line", "detail": "fake"}]}}],
            "models": lambda p: [{"kind": "finished", "result": {"models": list(DEFAULT_MODELS)}}],
            "device": lambda p: [{"kind": "finished", "result": {"device": "cpu", "name": "Fake CPU"}}],
            "prepare": lambda p: [{"kind": "finished", "result": {"model": p["model"], "device": "cpu", "graphs": 2,
                                                                  "seconds": 0.0}}],
            "import": lambda p: [{"kind": "finished", "result": {"out": p["out"], "imported": [{"file": "a.gif"}],
                                                                  "skipped": []}}],
            "train": lambda p: [{"kind": "finished", "result": {"run_dir": p["run"]["out"], "model_dir": None,
                                                                 "stopped": False}}],
        }

    @property
    def busy(self) -> bool:
        return any(not j.ended for j in self.jobs.values())

    def last(self, op: str) -> JobHandle:
        return [j for j in self.submitted if j.op == op][-1]

    def submit(self, request: Request | str, params: dict[str, Any] | None = None) -> JobHandle:
        job = JobHandle(make_job(f"f{next(self._ids)}", request, params), self)
        op = job.op
        self.submitted.append(job)
        self.jobs[job.id] = job
        job.done.connect(lambda j=job: self.jobs.pop(j.id, None))
        self.job_started.emit(job)
        if op not in self.hold:
            self._replay(job, self.scripts[op](job.params))
        return job

    def _replay(self, job: JobHandle, events: list[dict]) -> None:
        for i, ev in enumerate(events):
            QTimer.singleShot(1 + i, lambda ev=ev: job.dispatch(ev))

    def push(self, job: JobHandle, *events: dict) -> None:
        for ev in events:
            job.dispatch(ev)

    def finish(self, job: JobHandle, result: dict | None = None) -> None:
        job.dispatch({"kind": "finished", "result": result or {}})

    def fail(self, job: JobHandle, error_type: str, message: str) -> None:
        job.dispatch({"kind": "failed", "error_type": error_type, "message": message})

    def cancel(self, job: JobHandle) -> None:
        self.cancelled.append(job)
        if job.op == "train":  # the engine stops cooperatively and reports where it got to
            QTimer.singleShot(1, lambda: self.finish(job, {"run_dir": job.params["run"]["out"], "stopped": True}))
        else:
            QTimer.singleShot(1, lambda: self.fail(job, "Cancelled", "cancelled"))

    def crash(self, message: str = "The engine stopped unexpectedly and was restarted.") -> None:
        for job in [j for j in self.jobs.values() if not j.ended]:
            job.fail("WorkerCrashed", "the engine process stopped unexpectedly (exit code -9)")
        self.state = "crashed"
        self.state_changed.emit("crashed")
        self.crashed.emit(message)
        self.state = "ready"
        self.state_changed.emit("ready")

    def restart(self) -> None:
        self.state_changed.emit("ready")

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        for job in [j for j in self.jobs.values() if not j.ended]:
            self.cancel(job)

    def stop_now(self) -> None:
        return None
