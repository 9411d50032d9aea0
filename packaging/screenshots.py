"""Screenshots of every page of the real app, driven through a real workflow, saved to docs/screenshots/.

    .venv/bin/python packaging/screenshots.py            # `make screenshots`

Runs under Xvfb (re-executes itself with ``xvfb-run`` when there is no display; falls back to Qt's offscreen
platform when Xvfb is missing) in a throwaway user profile, with the real engine workers: it generates a
sticker, locks frames, imports a small pack and trains for a few steps, checks exports, then grabs each page.
Uses the shipped default model when there is one, else first trains a tiny model (a minute or two on CPU).

    .venv/bin/python packaging/screenshots.py --pack-folder packs/crab   # only the Pack page, on that pack

``--pack-folder`` retakes only ``pack.png``, showing an existing pack folder (copied into the throwaway profile
first, so the page shows no path of yours) instead of generating one.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"
PAGES = ("create", "timeline", "pack", "train", "export", "models", "gallery")


def ensure_display() -> None:
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if shutil.which("xvfb-run") and not os.environ.get("RDTF_SCREENSHOTS_CHILD"):
        env = {**os.environ, "RDTF_SCREENSHOTS_CHILD": "1"}
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable, *sys.argv]
        sys.exit(subprocess.call(cmd, env=env))
    os.environ["QT_QPA_PLATFORM"] = "offscreen"


def tiny_model(dirs) -> str:
    """The shipped default, or a tiny model trained now into the throwaway profile (shows on the Models page)."""
    if (ROOT / "resources" / "models" / "default" / "config.json").is_file():
        return "default"
    from app.paths import worker_env

    run = dirs.runs / "screenshot-tiny"
    print("no shipped default model: training a tiny one first…", flush=True)
    subprocess.run([sys.executable, "-m", "rdtf_engine", "train", "--data", "builtin:shapes", "--out", str(run),
                    "--preset", "tiny", "--steps", "30", "--size", "64", "--ae-steps", "30", "--max-clips", "8",
                    "--batch-size", "4"], check=True, cwd=ROOT, env={**os.environ, **worker_env(dirs)})
    return str(run)


def make_pack(folder: Path, frames: list[str]) -> Path:
    """A small user pack built from generated frames, plus one broken file so the import report has a skip."""
    import numpy as np
    from PIL import Image

    from rdtf_engine.formats.palette import matte_1bit

    folder.mkdir(parents=True, exist_ok=True)
    # as a GIF tool writes them (the engine's GIF export does the same): soft edges on a white matte, 1-bit alpha —
    # not PIL's own conversion, which makes every faintly transparent pixel opaque in its meaningless colour
    rgba = matte_1bit(np.stack([np.asarray(Image.open(p).convert("RGBA")) for p in frames]), (255, 255, 255))
    imgs = [Image.fromarray(f, "RGBA") for f in rgba]
    # five stickers: a pack fine-tune needs at least four (pack_windows.MIN_STICKERS)
    for i, name in enumerate(["heart_beating", "heart_wobble", "pulsing_heart", "heart_bounce", "heart_glow"]):
        seq = imgs[i:] + imgs[:i]
        seq[0].save(folder / f"{name}.gif", save_all=True, append_images=seq[1:], duration=100, loop=0,
                    disposal=2)
    (folder / "notes.gif").write_bytes(b"GIF89a this is not really a gif")
    return folder


async def wait_for(signal, timeout: float = 300.0):
    fut = asyncio.get_running_loop().create_future()
    signal.connect(lambda *a: fut.done() or fut.set_result(a))
    return await asyncio.wait_for(fut, timeout)


async def until(pred, timeout: float = 300.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not pred():
        if loop.time() > end:
            raise TimeoutError("the app did not get there in time")
        await asyncio.sleep(0.1)


async def scenario(state, window, dirs, model: str, out: Path) -> None:
    from app.state import runs

    def shot(page: str) -> None:
        window.show_page(page)
        window.repaint()
        path = out / f"{page}.png"
        window.grab().save(str(path))
        print("saved", path, flush=True)

    state.start()
    await until(lambda: not state.models.busy)
    print("models:", [m.get("name") for m in state.models.models], flush=True)
    c = state.create
    for k, v in {"prompt": "a red heart beating", "frames": 8, "size": 256, "steps": 20, "seed": 7,
                 "model": model}.items():
        c.set_value(k, v)
    window.show_page("create")
    c.generate()
    (sticker,) = await wait_for(c.generated)
    window.bar.hide()
    shot("create")

    tl = state.timeline
    tl.toggle_lock([0, 4])
    tl.regenerate_unlocked()
    await until(lambda: not tl.busy)
    tl.play(False)
    tl.select([0, 4])
    window.bar.hide()
    shot("timeline")

    pack = make_pack(Path(tempfile.mkdtemp(prefix="rdtf-pack-")), [f.path for f in sticker.frames])
    tr = state.train
    tr.import_source(str(pack))
    await until(lambda: not tr.importing and bool(tr.captions))
    # The Train page's default (fine-tune the shipped model on the pack), shortened: a brief decoder tune and
    # frequent samples, so the monitor has a curve and a sample grid to show within minutes on a CPU.
    full = runs.recipe_for

    def shortened(choice, device):
        r = full(choice, device)
        return dataclasses.replace(r, train=dataclasses.replace(r.train, steps=400, decoder_steps=10),
                                   sample_every=10, checkpoint_every=10, max_minutes=0.0)

    runs.recipe_for = shortened
    tr.set_choice("pack")
    tr.start()
    errors = []
    tr.message.connect(lambda kind, text: kind == "error" and errors.append(text))
    await until(lambda: errors or (len(tr.losses) >= 2 and bool(tr.samples)), timeout=1200)
    if errors:
        raise SystemExit(f"training failed in the app: {errors[0]}")
    shot("train")
    tr.stop()
    await until(lambda: tr.state in ("idle", "paused", "done"), timeout=120)

    ex = state.export
    ex.set_selected(["telegram", "whatsapp", "line", "gif"])
    ex.check()
    await until(lambda: not ex.busy and len(ex.results) == 4, timeout=300)
    window.bar.hide()
    shot("export")

    state.models.refresh()
    await until(lambda: not state.models.busy)
    shot("models")

    state.gallery.refresh()
    state.gallery.select(sticker.id)
    window.bar.hide()
    shot("gallery")

    pk = state.pack  # the generated sticker as the character of a small pack
    pk.use_gallery_sticker(sticker)
    pk.set_value("title", "Heart moods")
    pk.set_value("moods", "waving, laughing, heart eyes, sleeping, party, jumping")
    window.show_page("pack")
    pk.generate()
    await until(lambda: not pk.busy, timeout=900)
    window.bar.hide()
    shot("pack")
    await state.trainer.shutdown(30)
    await state.engine.shutdown(10)


async def pack_only(state, window, dirs, folder: Path, out: Path) -> None:
    """Only the Pack page, on a copy of an existing pack folder."""
    copy = Path(dirs.data) / "packs" / folder.name
    shutil.copytree(folder, copy)
    state.start()
    await until(lambda: not state.models.busy)
    window.show_page("pack")
    if not state.pack.open(str(copy)):
        raise SystemExit(f"{folder} is not a pack folder")
    state.pack.set_value("character", "character.png")  # the field names the picture; the view shows it
    for _ in range(20):  # let every looping preview paint its first frames
        await asyncio.sleep(0.1)
    window.bar.hide()
    window.repaint()
    window.grab().save(str(out / "pack.png"))
    print("saved", out / "pack.png", flush=True)
    await state.engine.shutdown(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--theme", choices=["light", "dark"], default="light")
    parser.add_argument("--model", help="model folder or run to generate with (default: shipped, else train one)")
    parser.add_argument("--pack-folder", type=Path, default=None,
                        help="only retake pack.png, showing this existing pack folder (made by `rdtf pack new`)")
    args = parser.parse_args()
    ensure_display()
    os.environ["RDTF_THEME"] = args.theme
    home = Path(tempfile.mkdtemp(prefix="rdtf-screens-"))
    os.environ["RDTF_STUDIO_HOME"] = str(home)
    args.out.mkdir(parents=True, exist_ok=True)

    import qasync
    from PySide6.QtWidgets import QApplication

    from app.__main__ import build
    from app.paths import UserDirs
    from app.theme import apply_theme

    app = QApplication(sys.argv)
    apply_theme(app)
    dirs = UserDirs(home)
    if args.pack_folder:
        model = ""
    elif args.model:
        # Like the Models page's import: the model is copied into the profile, so the Models page lists it.
        src = Path(args.model) / "model" if (Path(args.model) / "model").is_dir() else Path(args.model)
        shutil.copytree(src, dirs.models / "tiny-demo")
        model = str(dirs.models / "tiny-demo")
    else:
        model = tiny_model(dirs)
    state, window = build(dirs, ask_before_close=False)
    window.resize(1280, 820)
    window.show()
    try:
        if args.pack_folder:
            qasync.run(pack_only(state, window, dirs, args.pack_folder.resolve(), args.out))
        else:
            qasync.run(scenario(state, window, dirs, model, args.out))
    except Exception:
        log = dirs.worker_log_file
        print(f"failed; engine state {state.engine.state}, trainer {state.trainer.state}; worker log {log}:\n"
              + (log.read_text()[-3000:] if log.exists() else "(none)"), file=sys.stderr)
        raise
    shutil.rmtree(home, ignore_errors=True)
    sys.stdout.flush()
    # Skip interpreter teardown: shiboken can crash collecting Qt objects at exit after a qasync run, and
    # everything worth keeping is already on disk.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
