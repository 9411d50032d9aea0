"""Training datasets from user packs: ``import_pack`` writes one, ``load_dataset`` reads it (or a raw pack).

Layout of an imported dataset folder (everything stays inside it)::

    manifest.json        {"format": "rdtf-dataset", "version": 1, "size", "clips_dir", "clips": [...], "skipped"}
    captions.csv         id,caption   — the user edits this; it wins over the manifest's captions
    clips-<token>/<id>/000.png ...   size x size RGBA, aspect kept, transparent padding

The manifest is written last and names its clips folder, so a crash or cancel mid-import leaves the previous
dataset intact (an orphaned ``clips-*`` folder is removed by the next import).
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from rdtf_engine.core.atomic import make_dir, remove_tree_quietly, write_text_atomic
from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import Cancelled, FormatError, InputError, LimitError, RdtfError, StorageError
from rdtf_engine.core.events import Log, Progress
from rdtf_engine.datasets.pack import iter_pack, pack_entry_count
from rdtf_engine.formats.captions import parse_captions_csv
from rdtf_engine.formats.limits import DEFAULT_CAPS, Caps, read_file_capped
from rdtf_engine.formats.loader import decode_bytes, error_summary
from rdtf_engine.formats.timing import fit_canvas

MANIFEST = "manifest.json"
DATASET_FORMAT = "rdtf-dataset"
# A whole pack's decoding work is bounded too, not only each file's (formats/limits.py): 2,000 at-cap entries
# at ~4.5 s each would be hours. 20 minutes or 16 Gpx of decoded frames (frames x canvas pixels) per pack.
PACK_TIME_BUDGET_S = 20 * 60.0
PACK_PIXEL_BUDGET = 1 << 34
MAX_MANIFEST_CLIPS = 100_000
MAX_CLIP_FRAMES = 1000
# Spreadsheet apps run a cell that starts with one of these as a formula (`=cmd|' /C calc'!A0`); bidi controls
# make a caption display differently from what it says.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


class PackBudget:
    """Total decoding work over one pack: wall time and decoded pixels; LimitError when either runs out."""

    def __init__(self, seconds: float = PACK_TIME_BUDGET_S, pixels: int = PACK_PIXEL_BUDGET) -> None:
        self.seconds, self.pixels = float(seconds), int(pixels)
        self._start, self._used = time.monotonic(), 0

    def charge(self, clip: Clip) -> None:
        f, h, w = clip.frames.shape[:3]
        self._used += int(clip.labels.get("original_frames", f) or f) * h * w
        if self._used > self.pixels:
            raise LimitError(f"the pack decodes to over {self.pixels / 1e9:.0f} Gpx of frames in total; "
                             "split it into smaller packs")
        if time.monotonic() - self._start > self.seconds:
            raise LimitError(f"the pack took longer than the {self.seconds / 60:g}-minute budget to decode; "
                             "split it into smaller packs")


def safe_cell(text: str) -> str:
    """A caption as it may go into a CSV cell: bidi controls stripped, a formula starter made literal."""
    text = _BIDI.sub("", str(text))
    return "'" + text if text.startswith(_FORMULA_START) else text


def import_pack(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    size: int = 256,
    on_event: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_frames: int = 48,
    caps: Caps = DEFAULT_CAPS,
    budget: PackBudget | None = None,
) -> dict:
    """Import a pack into a dataset folder; returns {imported, skipped, out}. A pack with no usable sticker is
    an error (FormatError naming why the first ones were skipped), never an empty dataset."""
    emit = on_event or (lambda _e: None)
    stop = should_stop or (lambda: False)
    if not 16 <= int(size) <= 1024:
        raise InputError(f"size must be between 16 and 1024, got {size}")
    if int(max_frames) < 1:
        raise InputError(f"max_frames must be at least 1, got {max_frames}")
    if not Path(path).exists():
        raise InputError(f"no such file or folder: {path}")
    created = not Path(out).exists()
    out_dir = _prepare_out(Path(out))
    clips_name = f"clips-{secrets.token_hex(4)}"
    clips_dir = out_dir / clips_name
    imported: list[dict] = []
    skipped: list[dict] = []
    budget = budget or PackBudget()
    try:
        make_dir(clips_dir)
        total = pack_entry_count(Path(path))
        for i, (name, item) in enumerate(iter_pack(path, caps=caps, max_frames=max_frames)):
            if stop():
                raise Cancelled("import stopped by the user; the previous dataset (if any) is unchanged")
            emit(Progress("import", i + 1, max(total, i + 1), name))
            if isinstance(item, RdtfError):
                skipped.append({"name": name, **error_summary(item)})
                emit(Log("warning", f"skipped {name}: {item}"))
                continue
            budget.charge(item)
            clip_id = f"{len(imported):04d}_{_slug(item.caption or name)}"
            imported.append(_write_clip(clips_dir / clip_id, clip_id, name, item, int(size)))
        if not imported:
            raise _nothing_imported(path, skipped)
        _commit(out_dir, clips_name, int(size), imported, skipped)
    except BaseException as exc:
        remove_tree_quietly(clips_dir)
        if created:
            remove_tree_quietly(out_dir)  # a failed first import leaves no empty dataset folder behind
        if isinstance(exc, OSError):
            raise _storage_error(out_dir, exc) from None
        raise
    for old in out_dir.glob("clips-*"):
        if old.name != clips_name and old.is_dir():
            remove_tree_quietly(old)
    emit(Log("info", f"imported {len(imported)} clips, skipped {len(skipped)} into {out_dir}"))
    return {"imported": [c["source"] for c in imported], "clips": imported, "skipped": skipped, "out": str(out_dir)}


def _nothing_imported(path, skipped: list[dict]) -> RdtfError:
    if not skipped:
        return InputError(f"{path} holds no sticker files (GIF, APNG, WebP, WebM, MP4 or TGS)")
    first = "; ".join(f"{s['name']}: {s['message']}" for s in skipped[:3])
    more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
    return FormatError(f"no sticker in {path} could be imported: {first}{more}")


def _storage_error(out_dir: Path, exc: OSError) -> StorageError:
    why = "the disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc))
    return StorageError(f"cannot write the dataset {out_dir}: {why}; the previous dataset (if any) is unchanged")


def _prepare_out(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    if out.is_dir():
        leftovers = [p.name for p in out.iterdir() if p.name not in (MANIFEST, "captions.csv")
                     and not p.name.startswith(("clips-", ".captions.csv.", ".manifest.json."))]
        if leftovers and not (out / MANIFEST).is_file():
            raise InputError(f"{out} is not empty and is not an imported dataset; choose a new folder")
    return make_dir(out)


def _write_clip(folder: Path, clip_id: str, source: str, clip: Clip, size: int) -> dict:
    make_dir(folder)
    frames = fit_canvas(clip.frames, size, size, pad=True)
    for j, frame in enumerate(frames):
        Image.fromarray(frame, "RGBA").save(folder / f"{j:03d}.png", compress_level=3)
    labels = {k: v for k, v in clip.labels.items() if k not in ("raw_durations_ms", "source")}
    return {
        "id": clip_id,
        "source": source,
        "caption": clip.caption,
        "frames": int(frames.shape[0]),
        "original_frames": int(clip.labels.get("original_frames", clip.num_frames)),
        "durations_ms": [int(d) for d in clip.durations_ms],
        "format": clip.labels.get("format", ""),
        "labels": json.loads(json.dumps(labels, default=str)),
    }


def _commit(out_dir: Path, clips_name: str, size: int, imported: list[dict], skipped: list[dict]) -> None:
    manifest = {"format": DATASET_FORMAT, "version": 1, "size": size, "clips_dir": clips_name,
                "clips": imported, "skipped": skipped}
    write_text_atomic(out_dir / MANIFEST, json.dumps(manifest, indent=1, ensure_ascii=False))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "caption"])
    for c in imported:
        writer.writerow([c["id"], safe_cell(c["caption"])])
    write_text_atomic(out_dir / "captions.csv", buf.getvalue())


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:40] or "clip"


def is_dataset(path: Path) -> bool:
    return path.is_dir() and (path / MANIFEST).is_file()


def load_dataset(
    path: str | os.PathLike[str],
    size: int,
    *,
    max_frames: int = 48,
    caps: Caps = DEFAULT_CAPS,
    on_event: Callable | None = None,
) -> list[Clip]:
    """Clips at size x size for training: from an imported dataset folder, or a raw folder/zip imported in
    memory. Unreadable clips are skipped (reported through ``on_event``); no readable clip is an error."""
    reasons: list[str] = []  # why clips were skipped: the error names the first one (e.g. a bad manifest field)

    def emit(event) -> None:
        if isinstance(event, Log) and event.level == "warning":
            reasons.append(event.message)
        if on_event is not None:
            on_event(event)

    root = Path(path)
    if not root.exists():
        raise InputError(f"no such dataset, folder or zip: {root}")
    clips = _load_imported(root, size, caps, emit) if is_dataset(root) else _load_raw(root, size, max_frames,
                                                                                      caps, emit)
    if not clips:
        raise InputError(f"{root} has no readable sticker clips" + (f" ({reasons[0]})" if reasons else ""))
    return clips


def _load_raw(root: Path, size: int, max_frames: int, caps: Caps, emit: Callable) -> list[Clip]:
    clips = []
    budget = PackBudget()
    for name, item in iter_pack(root, caps=caps, max_frames=max_frames):
        if isinstance(item, RdtfError):
            emit(Log("warning", f"skipped {name}: {item}"))
            continue
        budget.charge(item)
        item.frames = fit_canvas(item.frames, size, size, pad=True)
        clips.append(item)
    return clips


def _load_imported(root: Path, size: int, caps: Caps, emit: Callable) -> list[Clip]:
    try:
        doc = json.loads(read_file_capped(root / MANIFEST, caps).decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FormatError(f"{root / MANIFEST} is not valid JSON: {exc}") from None
    manifest = validate_manifest(doc, root / MANIFEST)
    captions = {}
    if (root / "captions.csv").is_file():
        captions = parse_captions_csv(read_file_capped(root / "captions.csv", caps))
    clips_dir = root / manifest["clips_dir"]
    clips = []
    for i, raw in enumerate(manifest["clips"]):
        try:
            clips.append(_load_entry(clips_dir, validate_entry(raw, i), size, captions, caps))
        except RdtfError as exc:
            emit(Log("warning", f"skipped clip {i}: {exc}"))
    return clips


def validate_manifest(doc: object, where: Path | str = MANIFEST) -> dict:
    """The manifest's top level → {"clips_dir": plain folder name, "clips": list}; FormatError naming the field.

    A dataset folder may come from anyone (a shared zip), so nothing in it is trusted: entries are checked one
    by one by ``validate_entry`` when loaded, and a bad one is skipped with a warning."""
    if not isinstance(doc, dict) or doc.get("format") != DATASET_FORMAT:
        raise FormatError(f"{where} is not an rdtf dataset manifest")
    clips_dir = doc.get("clips_dir", "clips")
    if not isinstance(clips_dir, str) or not re.fullmatch(r"clips(-[0-9a-f]{1,32})?", clips_dir):
        raise FormatError(f"{where}: field 'clips_dir' must be a plain clips-<hex> folder name")
    clips = doc.get("clips", [])
    if not isinstance(clips, list):
        raise FormatError(f"{where}: field 'clips' must be a list, got {type(clips).__name__}")
    if len(clips) > MAX_MANIFEST_CLIPS:
        raise LimitError(f"{where}: {len(clips):,} clips; the cap is {MAX_MANIFEST_CLIPS:,}")
    return {"clips_dir": clips_dir, "clips": clips}


def validate_entry(entry: object, index: int) -> dict:
    """One manifest clip → typed, bounded values; FormatError naming the field otherwise."""
    if not isinstance(entry, dict):
        raise FormatError(f"manifest clips[{index}] must be an object, got {type(entry).__name__}")
    clip_id = entry.get("id", "")
    if not isinstance(clip_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,80}", clip_id):
        raise FormatError(f"manifest clips[{index}].id {clip_id!r} is not a plain name")  # never a path
    n = entry.get("frames", 0)
    if type(n) is not int or not 1 <= n <= MAX_CLIP_FRAMES:
        raise FormatError(f"manifest clips[{index}].frames must be a whole number 1-{MAX_CLIP_FRAMES}, got {n!r}")
    durations = entry.get("durations_ms", [])
    if (not isinstance(durations, list) or len(durations) != n
            or not all(type(d) is int and 0 <= d <= 600_000 for d in durations)):
        raise FormatError(f"manifest clips[{index}].durations_ms must be {n} whole numbers of ms (0-600000)")
    texts = {k: entry.get(k, "") for k in ("caption", "source")}
    for key, value in texts.items():
        if not isinstance(value, str) or len(value) > 10_000:
            raise FormatError(f"manifest clips[{index}].{key} must be text (at most 10,000 characters)")
    labels = entry.get("labels") or {}
    if not isinstance(labels, dict):
        raise FormatError(f"manifest clips[{index}].labels must be an object")
    original = entry.get("original_frames", n)
    if type(original) is not int or original < 0:
        original = n
    return {"id": clip_id, "frames": n, "durations_ms": durations, "labels": labels, "original_frames": original,
            **texts}


def _load_entry(clips_dir: Path, entry: dict, size: int, captions: dict, caps: Caps) -> Clip:
    clip_id, n, durations = entry["id"], entry["frames"], entry["durations_ms"]
    folder = clips_dir / clip_id
    frames = []
    for j in range(n):
        one = decode_bytes(read_file_capped(folder / f"{j:03d}.png", caps), f"{clip_id}/{j:03d}.png", caps=caps)
        frames.append(one.frames[0])
    if len({f.shape for f in frames}) != 1:
        raise FormatError(f"clip {clip_id}: frames differ in size")
    arr = np.stack(frames)
    if arr.shape[1:3] != (size, size):
        arr = fit_canvas(arr, size, size, pad=True)
    caption = _from_cell(captions.get(clip_id, "")) or entry["caption"]
    labels = dict(entry["labels"], id=clip_id, source=entry["source"], original_frames=entry["original_frames"])
    return Clip(arr, durations, caption, labels)


def _from_cell(text: str) -> str:
    """Undo ``safe_cell``'s quote in front of a formula starter: the model should read the caption as written."""
    text = str(text or "")
    return text[1:] if text.startswith("'") and text[1:].startswith(_FORMULA_START) else text
