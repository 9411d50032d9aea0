"""Edits of a pack project that need no model: create, add, remove, reorder, rename, set emoji, lock.

Each takes a :class:`PackProject` and returns the edited one (projects are immutable); the caller saves it
(``save_pack``). Bad edits raise ``InputError`` naming what is wrong, so the CLI and the app say the same.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from rdtf_engine.core.config import MAX_SEED
from rdtf_engine.core.errors import InputError
from rdtf_engine.packs.moods import derive_seed, guess_emoji
from rdtf_engine.packs.project import MAX_EMOJI, MAX_STICKERS, PackProject, PackSticker, is_emoji, sticker_id


def new_project(title: str, motions: list[str], *, author: str = "", character_prompt: str | None = None,
                model: str = "default", seed: int | None = None, frames: int = 8, steps: int = 20) -> PackProject:
    """A pack with one (not yet generated) sticker per motion; ``seed`` None: a random base seed."""
    base = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    if not 0 <= base <= MAX_SEED:
        raise InputError(f"seed must be a whole number between 0 and {MAX_SEED}, got {seed}")
    project = PackProject(title=title.strip() or "My pack", author=author.strip(), character_prompt=character_prompt,
                          model=model, seed=base, frames=int(frames), steps=int(steps))
    return add_motions(project, motions)


def add_motions(project: PackProject, motions: list[str]) -> PackProject:
    """Append one sticker per motion (id from the motion, seed from the id, emoji guessed from the words)."""
    if not motions:
        raise InputError("no motions given: list them separated by commas, e.g. \"waving, laughing\"")
    if len(project.stickers) + len(motions) > MAX_STICKERS:
        raise InputError(f"a pack holds at most {MAX_STICKERS} stickers; it has {len(project.stickers)}")
    stickers = list(project.stickers)
    for motion in motions:
        sid = sticker_id(motion, {s.id for s in stickers})
        stickers.append(PackSticker(id=sid, motion=motion, emoji=guess_emoji(motion),
                                    seed=derive_seed(project.seed, sid)))
    return replace(project, stickers=tuple(stickers))


def remove_sticker(project: PackProject, sid: str, folder: str | Path | None = None) -> PackProject:
    """The project without sticker ``sid``; with ``folder``, its file is deleted too."""
    gone = project.sticker(sid)
    if folder is not None and gone.file:
        from rdtf_engine.packs.project import inside

        inside(folder, gone.file).unlink(missing_ok=True)
    return replace(project, stickers=tuple(s for s in project.stickers if s.id != sid))


def move_sticker(project: PackProject, sid: str, to: int) -> PackProject:
    """Move sticker ``sid`` to position ``to`` (1-based, as the CLI and the grid count)."""
    project.sticker(sid)
    n = len(project.stickers)
    if not 1 <= int(to) <= n:
        raise InputError(f"position must be between 1 and {n}, got {to}")
    rest = [s for s in project.stickers if s.id != sid]
    rest.insert(int(to) - 1, project.sticker(sid))
    return replace(project, stickers=tuple(rest))


def set_sticker(project: PackProject, sid: str, *, name: str | None = None, emoji: str | None = None,
                locked: bool | None = None, motion: str | None = None, seed: int | None = None) -> PackProject:
    """Change a sticker's display name, emoji (a string of 0-3 emoji, e.g. "👋🐱"), lock, motion or seed.
    A new motion or seed makes the sticker's file stale: it is marked not generated."""
    s = project.sticker(sid)
    if name is not None:
        s = replace(s, name=" ".join(name.split())[:64])
    if emoji is not None:
        s = replace(s, emoji=split_emoji(emoji))
    if locked is not None:
        s = replace(s, locked=bool(locked))
    if motion is not None and " ".join(motion.split()) != s.motion:
        if not motion.strip():
            raise InputError("a sticker's motion must not be empty")
        s = replace(s, motion=" ".join(motion.split()), file=None)
    if seed is not None and int(seed) != s.seed:
        if not 0 <= int(seed) <= MAX_SEED:
            raise InputError(f"seed must be a whole number between 0 and {MAX_SEED}, got {seed}")
        s = replace(s, seed=int(seed), file=None)
    return project.with_sticker(s)


def split_emoji(text: str) -> tuple[str, ...]:
    """"👋🐱" or "👋 🐱" → ("👋", "🐱"): grapheme-ish split (joiners, variation selectors, skin tones and
    keycaps stay with their emoji); at most ``MAX_EMOJI``; anything else is an InputError."""
    out: list[str] = []
    joined = False
    for ch in "".join(text.split()):
        glue = ch in "\u200d\ufe0f\u20e3" or 0x1F3FB <= ord(ch) <= 0x1F3FF or 0xE0020 <= ord(ch) <= 0xE007F
        if out and (glue or joined or (0x1F1E6 <= ord(ch) <= 0x1F1FF and len(out[-1]) == 1
                                       and 0x1F1E6 <= ord(out[-1]) <= 0x1F1FF)):
            out[-1] += ch
        else:
            out.append(ch)
        joined = ch == "\u200d"
    bad = [e for e in out if not is_emoji(e)]
    if bad:
        raise InputError(f"{bad[0]!r} is not an emoji")
    if len(out) > MAX_EMOJI:
        raise InputError(f"at most {MAX_EMOJI} emoji per sticker, got {len(out)}")
    return tuple(out)


__all__ = ["add_motions", "move_sticker", "new_project", "remove_sticker", "set_sticker", "split_emoji"]
