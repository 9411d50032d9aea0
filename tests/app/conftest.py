"""Shared fixtures for the app tests: offscreen Qt, a throwaway user profile, FakeEngine, real-worker env."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import: tests never need a display

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))  # fake_engine / fake_backend import by plain name

from fake_engine import FakeEngine


@pytest.fixture(autouse=True)
def studio_home(tmp_path, monkeypatch):
    """Every test gets its own user folders: nothing touches the real profile, nothing leaks between tests."""
    home = tmp_path / "home"
    monkeypatch.setenv("RDTF_STUDIO_HOME", str(home))
    return home


@pytest.fixture
def dirs(studio_home):
    from app.paths import UserDirs

    return UserDirs(studio_home)


@pytest.fixture
def settings(dirs):
    from app.settings import Settings

    return Settings(dirs.settings_file)


@pytest.fixture
def fake():
    return FakeEngine("engine")


@pytest.fixture
def fake_trainer():
    return FakeEngine("trainer", hold=("train",))


@pytest.fixture
def state(qtbot, fake, fake_trainer, dirs, settings):
    from app.state.app_state import AppState

    return AppState(fake, fake_trainer, dirs, settings)


def fake_worker_env(delay: float = 0.005) -> dict[str, str]:
    """Environment for a real worker subprocess running the deterministic fake backend."""
    return {"RDTF_WORKER_BACKEND": "fake_backend", "RDTF_FAKE_DELAY": str(delay),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(HERE)])}


@pytest.fixture
def worker_env():
    return fake_worker_env()
