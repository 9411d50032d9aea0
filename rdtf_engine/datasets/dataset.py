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
import io
import json
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from rdtf_engine.core.atomic import make_dir, remove_tree_quietly, write_text_atomic
from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import Cancelled, FormatError, InputError, RdtfError
from rdtf_engine.core.events import Log, Progress
from rdtf_engine.datasets.pack import iter_pack, pack_entry_count
from rdtf_engine.formats.captions import parse_captions_csv
from rdtf_engine.formats.limits import DEFAULT_CAPS, Caps, read_file_capped
from rdtf_engine.formats.loader import decode_bytes, error_summary
from rdtf_engine.formats.timing import fit_canvas

MANIFEST = "manifest.json"
DATASET_FORMAT = "rdtf-dataset"


def import_pack(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    size: int = 256,
    on_event: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_frames: int = 48,
    caps: Caps = DEFAULT_CAPS,
) -> dict:
    """Import a pack into a dataset folder; returns {imported, skipped, out}."""
    emit = on_event or (lambda _e: None)
    stop = should_stop or (lambda: False)
    if not 16 <= int(size) <= 1024:
        raise InputError(f"size must be between 16 and 1024, got {size}")
    if int(max_frames) < 1:
        raise InputError(f"max_frames must be at least 1, got {max_frames}")
    out_dir = _prepare_out(Path(out))
    clips_name = f"clips-{secrets.token_hex(4)}"
    clips_dir = out_dir / clips_name
    imported: list[dict] = []
    skipped: list[dict] = []
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
            clip_id = f"{len(imported):04d}_{_slug(item.caption or name)}"
            imported.append(_write_clip(clips_dir / clip_id, clip_id, name, item, int(size)))
        _commit(out_dir, clips_name, int(size), imported, skipped)
    except BaseException:
        remove_tree_quietly(clips_dir)
        raise
    for old in out_dir.glob("clips-*"):
        if old.name != clips_name and old.is_dir():
            remove_tree_quietly(old)
    emit(Log("info", f"imported {len(imported)} clips, skipped {len(skipped)} into {out_dir}"))
    return {"imported": [c["source"] for c in imported], "clips": imported, "skipped": skipped, "out": str(out_dir)}


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
        writer.writerow([c["id"], c["caption"]])
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
    emit = on_event or (lambda _e: None)
    root = Path(path)
    if not root.exists():
        raise InputError(f"no such dataset, folder or zip: {root}")
    clips = _load_imported(root, size, caps, emit) if is_dataset(root) else _load_raw(root, size, max_frames,
                                                                                      caps, emit)
    if not clips:
        raise InputError(f"{root} has no readable sticker clips")
    return clips


def _load_raw(root: Path, size: int, max_frames: int, caps: Caps, emit: Callable) -> list[Clip]:
    clips = []
    for name, item in iter_pack(root, caps=caps, max_frames=max_frames):
        if isinstance(item, RdtfError):
            emit(Log("warning", f"skipped {name}: {item}"))
            continue
        item.frames = fit_canvas(item.frames, size, size, pad=True)
        clips.append(item)
    return clips


def _load_imported(root: Path, size: int, caps: Caps, emit: Callable) -> list[Clip]:
    try:
        manifest = json.loads(read_file_capped(root / MANIFEST, caps).decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{root / MANIFEST} is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != DATASET_FORMAT:
        raise FormatError(f"{root / MANIFEST} is not an rdtf dataset manifest")
    captions = {}
    if (root / "captions.csv").is_file():
        captions = parse_captions_csv(read_file_capped(root / "captions.csv", caps))
    clips_dir = root / str(manifest.get("clips_dir", "clips"))
    clips = []
    for entry in manifest.get("clips", []):
        try:
            clips.append(_load_entry(clips_dir, entry, size, captions, caps))
        except RdtfError as exc:
            emit(Log("warning", f"skipped {entry.get('id', '?')}: {exc}"))
    return clips


def _load_entry(clips_dir: Path, entry: dict, size: int, captions: dict, caps: Caps) -> Clip:
    clip_id = str(entry.get("id", ""))
    if not re.fullmatch(r"[A-Za-z0-9_-]+", clip_id):
        raise FormatError(f"manifest clip id {clip_id!r} is not a plain name")  # never a path from the manifest
    folder = clips_dir / clip_id
    n = int(entry.get("frames", 0))
    durations = [int(d) for d in entry.get("durations_ms", [])]
    if n < 1 or len(durations) != n:
        raise FormatError(f"clip {clip_id}: manifest frames/durations disagree")
    frames = []
    for j in range(n):
        one = decode_bytes(read_file_capped(folder / f"{j:03d}.png", caps), f"{clip_id}/{j:03d}.png", caps=caps)
        frames.append(one.frames[0])
    if len({f.shape for f in frames}) != 1:
        raise FormatError(f"clip {clip_id}: frames differ in size")
    arr = np.stack(frames)
    if arr.shape[1:3] != (size, size):
        arr = fit_canvas(arr, size, size, pad=True)
    caption = captions.get(clip_id, entry.get("caption", "")) or entry.get("caption", "")
    labels = dict(entry.get("labels") or {}, id=clip_id, source=entry.get("source", ""),
                  original_frames=entry.get("original_frames", n))
    return Clip(arr, durations, caption, labels)
