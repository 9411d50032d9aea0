"""The pack-level rules a pack preset adds to its sticker files, checked on the project before any encoding.

Every broken rule becomes one :class:`PackProblem` naming the sticker and the fix, so the creator sees the whole
list at once ("sticker 'waving': no emoji — set 1-3 emoji"), never just the first failure. Sticker files are
read as untrusted input: the path must stay inside the pack (no symlink out), the bytes must be an animated
PNG by content (a GIF or text named .png is refused), and the decode runs under the usual caps.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import RdtfError
from rdtf_engine.formats.limits import DEFAULT_CAPS, read_file_capped
from rdtf_engine.formats.loader import load_clip
from rdtf_engine.formats.recipe import normalise_recipe, parse_recipe
from rdtf_engine.formats.sniff import detect_format, walk
from rdtf_engine.packs.pack_presets import PackPreset
from rdtf_engine.packs.project import PackProject, PackSticker, inside

MIN_SIDE = 32  # a sticker file smaller than this is not a sticker the platforms' 96-512 px canvases can use


@dataclass(frozen=True)
class PackProblem:
    """One broken rule: where (a sticker id, or None for the pack), which rule, what is wrong, how to fix it."""

    sticker: str | None
    rule: str
    message: str
    fix: str

    def __str__(self) -> str:
        where = "pack" if self.sticker is None else f"sticker {self.sticker!r}"
        return f"{where}: {self.message} — {self.fix}"

    def to_dict(self) -> dict:
        return {"sticker": self.sticker, "rule": self.rule, "message": self.message, "fix": self.fix,
                "text": str(self)}


def pack_problems(project: PackProject, pp: PackPreset) -> list[PackProblem]:
    """Count, title, author, emoji and name rules of ``pp`` on the stickers that have a file, in pack order."""
    stickers = [s for s in project.stickers if s.file]
    out: list[PackProblem] = []
    n = len(stickers)
    if pp.counts and n not in pp.counts:
        out.append(PackProblem(None, "count", f"{n} generated sticker(s); {pp.title} takes exactly "
                               f"{pp.count_text()}", _count_fix(n, pp)))
    elif not pp.min_stickers <= n <= pp.max_stickers:
        out.append(PackProblem(None, "count", f"{n} generated sticker(s); {pp.title} takes {pp.count_text()}",
                               _count_fix(n, pp)))
    if len(project.title) > pp.title_max:
        out.append(PackProblem(None, "title", f"the title is {len(project.title)} characters, the cap is "
                               f"{pp.title_max}", f"shorten the title to {pp.title_max} characters or fewer"))
    if pp.author_required and not project.author:
        out.append(PackProblem(None, "author", f"no author; {pp.title} shows one", "set the pack's author"))
    for s in stickers:
        out.extend(_sticker_problems(s, pp))
    return out


def _count_fix(n: int, pp: PackPreset) -> str:
    if pp.counts:
        up = [c for c in pp.counts if c > n]
        return f"generate {up[0] - n} more" if up else f"leave {n - pp.counts[-1]} out"
    if n < pp.min_stickers:
        return f"generate {pp.min_stickers - n} more sticker(s)"
    return f"leave {n - pp.max_stickers} sticker(s) out (or split the pack)"


def _sticker_problems(s: PackSticker, pp: PackPreset) -> list[PackProblem]:
    out = []
    if len(s.emoji) < pp.min_emoji:
        out.append(PackProblem(s.id, "emoji", "no emoji", f"set {pp.min_emoji}-{pp.max_emoji} emoji"))
    elif len(s.emoji) > pp.max_emoji:
        out.append(PackProblem(s.id, "emoji", f"{len(s.emoji)} emoji", f"keep at most {pp.max_emoji}"))
    if pp.name_len is not None:
        lo, hi = pp.name_len
        if not lo <= len(s.title) <= hi:
            out.append(PackProblem(s.id, "name", f"the name {s.title!r} is {len(s.title)} characters",
                                   f"rename it to {lo}-{hi} characters"))
    return out


def read_sticker(folder: str | Path, s: PackSticker) -> tuple[Clip | None, PackProblem | None]:
    """The sticker's decoded animation, or the problem that stops it from being read."""
    regen = "regenerate the sticker (or remove its file from the pack)"
    try:
        path = inside(folder, s.file or "")
        if path.is_symlink():
            return None, PackProblem(s.id, "file", f"{s.file} is a link", "keep sticker files as plain files")
        if not path.exists():
            return None, PackProblem(s.id, "file", f"{s.file} is missing", regen)
        data = read_file_capped(path, DEFAULT_CAPS)
        fmt = detect_format(data)
        info = walk(data, fmt) if fmt in ("png", "apng") else None
        if info is None or info.format != "apng":
            got = info.format if info is not None else fmt
            return None, PackProblem(s.id, "file", f"{s.file} holds {got.upper()}, not an animated PNG", regen)
        clip = load_clip(data, name_hint=s.id)
        # the sticker's recipe (prompt, seed, model) travels into the exported file, local paths left out
        clip.labels["recipe"] = normalise_recipe(parse_recipe(dict(info.texts)))
    except RdtfError as exc:
        return None, PackProblem(s.id, "file", f"{s.file} cannot be read ({exc})", regen)
    h, w = clip.frames.shape[1:3]
    if min(w, h) < MIN_SIDE:
        return None, PackProblem(s.id, "size", f"{s.file} is {w}x{h} px, under {MIN_SIDE} px",
                                 "regenerate it at the model's size")
    return clip, None


def read_picture(folder: str | Path, rel: str) -> Clip:
    """The pack's character picture (any still or animated image; frame 1 is used). Raises typed errors."""
    path = inside(folder, rel)
    data = read_file_capped(path, DEFAULT_CAPS)
    clip = load_clip(data, name_hint=Path(rel).stem, first_frames=1)
    return Clip(clip.frames[:1], [100], clip.caption)
