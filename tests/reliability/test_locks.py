"""Run-folder locks: a second trainer (CLI, engine call or app window) on a folder in use gets a typed "in use"
error naming the holder's PID and touches nothing; a killed holder's lock is gone with it; stale temp siblings
are cleaned on the next start and a failed start leaves no run folder behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rdtf_engine.core.errors import InputError, InUseError
from rdtf_engine.core.locks import FolderLock, lock_holder
from rdtf_engine.core.requests import TrainRequest

_HOLDER = textwrap.dedent("""
    import sys, time
    from rdtf_engine.core.locks import FolderLock
    lock = FolderLock(sys.argv[1]).acquire()
    print("locked", flush=True)
    time.sleep(120)
""")


def _hold(folder: Path) -> subprocess.Popen:
    """Another process holding ``folder``'s lock (as a second trainer would)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(folder)], stdout=subprocess.PIPE, text=True,
                            env=env)
    assert proc.stdout.readline().strip() == "locked"
    return proc


@pytest.fixture
def held_folder(tmp_path):
    folder = tmp_path / "run"
    proc = _hold(folder)
    yield folder, proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def _tiny_request(out: Path, **kw) -> TrainRequest:
    base = {"data": "builtin:shapes", "out": str(out), "preset": "tiny", "steps": 2, "size": 32, "batch_size": 2,
            "ae_steps": 2, "checkpoint_every": 1, "max_clips": 4, "device": "cpu"}
    return TrainRequest.of(**{**base, **kw})


def test_second_holder_gets_in_use_error_with_pid(held_folder):
    folder, proc = held_folder
    with pytest.raises(InUseError, match=f"in use by PID {proc.pid}"):
        FolderLock(folder).acquire()
    assert lock_holder(folder) == proc.pid


def test_lock_of_a_killed_process_is_free_again(held_folder):
    folder, proc = held_folder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with FolderLock(folder) as lock:  # no stale-lock file to delete by hand: the OS lock died with the process
        assert lock.held and lock_holder(folder) == os.getpid()
    assert lock_holder(folder) is None


def test_train_on_a_folder_in_use_fails_before_touching_it(held_folder):
    from rdtf_engine.training.loop import train

    folder, proc = held_folder
    with pytest.raises(InUseError, match=str(proc.pid)):
        train(_tiny_request(folder))
    assert sorted(p.name for p in folder.iterdir()) == [".lock"]  # no train_config.json, no autoencoder


def test_cli_train_on_a_folder_in_use_is_one_error_line(held_folder, capsys):
    from rdtf_engine.cli.main import main

    folder, proc = held_folder
    rc = main(["train", "--data", "builtin:shapes", "--out", str(folder), "--steps", "2", "--device", "cpu"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [(f"error: run folder {folder} is in use by PID {proc.pid} (another training run or app window); "
                   "wait for it to finish or pick another folder")]


def test_failed_start_leaves_no_run_folder(tmp_path):
    from rdtf_engine.training.loop import train

    out = tmp_path / "new-run"
    with pytest.raises(InputError):
        train(_tiny_request(out, data=str(tmp_path / "no-such-pack")))
    assert not out.exists()


def test_failed_start_keeps_what_was_there_and_cleans_stale_temps(tmp_path):
    from rdtf_engine.training.loop import train

    out = tmp_path / "run"
    (out / "checkpoints" / ".tmp-abc123").mkdir(parents=True)
    (out / "checkpoints" / ".tmp-abc123" / "model-00001.safetensors").write_bytes(b"torn")
    (out / ".model.old-4194999").mkdir()
    (out / "notes.txt").write_text("mine")
    events = []
    with pytest.raises(InputError):
        train(_tiny_request(out, data=str(tmp_path / "no-such-pack")), on_event=events.append)
    assert not (out / "checkpoints" / ".tmp-abc123").exists() and not (out / ".model.old-4194999").exists()
    assert (out / "notes.txt").read_text() == "mine"  # never a file it did not write
    assert not (out / "train_config.json").exists()
    assert any("temp file(s) a stopped run left behind" in getattr(e, "message", "") for e in events)


def test_app_shows_in_use_error_on_the_train_page(qtbot, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
    from fake_engine import FakeEngine

    from app.paths import UserDirs
    from app.state.train import TrainViewModel

    trainer = FakeEngine("trainer", hold=("train",))
    vm = TrainViewModel(FakeEngine("engine"), trainer, UserDirs(tmp_path / "home"))
    vm._dataset = str(tmp_path / "ds")
    messages = []
    vm.message.connect(lambda level, text: messages.append((level, text)))
    vm.start()
    assert vm.state == "running"
    trainer.fail(trainer.last("train"), "InUseError", "run folder R is in use by PID 4242 (another training run "
                                                      "or app window)")
    assert vm.state != "running" and vm.job is None
    assert messages and messages[-1][0] == "error"
    assert "in use by PID 4242" in messages[-1][1] and "Wait for the other run" in messages[-1][1]
