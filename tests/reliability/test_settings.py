"""A damaged settings file never stops the app: random bytes, wrong types, NaN / inf / denormals, huge numbers →
the window starts (offscreen) on defaults for the bad keys, keeps the good ones, and keeps a copy of the file."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))  # FakeEngine, as the app tests use it

from app.settings import DEFAULTS, Settings
from app.state.runs import format_duration

BAD_NUMBERS = ["nan", "-nan", "inf", "-inf", "1e-310", "1e308", "9" * 400, "0x10", "", "[]", "@Invalid()", "true"]


def _ini(path: Path, lines: dict[str, str]) -> None:
    groups: dict[str, list[str]] = {}
    for key, value in lines.items():
        group, name = key.split("/", 1)
        escaped = name.replace("/", "\\")  # QSettings' INI spelling of a nested key
        groups.setdefault(group, []).append(f"{escaped}={value}")
    path.write_text("".join(f"[{g}]\n" + "\n".join(v) + "\n" for g, v in groups.items()), "utf-8")


def _start_window(qtbot, home: Path):
    """What app/__main__.build does, with FakeEngine workers instead of subprocesses."""
    from fake_engine import FakeEngine

    from app.main_window import MainWindow
    from app.paths import UserDirs
    from app.state.app_state import AppState

    dirs = UserDirs(home)
    s = Settings(dirs.settings_file)
    state = AppState(FakeEngine("engine"), FakeEngine("trainer", hold=("train",)), dirs, s)
    window = MainWindow(state, s, ask_before_close=False)
    qtbot.addWidget(window)
    if s.problem:
        window.bar.show_message("warning", s.problem)
    window.show()
    return s, state, window


@pytest.mark.parametrize("value", ["nan", "1e-310", "inf", "-5", "1e308", "abc"])
def test_app_starts_with_a_bad_measured_speed(qtbot, tmp_path, value):
    from app.paths import UserDirs

    dirs = UserDirs(tmp_path / "home")
    _ini(dirs.settings_file, {"train/speed/cpu/small": value, "train/speed/cpu/tiny": "2.5",
                              "create/steps": "12"})
    s, state, _window = _start_window(qtbot, tmp_path / "home")
    assert "about" in state.train.estimate
    assert s.get("create/steps") == 12  # the good keys survive
    assert s.raw("train/speed/cpu/small") is None  # the bad key reads as its default ...
    assert s.problem == ""  # one bad value costs only itself: no warning bar for it
    assert Path(str(dirs.settings_file) + ".bad").is_file()  # the file as it was is kept
    assert float(s.raw("train/speed/cpu/tiny")) == 2.5


def test_every_typed_key_falls_back_per_key(qtbot, tmp_path):
    from app.paths import UserDirs

    dirs = UserDirs(tmp_path / "home")
    lines = {key: BAD_NUMBERS[i % len(BAD_NUMBERS)] for i, key in enumerate(DEFAULTS) if DEFAULTS[key][0] in
             (int, float)}
    lines.update({"timeline/onion": "maybe", "create/model": "default", "window/page": "3"})
    _ini(dirs.settings_file, lines)
    s, _state, _window = _start_window(qtbot, tmp_path / "home")
    for key, (typ, default, _b) in DEFAULTS.items():
        if key == "window/page":
            assert s.get(key) == 3
        elif key in lines and key != "create/model":
            assert s.get(key) == default, key
    s.sync()
    assert Path(str(dirs.settings_file) + ".bad").is_file()
    again = Settings(dirs.settings_file)
    for key in lines:
        if key not in ("window/page", "create/model"):
            assert again.raw(key) is None, key  # the bad keys were removed from the file: the next start is clean


def test_random_bytes_settings_file(qtbot, tmp_path):
    from app.paths import UserDirs

    dirs = UserDirs(tmp_path / "home")
    dirs.settings_file.parent.mkdir(parents=True, exist_ok=True)
    dirs.settings_file.write_bytes(bytes(range(256)) * 8 + b"\n[create]\nsteps=\xff\xfe\n")
    s, _state, _window = _start_window(qtbot, tmp_path / "home")
    for key, (_t, default, _b) in DEFAULTS.items():
        assert s.get(key) == default


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=600))
def test_fuzzed_settings_files_load_to_valid_values(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("settings") / "settings.ini"
    path.write_bytes(data)
    s = Settings(path)
    for key, (typ, _default, bounds) in DEFAULTS.items():
        value = s.get(key)
        assert isinstance(value, typ)
        if bounds:
            assert bounds[0] <= value <= bounds[1]
        if isinstance(value, float):
            assert math.isfinite(value)


@settings(max_examples=100, deadline=None, database=None)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), st.text(max_size=5), st.none()))
def test_format_duration_is_total(value):
    text = format_duration(value)
    assert isinstance(text, str) and text
