"""Entry point: display detection, the headless --or-demo path, worker command lines (dev and frozen)."""

from __future__ import annotations

import sys

from app import __main__ as entry
from app import paths


def test_has_display(monkeypatch):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    assert not entry.has_display()
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert entry.has_display()
    monkeypatch.delenv("WAYLAND_DISPLAY")
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert entry.has_display()


def test_or_demo_without_display_runs_the_engine_cli(monkeypatch, tmp_path, capsys):
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.chdir(tmp_path)
    calls = []

    def fake_call(cmd, env):
        calls.append((cmd, env))
        (tmp_path / "out" / "demo.gif").write_bytes(b"GIF89a")
        return 0

    monkeypatch.setattr(entry.subprocess, "call", fake_call)
    assert entry.main(["--or-demo"]) == 0
    cmd, env = calls[0]
    assert cmd[1:] == ["-m", "rdtf_engine", "generate", "--prompt", "a red heart beating", "--out", "out/demo.gif"]
    assert "RDTF_HOME" in env
    out = capsys.readouterr().out
    assert "No display" in out and str(tmp_path / "out" / "demo.gif") in out


def test_worker_command_dev_and_frozen(monkeypatch):
    assert paths.worker_command()[1:] == ["-m", "rdtf_engine", "worker"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/rdtf-studio/rdtf-studio")
    assert paths.worker_command() == ["/opt/rdtf-studio/rdtf-studio", "--worker"]
    assert entry.engine_cli_command(["models"]) == ["/opt/rdtf-studio/rdtf-studio", "--cli", "models"]
    assert "PYTHONPATH" not in paths.worker_env()  # a frozen bundle carries its own engine


def test_frozen_worker_flag_routes_to_the_worker(monkeypatch):
    seen = []
    from rdtf_engine import worker

    monkeypatch.setattr(worker, "main", lambda argv: seen.append(argv) or 0)
    assert entry.main(["--worker", "--backend", "x"]) == 0 and seen == [["--backend", "x"]]
