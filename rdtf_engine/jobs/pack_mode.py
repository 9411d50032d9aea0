"""Pack mode: one character, a whole consistent sticker set (``rdtf pack …``, the app's Pack page).

Every sticker is an image & text → video sample from the same character picture (frame 0 given, reference
attention keeps its identity while it moves) with the sticker's own prompt (``data.pack_prompts``) and seed
(``packs.moods.derive_seed``). Stickers are made one at a time; ``pack.json`` is saved after each, so a killed
run keeps what it made and a rerun makes only the missing ones; cancelling stops between stickers (or inside
one: that sticker is simply not written).
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from rdtf_engine.core.atomic import make_dir, write_bytes_atomic
from rdtf_engine.core.config import MAX_SEED
from rdtf_engine.core.errors import Cancelled, InputError
from rdtf_engine.core.events import Log, Preview, Progress, never_stop, null_event
from rdtf_engine.core.requests import GenerateRequest, PackRequest
from rdtf_engine.data.pack_prompts import sticker_prompt
from rdtf_engine.packs.edit import add_motions, new_project
from rdtf_engine.packs.moods import derive_seed
from rdtf_engine.packs.project import (
    CHARACTER_FILE,
    PACK_FILE,
    STICKERS_DIR,
    PackProject,
    PackSticker,
    inside,
    load_pack,
    save_pack,
)

CHARACTER_MAX_SIDE = 512  # the character picture is kept at most this large (the model samples at 128 px)
# The share of the frame the character's longer side takes. Training clips draw their object at 0.56-0.68 of the
# frame (``data.emoji``), and frame 0 of an image & text -> video sample is read as such a frame: a picture that
# fills the whole frame leaves no room to move and is unlike anything the model saw, and it then barely moves.
CHARACTER_FILL = 0.62
IMAGE_SUFFIXES = (".png", ".apng", ".gif", ".webp", ".webm", ".jpg", ".jpeg", ".tgs", ".json", ".bmp")


def run_pack(req: PackRequest, on_event=null_event, should_stop=never_stop) -> dict[str, Any]:
    """A validated :class:`PackRequest` → the stickers it asks for, made and saved one by one."""
    folder = Path(req.folder)
    if req.action == "new":
        project = start_pack(req, on_event, should_stop)
        todo = [s.id for s in project.stickers if not is_made(folder, s)]
    else:
        project = load_pack(folder)
        if req.action == "regen":
            project, todo = _regen_targets(folder, project, req)
        else:
            todo = [s.id for s in project.stickers if not is_made(folder, s)]
    made = make_stickers(folder, project, todo, req, on_event, should_stop)
    project = load_pack(folder)
    return {"folder": str(folder), "stickers": len(project.stickers), "made": made,
            "missing": [s.id for s in project.stickers if not is_made(folder, s)]}


def is_made(folder: str | Path, sticker: PackSticker) -> bool:
    """The sticker has a file and it is there (a hand-deleted file counts as not made)."""
    return bool(sticker.file) and inside(folder, str(sticker.file)).is_file()


def resolved_model(model: str, on_event=null_event, should_stop=never_stop) -> tuple[Path, str, int]:
    """A model reference → (its folder, the name a pack stores, its native size)."""
    from rdtf_engine.core.model_folder import validate_model_folder
    from rdtf_engine.jobs.api import resolve_or_demo

    folder = resolve_or_demo(model or "default", on_event, should_stop)
    card = validate_model_folder(folder)
    is_name = "/" not in model and "\\" not in model and not Path(model).is_dir()
    name = model if is_name and model else str(card.name).replace("/", "-").replace("\\", "-")[:200]
    return folder, name or "default", int(card.size)


# ---------------------------------------------------------------------------------------------- a new pack
def start_pack(req: PackRequest, on_event=null_event, should_stop=never_stop) -> PackProject:
    """Create the pack folder (character picture + pack.json), or resume the pack already in it."""
    folder = Path(req.folder)
    if (folder / PACK_FILE).is_file():
        project = load_pack(folder)
        known = {s.motion.lower() for s in project.stickers}
        extra = [m for m in req.motions if m.lower() not in known]
        if extra:
            project = add_motions(project, extra)
            save_pack(folder, project)
        on_event(Log("info", f"resuming the pack in {folder.name}: {sum(is_made(folder, s) for s in project.stickers)}"
                             f" of {len(project.stickers)} stickers made"))
        return project
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder} exists and is not a pack folder: choose a new or empty folder")
    if not req.motions:
        raise InputError("a new pack needs motions, e.g. --motions \"waving, laughing, crying\"")
    model_dir, model_name, native = resolved_model(req.model, on_event, should_stop)
    base = random.SystemRandom().randrange(2**31) if req.seed is None else int(req.seed)
    source = Path(req.character).expanduser()
    if source.is_file():
        character, prompt = picture_character(source), None
        title = req.title or source.stem.replace("_", " ").replace("-", " ")
    elif source.suffix.lower() in IMAGE_SUFFIXES or source.is_dir():
        raise InputError(f"character picture not found: {req.character} (give an image file, or a prompt)")
    else:
        prompt = " ".join(req.character.split())
        on_event(Log("info", f"drawing the character from the prompt {prompt!r}"))
        character = prompt_character(prompt, str(model_dir), req.size or native, req.steps,
                                     derive_seed(base, "character"), req.device, on_event, should_stop)
        title = req.title or prompt
    project = new_project(title[:128], list(req.motions), author=req.author, character_prompt=prompt,
                          model=model_name, seed=base, frames=req.frames, steps=req.steps)
    make_dir(folder)
    write_bytes_atomic(folder / CHARACTER_FILE, png_bytes(character))
    save_pack(folder, project)
    return project


def picture_character(path: Path) -> np.ndarray:
    """An image or animation file's first frame → (S, S, 4) RGBA framed as training frames are
    (:func:`frame_character`, S ≤ CHARACTER_MAX_SIDE)."""
    from rdtf_engine.formats.loader import load_clip

    return frame_character(load_clip(path, first_frames=1).frames[0])


def frame_character(rgba: np.ndarray, fill: float = CHARACTER_FILL, max_side: int = CHARACTER_MAX_SIDE) -> np.ndarray:
    """(h, w, 4) RGBA → (S, S, 4): the visible pixels (α > 0) centred on a transparent square whose side their
    longer side takes ``fill`` of; never enlarged, S ≤ ``max_side`` (the picture is shrunk to fit)."""
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(rgba, np.uint8), "RGBA")
    box = img.getchannel("A").getbbox()
    if box is None:
        raise InputError("the character picture is fully transparent: nothing to animate")
    img = img.crop(box)
    inner = min(max(img.size), int(max_side * fill))
    if max(img.size) > inner:  # keep the aspect ratio; LANCZOS on straight alpha is what load_frame does too
        img.thumbnail((inner, inner), Image.Resampling.LANCZOS)
    side = min(max_side, max(2, math.ceil(max(img.size) / fill)))
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(img, ((side - img.width) // 2, (side - img.height) // 2))
    return np.asarray(canvas, np.uint8).copy()


def prompt_character(prompt: str, model: str, size: int, steps: int, seed: int, device: str,
                     on_event=null_event, should_stop=never_stop) -> np.ndarray:
    """A character from a prompt: the first frame of a text → video sample, drawn once and then fixed."""
    from rdtf_engine.jobs.api import generate

    # the pack's own sampler (DPM-Solver++ at the pack's steps) for every sticker it holds, the character included
    req = GenerateRequest(prompt=prompt, model=model, frames=8, size=size, steps=steps, seed=seed, device=device,
                          scheduler="dpm")
    req.validate()
    return generate(req, on_event, should_stop).frames[0]


def png_bytes(rgba: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------- making
def _regen_targets(folder: Path, project: PackProject, req: PackRequest) -> tuple[PackProject, list[str]]:
    """Which stickers a regen remakes, with their new seeds saved first (a reroll survives a crash)."""
    if req.ids:
        for sid in req.ids:
            if project.sticker(sid).locked:
                raise InputError(f"sticker {sid!r} is locked: unlock it first (rdtf pack set DIR {sid} --unlock)")
        todo = list(dict.fromkeys(req.ids))
    else:
        todo = [s.id for s in project.stickers if not s.locked]
    rng = random.SystemRandom()
    for sid in todo:
        s = project.sticker(sid)
        seed = int(req.seed) if req.seed is not None else (rng.randrange(MAX_SEED + 1) if req.reroll else s.seed)
        project = project.with_sticker(replace(s, seed=seed))
    save_pack(folder, project)
    return project, todo


def make_stickers(folder: Path, project: PackProject, todo: list[str], req: PackRequest,
                  on_event=null_event, should_stop=never_stop) -> list[str]:
    """Make stickers ``todo`` in pack order, saving pack.json after each; → the ids made."""
    if not todo:
        on_event(Log("info", "every sticker of the pack is made already"))
        return []
    character = inside(folder, project.character)
    if not character.is_file():
        raise InputError(f"the pack's character picture {project.character} is missing")
    model_dir, _name, native = resolved_model(req.model or project.model, on_event, should_stop)
    subject = project.character_prompt or project.title
    made: list[str] = []
    for i, sid in enumerate(todo):
        if should_stop():
            raise Cancelled(f"pack stopped after {len(made)} of {len(todo)} stickers; run it again to make the rest")
        sticker = load_pack(folder).sticker(sid)  # pack.json may have been edited meanwhile (the app's grid)
        on_event(Progress("pack", i, len(todo), f"{sid}: {sticker.motion}"))
        rel = f"{STICKERS_DIR}/{sid}.png"
        gen = GenerateRequest(prompt=sticker_prompt(subject, sticker.motion), model=str(model_dir),
                              frames=project.frames, size=req.size or native, steps=project.steps,
                              seed=sticker.seed, init_image=str(character), out=str(inside(folder, rel)),
                              device=req.device)
        gen.validate()
        _generate_one(gen, on_event, should_stop)
        current = load_pack(folder)
        save_pack(folder, current.with_sticker(replace(current.sticker(sid), file=rel)))
        made.append(sid)
        on_event(Preview(i + 1, [str(inside(folder, rel))], sid))
    on_event(Progress("pack", len(todo), len(todo), "done"))
    return made


def _generate_one(gen: GenerateRequest, on_event, should_stop) -> None:
    from rdtf_engine.jobs.api import generate

    make_dir(Path(str(gen.out)).parent)
    generate(gen, on_event, should_stop)


__all__ = ["frame_character", "is_made", "make_stickers", "picture_character", "prompt_character", "run_pack",
           "start_pack"]
