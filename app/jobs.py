"""The app's side of the worker protocol (docs/protocol.md): one worker process, one job queue, crash recovery.

Transport: ``QProcess``. Its ``readyReadStandardOutput`` signal is delivered by the same Qt event loop that
qasync drives, so reading the worker never blocks the GUI, needs no thread, and behaves the same under
pytest-qt (which spins plain Qt loops) as in the app (qasync). A job is the engine's ``Job`` (an id and one typed
request, ``rdtf_engine.core.requests``) held by a ``JobHandle`` QObject with signals; view-models connect to them,
and ``await job.wait()`` is there for async code. Worker lines are decoded into the engine's event dataclasses
(``event_from_dict``) before any signal fires. The worker serialises jobs itself (one GPU
queue), so ``submit`` sends at once; lines written before the worker says ``ready`` are held back.

When the worker dies (crash, OOM-kill, kill -9), every job it held fails with ``WorkerCrashed``, ``crashed`` is
emitted with a human message, and a fresh worker is started — unless it died three times within a minute, when
the client stops trying and says so.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from app import paths
from rdtf_engine.core.events import Event, Failed, Finished, Log, Metrics, Preview, Progress, event_from_dict
from rdtf_engine.core.requests import Job, Request, from_wire, to_dict

log = logging.getLogger(__name__)

CRASH_LIMIT = 3  # crashes within CRASH_WINDOW_S before giving up on automatic restarts
CRASH_WINDOW_S = 60.0


class JobFailed(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def make_job(job_id: str, request: Request | str, params: dict[str, Any] | None = None) -> Job:
    """The engine ``Job`` for a typed request, or for ``(op, params)`` decoded into one (InputError if bad)."""
    if isinstance(request, str):
        request = from_wire(request, dict(params or {}))
    return Job(job_id, request)


class JobHandle(QObject):
    """One engine ``Job`` in flight and the events it produced. Ends with exactly one finished or failed."""

    event = Signal(object)  # every decoded event (Progress, Preview, Metrics, Log, Finished, Failed)
    progress = Signal(str, int, int, str)  # stage, step, total, message
    preview = Signal(int, object, str)  # step, [png paths], caption
    metrics = Signal(int, object)  # step, the typed rdtf_engine.core.events.Metrics
    log_line = Signal(str, str)  # level, message
    finished = Signal(object)  # result dict
    failed = Signal(str, str)  # error_type, message
    done = Signal()  # after finished or failed

    def __init__(self, job: Job, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.job = job
        self.state = "queued"  # queued → running → finished | failed
        self.result: dict | None = None
        self.error_type = ""
        self.error_message = ""

    @property
    def id(self) -> str:
        return self.job.id

    @property
    def op(self) -> str:
        return self.job.op

    @property
    def request(self) -> Request:
        return self.job.request

    @property
    def params(self) -> dict[str, Any]:
        """The request as its wire fields (what the worker receives)."""
        return to_dict(self.job.request)

    @property
    def ended(self) -> bool:
        return self.state in ("finished", "failed")

    def dispatch(self, data: dict[str, Any]) -> None:
        """One protocol line (decoded JSON) → its typed event → signals. Unknown kinds are ignored."""
        try:
            ev = event_from_dict(data)
        except (ValueError, TypeError) as e:
            log.warning("job %s: not an event: %s", self.id, e)
            return
        self.handle(ev)

    def handle(self, ev: Event) -> None:
        if self.ended:
            return
        if isinstance(ev, (Progress, Metrics)):
            self.state = "running"
        self.event.emit(ev)
        if isinstance(ev, Progress):
            self.progress.emit(ev.stage, int(ev.step), int(ev.total), ev.message)
        elif isinstance(ev, Preview):
            self.preview.emit(int(ev.step), list(ev.paths or []), ev.caption)
        elif isinstance(ev, Metrics):
            self.metrics.emit(int(ev.step), ev)
        elif isinstance(ev, Log):
            self.log_line.emit(ev.level, ev.message)
        elif isinstance(ev, Finished):
            self.state, self.result = "finished", dict(ev.result or {})
            self.finished.emit(self.result)
            self.done.emit()
        elif isinstance(ev, Failed):
            self.fail(ev.error_type, ev.message)

    def fail(self, error_type: str, message: str) -> None:
        if self.ended:
            return
        self.state, self.error_type, self.error_message = "failed", error_type, message
        self.failed.emit(error_type, message)
        self.done.emit()

    async def wait(self) -> dict:
        """The result, or raise ``JobFailed``. Needs a running asyncio (qasync) loop."""
        if not self.ended:
            fut = asyncio.get_running_loop().create_future()
            self.done.connect(lambda: fut.done() or fut.set_result(None))
            await fut
        if self.state == "failed":
            raise JobFailed(self.error_type, self.error_message)
        return self.result or {}


class Engine(Protocol):
    """What view-models use of an engine client (``EngineClient``, or the tests' ``FakeEngine``)."""

    def submit(self, request: Request | str, params: dict[str, Any] | None = None) -> JobHandle: ...

    def cancel(self, job: JobHandle) -> None: ...


class EngineClient(QObject):
    """Starts and talks to one worker process. The app has two: ``engine`` (generate, import, export, check,
    models, device) and ``trainer`` (a training run), so a run survives whatever happens to generation."""

    state_changed = Signal(str)  # "stopped" | "starting" | "ready" | "crashed" | "gave-up"
    crashed = Signal(str)  # a human message
    job_started = Signal(object)  # JobHandle, for status bars
    ready_changed = Signal(bool)

    def __init__(self, name: str = "engine", command: list[str] | None = None,
                 env: dict[str, str] | None = None, log_file: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.command = command or paths.worker_command()
        self.env = {**paths.worker_env(), **(env or {})}
        self.log_file = log_file
        self.jobs: dict[str, JobHandle] = {}
        self._ids = itertools.count(1)
        self._proc: QProcess | None = None
        self._outbox: list[str] = []
        self._buf = b""
        self._ready = False
        self._stopping = False
        self._crashes: list[float] = []
        self.state = "stopped"
        self.pid: int | None = None

    # ---- process lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        if self._proc is not None:
            return
        proc = QProcess(self)
        env = QProcessEnvironment.systemEnvironment()
        for k, v in self.env.items():
            env.insert(k, v)
        proc.setProcessEnvironment(env)
        if self.log_file is not None:
            proc.setStandardErrorFile(str(self.log_file), QProcess.OpenModeFlag.Append)
        else:
            proc.setProcessChannelMode(QProcess.ProcessChannelMode.ForwardedErrorChannel)
        proc.readyReadStandardOutput.connect(self._on_output)
        proc.finished.connect(self._on_exit)
        proc.errorOccurred.connect(self._on_error)
        self._proc, self._buf, self._ready, self._stopping = proc, b"", False, False
        self._set_state("starting")
        log.info("%s worker: starting %s", self.name, " ".join(self.command))
        proc.start(self.command[0], self.command[1:])

    @property
    def running(self) -> bool:
        return self._proc is not None

    @property
    def busy(self) -> bool:
        return any(not j.ended for j in self.jobs.values())

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.state_changed.emit(state)

    # ---- jobs ----------------------------------------------------------------------------------------
    def submit(self, request: Request | str, params: dict[str, Any] | None = None) -> JobHandle:
        """Send one typed request (or ``op, params``, decoded into one: InputError if that cannot be done) to the
        worker, which validates it and answers with events."""
        job = JobHandle(make_job(f"{self.name[0]}{next(self._ids)}", request, params), self)
        self.jobs[job.id] = job
        job.done.connect(lambda j=job: self.jobs.pop(j.id, None))
        if self.state == "gave-up":
            QTimer.singleShot(0, lambda: job.fail("WorkerCrashed", "the engine is not running after repeated crashes"))
            return job
        self._send(job.job.to_wire())
        self.job_started.emit(job)
        return job

    def cancel(self, job: JobHandle) -> None:
        if not job.ended and self._proc is not None:
            self._send({"id": None, "op": "cancel", "params": {"target": job.id}})

    def _send(self, msg: dict[str, Any]) -> None:
        line = json.dumps(msg, separators=(",", ":")) + "\n"
        if self._proc is None:
            self.start()
        if self._ready:
            self._proc.write(line.encode("utf-8"))
        else:
            self._outbox.append(line)

    def _on_output(self) -> None:
        self._buf += bytes(self._proc.readAllStandardOutput())
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            if not raw.strip():
                continue
            try:
                ev = json.loads(raw)
            except ValueError:
                log.warning("%s worker: not a protocol line: %r", self.name, raw[:200])
                continue
            self._handle(ev)

    def _handle(self, ev: dict[str, Any]) -> None:
        if ev.get("kind") == "ready":
            self.pid, self._ready = ev.get("pid"), True
            self._set_state("ready")
            self.ready_changed.emit(True)
            for line in self._outbox:
                self._proc.write(line.encode("utf-8"))
            self._outbox.clear()
            return
        job = self.jobs.get(str(ev.get("id")))
        if job is not None:
            job.dispatch(ev)
        elif ev.get("kind") == "failed":
            log.warning("%s worker: %s", self.name, ev.get("message"))

    # ---- death and restart ---------------------------------------------------------------------------
    def _on_error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._on_exit(-1, QProcess.ExitStatus.CrashExit)

    def _on_exit(self, code: int, status: QProcess.ExitStatus) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.deleteLater()
        self._ready = False
        self.ready_changed.emit(False)
        expected = self._stopping and code == 0 and status == QProcess.ExitStatus.NormalExit
        pending = [j for j in self.jobs.values() if not j.ended]
        if expected and not pending:
            self._set_state("stopped")
            return
        how = "was stopped" if self._stopping else f"stopped unexpectedly (exit code {code})"
        log.error("%s worker %s; %d job(s) lost", self.name, how, len(pending))
        self._outbox.clear()
        for job in pending:
            job.fail("WorkerCrashed", f"the {self.name} process {how}")
        if self._stopping:
            self._set_state("stopped")
            return
        now = time.monotonic()
        self._crashes = [t for t in self._crashes if now - t < CRASH_WINDOW_S] + [now]
        if len(self._crashes) >= CRASH_LIMIT:
            self._set_state("gave-up")
            self.crashed.emit(f"The {self.name} keeps stopping unexpectedly and was not restarted. "
                              f"Restart the app; details are in the log.")
            return
        self._set_state("crashed")
        self.crashed.emit(f"The {self.name} stopped unexpectedly and was restarted. "
                          f"{len(pending)} job(s) did not finish; try again.")
        self.start()

    def restart(self) -> None:
        """After giving up: the user asked to try again."""
        self._crashes.clear()
        if self._proc is None:
            self.start()

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to stop (a training job writes its checkpoint), then wait; kill after ``timeout_s``."""
        proc = self._proc
        if proc is None:
            return
        self._stopping = True
        if self._ready:
            proc.write(b'{"id":null,"op":"shutdown"}\n')
        proc.closeWriteChannel()  # EOF on stdin also means shutdown, even before ready
        deadline = time.monotonic() + timeout_s
        while self._proc is proc and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._proc is proc:
            log.warning("%s worker did not stop in %.0f s; killing it", self.name, timeout_s)
            proc.kill()
            proc.waitForFinished(2000)

    def stop_now(self) -> None:
        """Synchronous variant for teardown without a running asyncio loop."""
        proc = self._proc
        if proc is None:
            return
        self._stopping = True
        proc.closeWriteChannel()
        if not proc.waitForFinished(5000):
            proc.kill()
            proc.waitForFinished(2000)
