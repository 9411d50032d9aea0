"""JSON-lines worker process: the app's only way into the engine (wire format: docs/protocol.md).

Requests arrive on stdin, one JSON object a line; events leave on stdout, one JSON object a line. A reader
thread parses stdin so that ``cancel``/``ping``/``shutdown`` are answered while a job runs; jobs run one at a
time on the main thread in arrival order (one GPU queue). stdout is reserved for the protocol: file
descriptor 1 is re-pointed at stderr at start, so a stray ``print`` in any library (or C code) cannot corrupt
the stream the app parses.

The backend (``rdtf_engine.jobs.api``, ``rdtf_engine.platforms``, ``rdtf_engine.datasets``) is imported lazily inside the job handlers so the
worker says ``ready`` in well under a second. ``RDTF_WORKER_BACKEND=<module>`` (or ``--backend``) swaps in
another module exposing the same functions (``generate``, ``train``, ``list_models``, ``device_info``,
``import_pack``, ``export_clip``, ``check_file``); the app's tests use ``tests/app/fake_backend.py`` this way.
``RDTF_WORKER_NICE=<n>`` lowers the worker's CPU priority (the app sets 5).
Closing stdin is a shutdown: the job in flight is asked to stop (training writes a checkpoint), so a GUI that
dies never leaves a run without its last checkpoint.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import logging
import os
import queue
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rdtf_engine.core.errors import Cancelled, InputError, RdtfError
from rdtf_engine.core.events import Event, Failed, Finished, event_to_dict

log = logging.getLogger("rdtf_engine.worker")

# Ops answered on the reader thread, never queued behind a long job.
CONTROL_OPS = ("cancel", "ping", "shutdown")
JOB_OPS = ("generate", "train", "import", "export", "check", "models", "device")


def _json_default(o: Any) -> Any:
    # numpy scalars/arrays and Paths end up in results; keep every line valid JSON.
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


class Output:
    """Thread-safe writer of protocol lines (the reader thread and the job thread both write)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, job_id: str | None, data: dict[str, Any]) -> None:
        line = json.dumps({"id": job_id, **data}, separators=(",", ":"), default=_json_default)
        with self._lock:
            try:
                self._stream.write(line + "\n")
                self._stream.flush()
            except (BrokenPipeError, ValueError):
                # The app is gone; the job's stop flag is set by the EOF on stdin, nothing to tell anyone.
                pass

    def event(self, job_id: str | None, event: Event) -> None:
        self.send(job_id, event_to_dict(event))


@dataclass
class Job:
    id: str
    op: str
    params: dict[str, Any]
    stop: threading.Event = field(default_factory=threading.Event)
    dropped: bool = False  # cancelled while queued: already answered, never run


class RealBackend:
    """The engine proper, imported on first use (torch takes seconds to import)."""

    def _api(self) -> Any:
        from rdtf_engine.jobs import api

        return api


    def generate(self, req: Any, on_event: Callable, should_stop: Callable) -> Any:
        return self._api().generate(req, on_event, should_stop)

    def train(self, req: Any, on_event: Callable, should_stop: Callable) -> Any:
        return self._api().train(req, on_event, should_stop)

    def list_models(self, dirs: list[str] | None = None) -> Any:
        fn = self._api().list_models
        return fn(dirs) if dirs and _accepts_args(fn) else fn()

    def device_info(self) -> Any:
        return self._api().device_info()

    def import_pack(self, path: str, out: str, size: int, on_event: Callable, should_stop: Callable) -> Any:
        from rdtf_engine.datasets.dataset import import_pack

        return import_pack(path, out, size, on_event, should_stop)

    def export_clip(self, req: Any, on_event: Callable, should_stop: Callable) -> Any:
        from rdtf_engine.platforms.export import export_clip

        return export_clip(req, on_event, should_stop)

    def check_file(self, path: str, preset: str) -> Any:
        from rdtf_engine.platforms.check import check_file

        return check_file(path, preset)


def load_backend(name: str | None) -> Any:
    return importlib.import_module(name) if name else RealBackend()


def write_frames(frames: Any, frames_dir: str) -> list[str]:
    """Save (F, H, W, 4) uint8 RGBA frames as PNG files; write-then-rename so the app never reads half a PNG."""
    from PIL import Image

    os.makedirs(frames_dir, exist_ok=True)
    paths = []
    for i, frame in enumerate(frames):
        path = os.path.join(frames_dir, f"frame_{i:03d}.png")
        tmp = path + ".part"
        Image.fromarray(frame, "RGBA").save(tmp, format="PNG")
        os.replace(tmp, path)
        paths.append(os.path.abspath(path))
    return paths


def _accepts_args(fn: Callable) -> bool:
    try:
        return any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in inspect.signature(fn).parameters.values()
        )
    except (TypeError, ValueError):
        return False


class Worker:
    def __init__(self, backend: Any, out: Output) -> None:
        self.backend = backend
        self.out = out
        self.queue: queue.Queue[Job | None] = queue.Queue()
        self.jobs: dict[str, Job] = {}  # queued or running, by id
        self.current: Job | None = None
        self.lock = threading.Lock()
        self.closing = False

    # ---- reader thread -------------------------------------------------------------------------
    def read_loop(self, stream: TextIO) -> None:
        for raw in stream:
            raw = raw.strip()
            if raw:
                self.handle_line(raw)
            if self.closing:
                return
        self.close("stdin closed")

    def handle_line(self, raw: str) -> None:
        try:
            msg = json.loads(raw)
        except ValueError as e:
            self.out.event(None, Failed("InputError", f"unreadable request line: {e}"))
            return
        if not isinstance(msg, dict):
            self.out.event(None, Failed("InputError", "unreadable request line: a request must be a JSON object"))
            return
        job_id = msg.get("id")
        job_id = str(job_id) if job_id is not None else None
        op = msg.get("op")
        params = msg.get("params") or {}
        if op == "ping":
            self.out.event(job_id, Finished({"pong": True, "pid": os.getpid()}))
        elif op == "cancel":
            self.cancel(str(params.get("target", "")))
            if job_id is not None:
                self.out.event(job_id, Finished({"cancelled": params.get("target")}))
        elif op == "shutdown":
            if job_id is not None:
                self.out.event(job_id, Finished({"shutdown": True}))
            self.close("shutdown requested")
        elif op in JOB_OPS and job_id is not None and isinstance(params, dict):
            job = Job(job_id, op, params)
            with self.lock:
                self.jobs[job_id] = job
            self.queue.put(job)
        else:
            why = "a job needs an id" if job_id is None and op in JOB_OPS else f"unknown op {op!r}"
            self.out.event(job_id, Failed("InputError", why))

    def cancel(self, target: str) -> None:
        with self.lock:
            job = self.jobs.get(target)
            if job is None:
                return  # already finished: nothing to stop
            job.stop.set()
            if job is not self.current and not job.dropped:
                # Queued: answer now so the app's queue moves on; the runner skips it.
                job.dropped = True
                del self.jobs[target]
                self.out.event(target, Failed("Cancelled", "cancelled before it started"))

    def close(self, why: str) -> None:
        log.info("worker closing: %s", why)
        self.closing = True
        with self.lock:
            targets = list(self.jobs)
        for target in targets:
            self.cancel(target)
        self.queue.put(None)

    # ---- job thread (main) ---------------------------------------------------------------------
    def run_forever(self) -> None:
        while True:
            job = self.queue.get()
            if job is None:
                return
            if job.dropped:
                continue
            with self.lock:
                self.current = job
            try:
                self.run_job(job)
            finally:
                with self.lock:
                    self.current = None
                    self.jobs.pop(job.id, None)

    def run_job(self, job: Job) -> None:
        def on_event(event: Event) -> None:
            # The worker sends the one terminal event itself; an engine's own Finished/Failed is not forwarded.
            if not isinstance(event, (Finished, Failed)):
                self.out.event(job.id, event)

        try:
            result = getattr(self, "op_" + job.op)(job.params, on_event, job.stop.is_set)
        except RdtfError as e:
            self.out.event(job.id, Failed(type(e).__name__, str(e)))
        except MemoryError:
            self.out.event(job.id, Failed("OutOfMemory", "the engine ran out of memory"))
        except Exception as e:  # noqa: BLE001 - the worker must answer every job, whatever broke
            traceback.print_exc(file=sys.stderr)
            kind = "OutOfMemory" if "OutOfMemory" in type(e).__name__ else "InternalError"
            self.out.event(job.id, Failed(kind, f"{type(e).__name__}: {e}"))
        else:
            self.out.event(job.id, Finished(result))

    # ---- op handlers: params dict → JSON-able result dict ------------------------------------------
    def op_generate(self, params: dict, on_event: Callable, should_stop: Callable) -> dict:
        from rdtf_engine.core.requests import GenerateRequest, from_dict

        # The app's Create page shows a live preview: a few estimates per window unless it asked otherwise.
        params = {"preview_every": max(1, int(params.get("steps", 20)) // 4), **params}
        req = from_dict(GenerateRequest, params)
        req.validate()
        frames_dir = params.get("frames_dir") or tempfile.mkdtemp(prefix="rdtf-frames-")
        res = self.backend.generate(req, on_event, should_stop)
        if res is None:  # a backend that returns nothing was stopped before it had frames
            raise Cancelled("generation cancelled")
        frames = res.frames
        paths = write_frames(frames, frames_dir)
        return {
            "frames": paths,
            "durations_ms": [int(d) for d in res.durations_ms],
            "recipe": dict(res.recipe or {}),
            "out": res.out,
            "size": [int(frames.shape[2]), int(frames.shape[1])],
        }

    def op_train(self, params: dict, on_event: Callable, should_stop: Callable) -> dict:
        from rdtf_engine.core.requests import TrainRequest, from_dict

        req = from_dict(TrainRequest, params)
        req.validate()
        return dict(self.backend.train(req, on_event, should_stop))

    def op_import(self, params: dict, on_event: Callable, should_stop: Callable) -> dict:
        path, out = params.get("path"), params.get("out")
        if not path or not out:
            raise InputError("import needs 'path' (folder or zip) and 'out' (dataset folder)")
        return dict(self.backend.import_pack(str(path), str(out), int(params.get("size", 64)), on_event, should_stop))

    def op_export(self, params: dict, on_event: Callable, should_stop: Callable) -> dict:
        from rdtf_engine.core.requests import ExportRequest, from_dict

        if not all(params.get(k) for k in ("input", "preset", "out")):
            raise InputError("export needs 'input', 'preset' and 'out'")
        return dict(self.backend.export_clip(from_dict(ExportRequest, params), on_event, should_stop))

    def op_check(self, params: dict, on_event: Callable, should_stop: Callable) -> dict:
        if not params.get("path") or not params.get("preset"):
            raise InputError("check needs 'path' and 'preset'")
        return dict(self.backend.check_file(str(params["path"]), str(params["preset"])))

    def op_models(self, params: dict, on_event: Callable, should_stop: Callable) -> dict:
        # The app passes the folders it keeps user models and runs in; an engine whose list_models takes no
        # argument finds them itself.
        dirs = [str(d) for d in params.get("dirs") or []]
        fn = self.backend.list_models
        models = fn(dirs) if dirs and _accepts_args(fn) else fn()
        return {"models": list(models)}

    def op_device(self, params: dict, on_event: Callable, should_stop: Callable) -> dict:
        return dict(self.backend.device_info())


def private_stdin() -> TextIO:
    """A private handle on the requests pipe (fd 0); fd 0 and ``sys.stdin`` then read /dev/null.

    The reader thread spends its life blocked in a read of this stream, holding the stream's lock. A process
    forked meanwhile (the render and k-means pools of data preparation) closes ``sys.stdin`` as it starts and
    would wait for that lock forever; with ``sys.stdin`` on /dev/null, nobody else holds its lock.
    """
    requests = os.fdopen(os.dup(0), "r", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 (lives as long as the process)
    return requests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rdtf worker", description="JSON-lines engine worker (docs/protocol.md)")
    parser.add_argument("--backend", default=os.environ.get("RDTF_WORKER_BACKEND") or None,
                        help="module to use instead of rdtf_engine.jobs.api/io (tests); env RDTF_WORKER_BACKEND")
    args = parser.parse_args(argv)
    nice = int(os.environ.get("RDTF_WORKER_NICE", "0") or 0)
    if nice > 0 and hasattr(os, "nice"):
        # The app asks its workers to yield the CPU to the GUI process: on a few-core CPU machine torch would
        # otherwise starve the event loop and the window would stutter while a model trains.
        os.nice(nice)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s worker %(levelname)s %(message)s")

    # Keep a private handle on the real stdout, then send fd 1 to stderr for everyone else.
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    out = Output(proto)
    try:
        backend = load_backend(args.backend)
    except ImportError as e:
        out.event(None, Failed("DependencyError", f"cannot load worker backend {args.backend!r}: {e}"))
        return 2
    worker = Worker(backend, out)
    reader = threading.Thread(target=worker.read_loop, args=(private_stdin(),), name="stdin-reader", daemon=True)
    out.send(None, {"kind": "ready", "pid": os.getpid(), "backend": args.backend or "rdtf_engine"})
    reader.start()
    worker.run_forever()
    proto.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
