"""The worker process (rdtf_engine/worker.py) and EngineClient, through real subprocesses, fake backend.

Protocol tests speak raw JSON lines to ``python -m rdtf_engine.worker``; the client tests run the same worker
under ``app.jobs.EngineClient`` (QProcess) and check crash → WorkerCrashed → restart.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT, fake_worker_env

from app.jobs import EngineClient
from rdtf_engine.core.run_file import resumable_step


class Wire:
    """A worker subprocess with line-level helpers (a reader thread, so a hung worker fails, not hangs)."""

    def __init__(self, delay: float = 0.005, extra_env=None) -> None:
        env = {**os.environ, **fake_worker_env(delay), **(extra_env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "rdtf_engine", "worker"], cwd=ROOT, env=env, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[dict] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            with self.cond:
                self.lines.append(json.loads(line))  # every stdout line must be JSON: that is the contract
                self.cond.notify_all()

    def send(self, **msg) -> None:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()

    def wait_for(self, pred, timeout: float = 20.0) -> dict:
        with self.cond:
            ok = self.cond.wait_for(lambda: any(pred(x) for x in self.lines), timeout)
            assert ok, f"timed out; got {self.lines}"
            return next(x for x in self.lines if pred(x))

    def end(self, job_id: str, timeout: float = 20.0) -> dict:
        return self.wait_for(lambda x: x.get("id") == job_id and x["kind"] in ("finished", "failed"), timeout)

    def close(self) -> int:
        self.proc.stdin.close()
        return self.proc.wait(20)


@pytest.fixture
def wire():
    w = Wire()
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()


def test_ready_ping_and_generate_writes_pngs(wire, tmp_path):
    ready = wire.wait_for(lambda x: x["kind"] == "ready")
    assert ready["id"] is None and ready["pid"] == wire.proc.pid
    wire.send(id="p", op="ping")
    assert wire.end("p")["result"]["pong"] is True
    wire.send(id="g", op="generate", params={"prompt": "a red heart", "frames": 4, "size": 32, "steps": 3, "seed": 7,
                                             "frames_dir": str(tmp_path / "f")})
    res = wire.end("g")["result"]
    assert [Path(p).name for p in res["frames"]] == [f"frame_{i:03d}.png" for i in range(4)]
    assert all(Path(p).is_file() for p in res["frames"]) and res["size"] == [32, 32]
    assert res["durations_ms"] == [100] * 4 and res["recipe"]["seed"] == 7
    steps = [x["step"] for x in wire.lines if x.get("id") == "g" and x["kind"] == "progress"]
    assert steps == [1, 2, 3]
    assert sum(1 for x in wire.lines if x.get("id") == "g" and x["kind"] in ("finished", "failed")) == 1
    assert wire.close() == 0


def test_typed_errors_and_bad_lines(wire):
    wire.send(id="v", op="generate", params={"prompt": "x", "frames": 0})
    assert wire.end("v")["error_type"] == "InputError"
    wire.send(id="m", op="generate", params={"prompt": "please fail", "frames": 2, "size": 32, "steps": 1})
    failed = wire.end("m")
    assert failed["error_type"] == "ModelError" and "not a model folder" in failed["message"]
    wire.proc.stdin.write("this is not json\n")
    wire.proc.stdin.flush()
    wire.wait_for(lambda x: x["kind"] == "failed" and "unreadable" in x["message"])
    wire.send(id="u", op="frobnicate")
    assert "unknown op" in wire.end("u")["message"]
    wire.send(id="c", op="check", params={})
    assert wire.end("c")["error_type"] == "InputError"
    wire.send(id="p", op="prepare", params={"model": "default", "frames": 4, "size": 32, "given": True})
    assert wire.end("p")["result"] == {"model": "default", "device": "cpu", "graphs": 2, "seconds": 0.01}
    wire.send(id="q", op="prepare", params={"model": "default", "size": 33})
    assert wire.end("q")["error_type"] == "InputError"


def test_jobs_run_in_order_and_cancel(tmp_path):
    w = Wire(delay=0.05)
    try:
        w.wait_for(lambda x: x["kind"] == "ready")
        gen = {"prompt": "slow", "frames": 2, "size": 32, "steps": 200, "frames_dir": str(tmp_path / "a")}
        w.send(id="a", op="generate", params=gen)
        w.send(id="b", op="device")
        w.send(id="c", op="models")
        w.wait_for(lambda x: x.get("id") == "a" and x["kind"] == "progress")
        w.send(id=None, op="cancel", params={"target": "c"})  # queued: dropped at once
        assert w.end("c")["error_type"] == "Cancelled"
        w.send(id=None, op="cancel", params={"target": "a"})  # running: its stop flag is set
        assert w.end("a")["error_type"] == "Cancelled"
        assert w.end("b")["result"]["device"] == "cpu"
        order = [x["id"] for x in w.lines if x["kind"] in ("finished", "failed")]
        assert order == ["c", "a", "b"]
        w.send(id="s", op="shutdown")
        assert w.end("s")["result"]["shutdown"] is True
        assert w.proc.wait(20) == 0
    finally:
        w.proc.kill()


def test_train_stops_with_checkpoint_when_stdin_closes(tmp_path):
    """The GUI dying (EOF on stdin) must stop a run cooperatively, leaving a resumable checkpoint."""
    w = Wire(delay=0.02)
    run = tmp_path / "run"
    w.send(id="t", op="train", params={"data": "builtin:shapes", "out": str(run), "preset": "tiny", "steps": 500,
                                       "checkpoint_every": 10, "sample_every": 5})
    w.wait_for(lambda x: x.get("id") == "t" and x["kind"] == "preview")
    metrics = w.wait_for(lambda x: x.get("id") == "t" and x["kind"] == "metrics")
    assert metrics["stage"] == "train" and metrics["loss"] > 0  # a typed Metrics event: named fields
    assert w.close() == 0
    res = w.end("t")["result"]
    assert res["stopped"] is True and resumable_step(run) == res["step"] > 0  # what a resume starts from
    assert not (run / "done.json").exists()


def test_stray_prints_never_reach_the_protocol(tmp_path):
    """A backend that prints to stdout (a library warning, a C-level write) must not corrupt the stream."""
    mod = tmp_path / "chatty_backend.py"
    mod.write_text("import os\nfrom fake_backend import *\n"
                   "def device(req, on_event, should_stop):\n    print('hello from a library')\n    os.write(1, b'raw C write\\n')\n"
                   "    return {'device': 'cpu'}\n")
    w = Wire(extra_env={"RDTF_WORKER_BACKEND": "chatty_backend",
                        "PYTHONPATH": os.pathsep.join([str(tmp_path), fake_worker_env()["PYTHONPATH"]])})
    w.send(id="d", op="device")
    assert w.end("d")["result"] == {"device": "cpu"}
    assert w.close() == 0
    assert "hello from a library" in w.proc.stderr.read()


# ---- EngineClient (QProcess) against the real worker --------------------------------------------------------
@pytest.fixture
def client(qtbot, worker_env, tmp_path):
    c = EngineClient("engine", env=worker_env, log_file=tmp_path / "worker.log")
    yield c
    c.stop_now()


def test_client_runs_jobs_and_cancels(qtbot, client, tmp_path):
    job = client.submit("generate", {"prompt": "hi", "frames": 3, "size": 32, "steps": 2,
                                     "frames_dir": str(tmp_path / "f")})
    with qtbot.waitSignal(job.finished, timeout=20000) as done:
        pass
    assert len(done.args[0]["frames"]) == 3 and client.state == "ready" and client.pid
    slow = client.submit("generate", {"prompt": "hi", "frames": 2, "size": 32, "steps": 1000})
    with qtbot.waitSignal(slow.progress, timeout=20000):
        pass
    with qtbot.waitSignal(slow.failed, timeout=20000) as failed:
        client.cancel(slow)
    assert failed.args[0] == "Cancelled" and not client.busy


def test_client_crash_fails_job_and_restarts(qtbot, client):
    ping = client.submit("device")
    with qtbot.waitSignal(ping.finished, timeout=20000):
        pass
    first_pid = client.pid
    with qtbot.waitSignal(client.crashed, timeout=20000) as crashed:
        job = client.submit("generate", {"prompt": "crash now", "frames": 2, "size": 32, "steps": 1})
    assert job.state == "failed" and job.error_type == "WorkerCrashed"
    assert "restarted" in crashed.args[0]
    again = client.submit("device")
    with qtbot.waitSignal(again.finished, timeout=20000):
        pass
    assert client.pid != first_pid and client.state == "ready"


def test_client_gives_up_after_repeated_crashes(qtbot, client):
    for _ in range(3):
        job = client.submit("generate", {"prompt": "crash", "frames": 2, "size": 32, "steps": 1})
        with qtbot.waitSignal(job.done, timeout=20000):
            pass
    assert client.state == "gave-up"
    late = client.submit("device")
    with qtbot.waitSignal(late.failed, timeout=2000) as failed:
        pass
    assert failed.args[0] == "WorkerCrashed"
    client.restart()
    ok = client.submit("device")
    with qtbot.waitSignal(ok.finished, timeout=20000):
        pass


def test_client_reports_a_worker_that_cannot_start(qtbot, tmp_path):
    c = EngineClient("engine", command=[str(tmp_path / "no-such-python")])
    job = c.submit("device")
    with qtbot.waitSignal(job.failed, timeout=5000) as failed:
        pass
    assert failed.args[0] == "WorkerCrashed"
    c.stop_now()


def test_engine_backend_lists_the_models_in_the_apps_folders(tmp_path):
    """The app's model folders reach the engine (they used to be dropped): a model in one is listed, with the
    weights hash a recipe names it by; the same weights under another name hash the same."""
    import shutil

    from rdtf_engine.core.events import null_event
    from rdtf_engine.core.paths import builtin_models_dir
    from rdtf_engine.core.requests import ModelsRequest
    from rdtf_engine.jobs.backend import EngineBackend

    for name in ("cats", "cats-copy"):  # a real model folder: anything less fails the loader's checks
        shutil.copytree(builtin_models_dir() / "default", tmp_path / "models" / name)
    models = EngineBackend().models(ModelsRequest(dirs=[str(tmp_path / "models")]), null_event, lambda: False)
    mine = {m["name"]: m for m in models if not m.get("builtin")}
    assert set(mine) >= {"cats", "cats-copy"}
    assert mine["cats"]["sha256"] == mine["cats-copy"]["sha256"] and len(mine["cats"]["sha256"]) == 64


@pytest.mark.skipif(sys.platform == "win32", reason="needs fork")
def test_processes_forked_by_a_job_start_while_the_reader_waits_on_stdin():
    """Data preparation forks render / k-means pools inside the worker. A forked child closes sys.stdin as it
    starts; if the reader thread were blocked reading sys.stdin (holding its lock), the child would hang."""
    code = (
        "import multiprocessing as mp, sys, threading, time\n"
        "from rdtf_engine.worker import private_stdin\n"
        "stream = private_stdin()\n"
        "threading.Thread(target=stream.readline, daemon=True).start()\n"
        "time.sleep(0.3)\n"
        "p = mp.get_context('fork').Process(target=print, args=('child started',), daemon=True)\n"
        "p.start(); p.join(20)\n"
        "print('exit', p.exitcode, flush=True)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)  # stdin stays open: the reader thread blocks in its read
    try:
        out = proc.stdout.read()  # the script ends by itself: a hung child only delays it by the 20 s join
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert "child started" in out and "exit 0" in out, out
