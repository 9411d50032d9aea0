"""The app's side of the worker protocol (docs/protocol.md): one worker process, one job queue, crash recovery.

Transport: ``QProcess``. Its ``readyReadStandardOutput`` signal is delivered by the same Qt event loop that
qasync drives, so reading the worker never blocks the GUI, needs no thread, and behaves the same under
pytest-qt (which spins plain Qt loops) as in the app (qasync). Jobs are ``Job`` QObjects with signals; view-models
connect to them, and ``await job.wait()`` is there for async code. The worker serialises jobs itself (one GPU
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
from typing import Any

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from app import paths
from rdtf_engine.core.events import event_from_dict

log = logging.getLogger(__name__)

CRASH_LIMIT = 3  # crashes within CRASH_WINDOW_S before giving up on automatic restarts
CRASH_WINDOW_S = 60.0


class JobFailed(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


class Job(QObject):
    """One request to the worker and the events it produced. Ends with exactly one finished or failed."""

    progress = Signal(str, int, int, str)  # stage, step, total, message
    preview = Signal(int, object, str)  # step, [png paths], caption
    metrics = Signal(int, object)  # step, the typed rdtf_engine.core.events.Metrics
    log_line = Signal(str, str)  # level, message
    finished = Signal(object)  # result dict
    failed = Signal(str, str)  # error_type, message
    done = Signal()  # after finished or failed

    def __init__(self, job_id: str, op: str, params: dict[str, Any], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.id, self.op, self.params = job_id, op, params
        self.state = "queued"  # queued → running → finished | failed
        self.result: dict | None = None
        self.error_type = ""
        self.error_message = ""

    @property
    def ended(self) -> bool:
        return self.state in ("finished", "failed")

    def dispatch(self, ev: dict[str, Any]) -> None:
        """Turn one protocol event (a decoded JSON line) into signals."""
        if self.ended:
            return
        kind = ev.get("kind")
        if kind == "progress":
            self.state = "running"
            self.progress.emit(str(ev.get("stage", "")), int(ev.get("step", 0)), int(ev.get("total", 0)),
                               str(ev.get("message", "")))
        elif kind == "preview":
            self.preview.emit(int(ev.get("step", 0)), list(ev.get("paths") or []), str(ev.get("caption", "")))
        elif kind == "metrics":
            self.state = "running"
            self.metrics.emit(int(ev.get("step", 0)), event_from_dict(ev))
        elif kind == "log":
            self.log_line.emit(str(ev.get("level", "info")), str(ev.get("message", "")))
        elif kind == "finished":
            self.state, self.result = "finished", dict(ev.get("result") or {})
            self.finished.emit(self.result)
            self.done.emit()
        elif kind == "failed":
            self.fail(str(ev.get("error_type", "InternalError")), str(ev.get("message", "")))

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


class EngineClient(QObject):
    """Starts and talks to one worker process. The app has two: ``engine`` (generate, import, export, check,
    models, device) and ``trainer`` (a training run), so a run survives whatever happens to generation."""

    state_changed = Signal(str)  # "stopped" | "starting" | "ready" | "crashed" | "gave-up"
    crashed = Signal(str)  # a human message
    job_started = Signal(object)  # Job, for status bars
    ready_changed = Signal(bool)

    def __init__(self, name: str = "engine", command: list[str] | None = None,
                 env: dict[str, str] | None = None, log_file: Path | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.command = command or paths.worker_command()
        self.env = {**paths.worker_env(), **(env or {})}
        self.log_file = log_file
        self.jobs: dict[str, Job] = {}
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
    def submit(self, op: str, params: dict[str, Any] | None = None) -> Job:
        job = Job(f"{self.name[0]}{next(self._ids)}", op, dict(params or {}), self)
        self.jobs[job.id] = job
        job.done.connect(lambda j=job: self.jobs.pop(j.id, None))
        if self.state == "gave-up":
            QTimer.singleShot(0, lambda: job.fail("WorkerCrashed", "the engine is not running after repeated crashes"))
            return job
        self._send({"id": job.id, "op": op, "params": job.params})
        self.job_started.emit(job)
        return job

    def cancel(self, job: Job) -> None:
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
