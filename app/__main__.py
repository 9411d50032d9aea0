"""Entry point: ``python -m app`` (console script ``rdtf-studio``).

``--or-demo``: with no display (Linux without DISPLAY/WAYLAND_DISPLAY and no QT_QPA_PLATFORM), say so and
make a demo sticker headlessly through the engine CLI instead of failing to open a window.
A frozen build is one executable: ``--worker`` runs the engine worker and ``--cli`` the engine CLI, because
there is no separate Python to run ``-m rdtf_engine`` with.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

DEMO_PROMPT = "a red heart beating"
DEMO_OUT = Path("out") / "demo.gif"


def has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True  # offscreen, xcb with an explicit target, …: the user chose
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True  # Windows and macOS always have a window server for a desktop session


def engine_cli_command(args: list[str]) -> list[str]:
    from app.paths import frozen

    if frozen():
        return [sys.executable, "--cli", *args]
    return [sys.executable, "-m", "rdtf_engine", *args]


def run_demo() -> int:
    print("No display found (no DISPLAY or WAYLAND_DISPLAY, QT_QPA_PLATFORM not set): "
          "making a demo sticker headlessly instead of opening the window.", flush=True)
    DEMO_OUT.parent.mkdir(parents=True, exist_ok=True)
    from app.paths import UserDirs, worker_env

    cmd = engine_cli_command(["generate", "--prompt", DEMO_PROMPT, "--out", str(DEMO_OUT)])
    print("$ " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, env={**os.environ, **worker_env(UserDirs())})
    if rc != 0:
        print(f"The demo generation failed (exit code {rc}); see the messages above.", file=sys.stderr)
        return rc
    print(f"Demo sticker: {DEMO_OUT.resolve()}")
    return 0


def build(dirs=None, ask_before_close: bool = True):
    """Everything a window needs, wired; shared by main() and packaging/screenshots.py."""
    from app.jobs import EngineClient
    from app.main_window import MainWindow
    from app.paths import UserDirs
    from app.settings import Settings
    from app.state.app_state import AppState

    dirs = dirs or UserDirs()
    settings = Settings(dirs.settings_file)
    from app.paths import worker_env

    env = worker_env(dirs)
    engine = EngineClient("engine", env=env, log_file=dirs.worker_log_file)
    trainer = EngineClient("trainer", env=env, log_file=dirs.worker_log_file)
    state = AppState(engine, trainer, dirs, settings)
    window = MainWindow(state, settings, ask_before_close=ask_before_close)
    if settings.problem:
        window.bar.show_message("warning", settings.problem)
    return state, window


async def _run_until_quit(app) -> int:
    quit_event = asyncio.Event()
    app.aboutToQuit.connect(quit_event.set)
    await quit_event.wait()
    return 0


def run_gui(page: str | None) -> int:
    import qasync
    from PySide6.QtWidgets import QApplication

    from app import __version__
    from app.logs import install_excepthook, setup_logging
    from app.paths import UserDirs
    from app.theme import follow_system

    app = QApplication.instance() or QApplication(sys.argv)
    app.setApplicationName("RDTF Sticker Studio")
    app.setApplicationVersion(__version__)
    app.setQuitOnLastWindowClosed(True)
    follow_system(app)
    dirs = UserDirs()
    setup_logging(dirs.log_file)
    logging.getLogger("app").info("starting %s, user data in %s", __version__, dirs.data)
    state, window = build(dirs)
    install_excepthook(lambda text: window.bar.show_message("error", text), dirs.log_file)
    window.show()
    if page:
        window.show_page(page)
    state.start()
    # qasync drives Qt and asyncio from one loop (qasync.run: asyncio.run has no loop_factory before 3.12).
    return qasync.run(_run_until_quit(app))


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        from rdtf_engine.worker import main as worker_main

        return worker_main(argv[1:])
    if argv[:1] == ["--cli"]:
        from rdtf_engine.cli.main import main as cli_main

        return cli_main(argv[1:])
    multiprocessing.freeze_support()
    parser = argparse.ArgumentParser(prog="rdtf-studio", description="RDTF Sticker Studio")
    parser.add_argument("--or-demo", action="store_true",
                        help="without a display, make a demo sticker headlessly instead of opening the window")
    parser.add_argument("--page", choices=["create", "timeline", "train", "export", "models", "gallery"],
                        help="page to open first")
    args = parser.parse_args(argv)
    if args.or_demo and not has_display():
        return run_demo()
    return run_gui(args.page)


if __name__ == "__main__":
    sys.exit(main())
