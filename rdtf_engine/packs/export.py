"""Whole-pack export: every sticker file and pack image made and checked in memory, then one atomic write.

Flow: load ``pack.json`` → the pack rules (count, emoji, title, author, names) → read each sticker (an APNG by
content, inside the pack) → encode it for the pack preset's sticker preset with the single-sticker machinery
(conform, byte search, check of the written bytes) → the pack images from the character picture → the listing
files → one problem list. Only a pack without problems is written: a zip to a temp sibling then renamed, or a
folder built as a temp sibling then swapped in. Entry names are plain (``01.webp``), never local paths.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rdtf_engine.core.atomic import write_bytes_atomic, write_dir_atomic
from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import Cancelled, ExportError, InputError, RdtfError
from rdtf_engine.core.events import Log, Progress
from rdtf_engine.packs.pack_presets import PackImage, PackPreset, get_pack_preset
from rdtf_engine.packs.pack_rules import PackProblem, pack_problems, read_picture, read_sticker
from rdtf_engine.packs.project import PackProject, PackSticker, load_pack
from rdtf_engine.platforms.conform import parse_options
from rdtf_engine.platforms.export import EXTENSIONS, encode_for_preset
from rdtf_engine.platforms.presets import Preset

Emit = Callable[[object], None]
_FILE_SUFFIXES = (".tar", ".gz", ".tgz", ".7z", ".rar", ".png", ".webp", ".webm", ".gif", ".json", ".txt")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip entries carry no local time: the same pack gives the same archive


def rules_error(preset: str, problems: list[PackProblem]) -> ExportError:
    """A plain ExportError (the app and the worker know that type) on one line, with ``problems`` attached."""
    exc = ExportError(f"the pack does not meet {preset} ({len(problems)} problem(s)): "
                      + "; ".join(str(p) for p in problems) + "; nothing was written")
    exc.problems = problems  # type: ignore[attr-defined]
    return exc


@dataclass
class PackExportReport:
    preset: str
    title: str
    ok: bool
    out: str | None = None  # where it was written (None for a check)
    archive: str = ""  # "zip" | "folder"
    bytes: int = 0  # the whole archive, or the folder's files together
    stickers: list[dict] = field(default_factory=list)  # per sticker: file, bytes, duration, size, checks...
    images: list[dict] = field(default_factory=list)  # tray icon / cover / main / tab
    files: list[str] = field(default_factory=list)  # entry names in write order
    problems: list[PackProblem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"preset": self.preset, "title": self.title, "ok": self.ok, "out": self.out, "archive": self.archive,
                "bytes": self.bytes, "stickers": self.stickers, "images": self.images, "files": self.files,
                "problems": [p.to_dict() for p in self.problems], "notes": self.notes}


@dataclass
class _Build:
    report: PackExportReport
    files: list[tuple[str, bytes]]


def check_pack(folder: str | Path, preset: str, progress: Emit | None = None,
               should_stop: Callable[[], bool] | None = None) -> list[PackProblem]:
    """Every problem that stops ``folder`` from exporting as ``preset`` (empty: it would export). Encodes each
    sticker in memory, since "over its byte cap" is only known after the byte search."""
    return build_pack(folder, preset, progress, should_stop).report.problems


def export_pack(folder: str | Path, preset: str, out: str | Path, progress: Emit | None = None,
                should_stop: Callable[[], bool] | None = None) -> PackExportReport:
    """Write the pack for ``preset`` to ``out`` (a .wastickers / .zip file or a folder, as the preset allows).
    Raises ExportError listing every problem (``.problems``), with nothing written."""
    pp = get_pack_preset(preset)
    target, kind = output_kind(pp, Path(out))
    build = build_pack(folder, preset, progress, should_stop)
    rep = build.report
    if rep.problems:
        raise rules_error(pp.name, rep.problems)
    if kind == "zip":
        data = zip_bytes(build.files)
        if pp.max_archive_bytes is not None and len(data) > pp.max_archive_bytes:
            raise rules_error(pp.name, [PackProblem(None, "archive", f"the ZIP is {len(data):,} B, the cap is "
                                                       f"{pp.max_archive_bytes:,} B", "leave stickers out")])
        write_bytes_atomic(target, data)
        rep.bytes = len(data)
    else:
        write_dir_atomic(target, build.files, replaceable=_is_pack_folder)
        rep.bytes = sum(len(b) for _n, b in build.files)
    rep.out, rep.archive = str(target), kind
    (progress or (lambda _e: None))(Progress("pack", 1, 1, f"wrote {target.name} ({rep.bytes:,} B)"))
    return rep


def output_kind(pp: PackPreset, out: Path) -> tuple[Path, str]:
    """(path, "zip" | "folder") for ``out``, checked against the preset's allowed outputs before any work."""
    suffix = out.suffix.lower() if out.suffix.lower() in (".zip", ".wastickers") else ""
    if suffix not in pp.outputs or (not suffix and out.suffix.lower() in _FILE_SUFFIXES):
        allowed = " or ".join(f"NAME{o}" if o else "a folder" for o in pp.outputs)
        raise InputError(f"{pp.name} writes {allowed}, not {out.name or out}")
    if suffix and out.is_dir():
        raise InputError(f"{out.name} is a folder; name the {suffix} file to write")
    return out, "zip" if suffix else "folder"


def build_pack(folder: str | Path, preset: str, progress: Emit | None = None,
               should_stop: Callable[[], bool] | None = None) -> _Build:
    """Everything in memory: the files to write and the report (whose ``problems`` may be non-empty)."""
    emit = progress or (lambda _e: None)
    pp = get_pack_preset(preset)
    project = load_pack(folder)
    rep = PackExportReport(pp.name, project.title, ok=False)
    rep.problems = pack_problems(project, pp)
    stickers = [s for s in project.stickers if s.file]
    left = len(project.stickers) - len(stickers)
    if left:
        rep.notes.append(f"{left} sticker(s) without a file (not generated yet) are left out")
    width = max(2, len(str(len(stickers))))
    ext = EXTENSIONS[pp.sticker_preset.container]
    files: list[tuple[str, bytes]] = []
    entries: list[tuple[PackSticker, str]] = []
    clips: list[Clip] = []
    total = len(stickers) + len(pp.images)
    for i, s in enumerate(stickers):
        name = f"{i + 1:0{width}d}{ext}"
        emit(Progress("pack", i, total, f"sticker {s.id!r} → {name}"))
        clip, problem = read_sticker(folder, s)
        if problem is not None:
            rep.problems.append(problem)
            continue
        clips.append(clip)
        data = _encode(clip, pp.sticker_preset, s.id, rep, should_stop)
        if data is not None:
            files.append((name, data[0]))
            entries.append((s, name))
            rep.stickers.append({"id": s.id, "name": s.title, "file": name, "emoji": list(s.emoji), **data[1]})
    for j, image in enumerate(pp.images):
        emit(Progress("pack", len(stickers) + j, total, f"{image.what} → {image.name}"))
        source = _image_source(folder, project, image, clips, rep)
        data = _encode(source, image.preset, None, rep, should_stop, what=image.what) if source else None
        if data is not None:
            files.append((image.name, data[0]))
            rep.images.append({"name": image.name, "what": image.what, **data[1]})
    if pp.emoji_used < pp.max_emoji and any(len(s.emoji) > pp.emoji_used for s, _n in entries):
        rep.notes.append(f"{pp.title} takes {pp.emoji_used} emoji per sticker: the first one is used")
    files.extend(listing_files(pp, project, entries))
    rep.files = [n for n, _b in files]
    rep.ok = not rep.problems
    if rep.ok:
        emit(Log("info", f"{pp.name}: {len(entries)} sticker(s) meet every rule"))
    return _Build(rep, files)


def _encode(clip: Clip, preset: Preset, sticker: str | None, rep: PackExportReport,
            should_stop: Callable[[], bool] | None, what: str = "") -> tuple[bytes, dict] | None:
    """(bytes, report entry) through the single-sticker export; a file that cannot meet its preset → a problem."""
    try:
        data, r = encode_for_preset(clip, preset, parse_options({}, preset), clip.labels.get("recipe"),
                                    should_stop=should_stop)
    except RdtfError as exc:
        if isinstance(exc, Cancelled):
            raise
        fix = "shorten it or simplify its artwork, then export again"
        rep.problems.append(PackProblem(sticker, "bytes" if "bytes" in str(exc) else "file",
                                        (f"{what}: " if what else "") + str(exc).split(". ")[0],
                                        fix if sticker else "use a simpler character picture"))
        return None
    info = r["info"]
    entry = {"bytes": len(data), "size": list(info.get("size") or ()), "frames": info.get("frames"),
             "duration_ms": info.get("duration_ms"), "checks": r["checks"], "trades": r["trades"]}
    return data, entry


def _image_source(folder: str | Path, project: PackProject, image: PackImage, clips: list[Clip],
                  rep: PackExportReport) -> Clip | None:
    """The picture a pack image is made from: the character picture (or the first sticker, for animated ones)."""
    if image.source == "first_sticker":
        return clips[0] if clips else None
    try:
        return read_picture(folder, project.character)
    except RdtfError as exc:
        if not clips:
            rep.problems.append(PackProblem(None, "character", f"{project.character} cannot be read ({exc})",
                                            "set the pack's character picture"))
            return None
        rep.notes.append(f"{image.what}: {project.character} cannot be read ({type(exc).__name__}); "
                         "made from the first sticker's first frame")
        first = clips[0]
        return Clip(first.frames[:1], [100], first.caption)


def listing_files(pp: PackPreset, project: PackProject, entries: list[tuple[PackSticker, str]]) -> list:
    """The text files each platform's importer or bot reads beside the stickers (title, author, emoji)."""
    def emoji(s: PackSticker) -> list[str]:
        return list(s.emoji[: pp.emoji_used])

    if pp.layout == "whatsapp":  # the .wastickers layout plus WhatsApp's own contents.json schema
        contents = {"sticker_packs": [{
            "identifier": "1", "name": project.title, "publisher": project.author, "tray_image_file": "tray.png",
            "animated_sticker_pack": True,
            "stickers": [{"image_file": n, "emojis": emoji(s)} for s, n in entries]}]}
        return [("title.txt", project.title.encode()), ("author.txt", project.author.encode()),
                ("contents.json", _json(contents))]
    if pp.layout == "line":
        return []  # LINE's ZIP holds only the images; title and text are entered on Creators Market
    listing = {"title": project.title, "author": project.author,
               "stickers": [{"file": n, "name": s.title, "emoji": emoji(s)} for s, n in entries]}
    if pp.images:
        listing["icon" if pp.layout == "telegram" else "cover"] = pp.images[0].name
    files = [("stickers.json", _json(listing))]
    if pp.layout in ("telegram", "signal"):
        lines = "".join(f"{n} {''.join(emoji(s))}\n" for s, n in entries)
        files.append(("emoji.txt", lines.encode()))
    if pp.layout == "signal":
        files += [("title.txt", project.title.encode()), ("author.txt", project.author.encode())]
    return files


def _json(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, indent=1).encode("utf-8")


def zip_bytes(files: list[tuple[str, bytes]]) -> bytes:
    """A zip of plain entry names; images are stored (already compressed), text deflated."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files:
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            text = name.endswith((".txt", ".json"))
            info.compress_type = zipfile.ZIP_DEFLATED if text else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


_OURS = re.compile(r"\d{2,3}\.(webm|webp|png|gif)|icon\.png|cover\.png|tray\.png|main\.png|tab\.png|"
                   r"stickers\.json|contents\.json|emoji\.txt|title\.txt|author\.txt")


def _is_pack_folder(folder: Path) -> bool:
    """An existing folder is replaced only when it holds nothing but files a pack export writes."""
    return all(p.is_file() and _OURS.fullmatch(p.name) for p in folder.iterdir())


def run_pack_request(folder: str, preset: str, out: str, check_only: bool, on_event: Emit,
                     should_stop: Callable[[], bool] | None) -> dict:
    """The worker's entry: a check returns its report (problems listed); an export raises on problems."""
    if check_only:
        return build_pack(folder, preset, on_event, should_stop).report.to_dict()
    return export_pack(folder, preset, out, on_event, should_stop).to_dict()
