"""JSON-lines worker process: the app's only way into the engine (wire format: docs/protocol.md).

Requests arrive on stdin, one JSON object a line; events leave on stdout, one JSON object a line. A reader
thread parses stdin so that ``cancel``/``ping``/``shutdown`` are answered while a job runs; jobs run one at a
time on the main thread in arrival order (one GPU queue). stdout is reserved for the protocol: file
descriptor 1 is re-pointed at stderr at start, so a stray ``print`` in any library (or C code) cannot corrupt
the stream the app parses.

Each request line is decoded into its typed request (``core.requests.from_wire``) and validated once, here;
the backend (``jobs.backend.Backend``) gets it untouched. The real backend imports the engine lazily so the
worker says ``ready`` in well under a second. ``RDTF_WORKER_BACKEND=<module>`` (or ``--backend``) swaps in a
module implementing the same protocol; the app's tests use ``tests/app/fake_backend.py`` this way.
``RDTF_WORKER_NICE=<n>`` lowers the worker's CPU priority (the app sets 5).
Closing stdin is a shutdown: the job in flight is asked to stop (training writes a checkpoint), so a GUI that
dies never leaves a run without its last checkpoint.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import queue
import sys
import tempfile
import threading
import traceback
from typing import Any, TextIO

from rdtf_engine.core.errors import Cancelled, RdtfError
from rdtf_engine.core.events import Event, Failed, Finished, event_to_dict
from rdtf_engine.core.requests import REQUESTS, GenerateRequest, Job, from_wire
from rdtf_engine.core.results import GeneratedSticker
from rdtf_engine.jobs.backend import Backend, EngineBackend, run_request

log = logging.getLogger("rdtf_engine.worker")

# Ops answered on the reader thread, never queued behind a long job.
CONTROL_OPS = ("cancel", "ping", "shutdown")
JOB_OPS = tuple(REQUESTS)


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


def load_backend(name: str | None) -> Backend:
    return importlib.import_module(name) if name else EngineBackend()  # type: ignore[return-value]


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


class Worker:
    def __init__(self, backend: Backend, out: Output) -> None:
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
        elif op in JOB_OPS and job_id is not None:
            self.receive(job_id, str(op), params)
        else:
            why = "a job needs an id" if job_id is None and op in JOB_OPS else f"unknown op {op!r}"
            self.out.event(job_id, Failed("InputError", why))

    def receive(self, job_id: str, op: str, params: Any) -> None:
        """A job line → its typed request, validated once, here (a bad one is answered at once), then queued."""
        try:
            req = from_wire(op, params)
            req.validate()
        except RdtfError as e:
            self.out.event(job_id, Failed(type(e).__name__, str(e)))
            return
        except (TypeError, ValueError) as e:  # e.g. "frames": "eight"
            self.out.event(job_id, Failed("InputError", f"{op}: {e}"))
            return
        job = Job(job_id, req)
        with self.lock:
            self.jobs[job_id] = job
        self.queue.put(job)

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
            result = self.result_dict(run_request(self.backend, job.request, on_event, job.stop.is_set), job)
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

    # ---- results: a backend's typed result → the JSON-able ``finished`` payload ------------------------------
    def result_dict(self, result: Any, job: Job) -> dict:
        req = job.request
        if isinstance(req, GenerateRequest):
            if result is None:  # a backend that returns nothing was stopped before it had frames
                raise Cancelled("generation cancelled")
            frames = result.frames
            paths = write_frames(frames, req.frames_dir or tempfile.mkdtemp(prefix="rdtf-frames-"))
            return GeneratedSticker(paths, [int(d) for d in result.durations_ms], dict(result.recipe or {}),
                                    result.out, [int(frames.shape[2]), int(frames.shape[1])]).to_dict()
        if job.op == "models":
            return {"models": list(result)}
        return dict(result)


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
