"""The one entry point trainers and evaluation use to get clips: :func:`open_source`.

A :class:`ClipSource` is a read-only, deterministic sequence of :class:`~rdtf_engine.core.clip.Clip`:
``source[i]`` always returns the same clip (procedural sources draw everything for clip i from a generator
seeded by (seed, i), so clips can be rendered in any order, by any number of worker processes).

Specs:
- ``builtin:shapes``         procedural coloured shapes; needs no font (tests, CI);
- ``builtin:emoji``          Noto Color Emoji animated by motion programs (training split);
- ``builtin:emoji-holdout``  the held-out emoji and (emoji, motion) pairs (evaluation only);
- ``builtin:emoji-dev``      ≈ 80 never-trained emoji outside the test set (for tuning sampling settings);
- ``builtin:fluent``         artist-animated Fluent Emoji windows (training split; ``rdtf data fetch fluent``);
- ``builtin:fluent-holdout`` the held-out Fluent emoji (the code points builtin:emoji holds out);
- ``builtin:fluent-pack-<theme>`` a pack-evaluation theme (animals, vehicles, sky), never in base training;
- ``builtin:mixed``          builtin:fluent and builtin:emoji, ``mixed_source.FLUENT_SHARE`` of clips Fluent;
- anything else              a folder / zip / imported dataset read by ``rdtf_engine.datasets.dataset.load_dataset``.

For training (``training=True``) a user pack of at most ``pack_windows.MAX_STICKERS`` stickers is read as a
:class:`~rdtf_engine.data.pack_windows.PackWindowsSource` (every frame window of every sticker, jittered, with
the pack style token in its captions); ``pack_windows="on"`` insists (a pack outside 4…200 stickers is a
``PackError``), ``"off"`` reads it clip by clip as before.
"""

from __future__ import annotations

import os

from rdtf_engine.core.errors import InputError
from rdtf_engine.data.clip_source import ClipSource, ListSource, Plan, ProceduralSource, SubsetSource
from rdtf_engine.data.fluent_split import PACK_EVAL_SETS
from rdtf_engine.data.render_pool import RenderPool, render_many

BUILTINS = ("builtin:shapes", "builtin:emoji", "builtin:emoji-holdout", "builtin:emoji-dev", "builtin:fluent",
            "builtin:fluent-holdout", *(f"builtin:fluent-pack-{theme}" for theme in PACK_EVAL_SETS), "builtin:mixed")

__all__ = ["BUILTINS", "ClipSource", "ListSource", "Plan", "ProceduralSource", "RenderPool",
           "SubsetSource", "open_source", "render_many"]


def open_source(spec: str, size: int, *, num_clips: int = 0, seed: int = 0, training: bool = False,
                pack_windows: str = "auto", pack_style: str | None = None) -> ClipSource:
    """Open clips for training or evaluation; frames are ``size`` × ``size``.

    ``num_clips`` = 0 takes the source's default (procedural sources are virtually infinite: shapes 256,
    emoji 20000, emoji-holdout / emoji-dev 1024; fluent sources 8 windows per file; mixed 20000); for a path it
    caps the number of clips read (0 = all).
    """
    if not isinstance(spec, str) or not spec:
        raise InputError("data source must be a non-empty string")
    if spec.startswith("builtin:"):
        if spec == "builtin:shapes":
            from rdtf_engine.data.shapes import ShapesSource

            return ShapesSource(size, num_clips or ShapesSource.default_clips, seed)
        if spec in ("builtin:emoji", "builtin:emoji-holdout", "builtin:emoji-dev"):
            from rdtf_engine.data.emoji import EmojiSource

            holdout, dev = spec.endswith("-holdout"), spec.endswith("-dev")
            n = num_clips or (EmojiSource.default_holdout_clips if holdout or dev else EmojiSource.default_clips)
            return EmojiSource(size, n, seed, holdout=holdout, dev=dev)
        if spec.startswith("builtin:fluent"):
            from rdtf_engine.data.fluent import FluentSource

            split = spec.removeprefix("builtin:fluent").removeprefix("-") or "train"
            if spec in BUILTINS:
                return FluentSource(size, num_clips, seed, split=split)
        if spec == "builtin:mixed":
            from rdtf_engine.data.emoji import EmojiSource
            from rdtf_engine.data.fluent import FluentSource
            from rdtf_engine.data.mixed_source import MixedSource

            n = num_clips or EmojiSource.default_clips
            return MixedSource(FluentSource(size, 0, seed), EmojiSource(size, n, seed), n, seed)
        raise InputError(f"unknown built-in data source {spec!r}; choices: {', '.join(BUILTINS)}")
    if training and pack_windows != "off":
        pack = _open_pack(spec, size, seed, pack_windows, pack_style)
        if pack is not None:
            return pack
    from rdtf_engine.datasets.dataset import load_dataset  # lazily: decoders load only for a folder or zip
    data = load_dataset(spec, size)
    if isinstance(data, ClipSource):
        return data if num_clips <= 0 else ListSource(data, data.name, size, num_clips)
    return ListSource(data, os.path.basename(os.path.normpath(spec)) or spec, size, num_clips)


def _open_pack(spec: str, size: int, seed: int, mode: str, style: str | None) -> ClipSource | None:
    """The pack-windows view of a user pack for training, or None when ``mode`` is "auto" and the folder holds
    more than MAX_STICKERS stickers (a dataset, read clip by clip)."""
    from rdtf_engine.data import pack_windows as pw

    if mode not in ("auto", "on"):
        raise InputError(f"pack_windows must be auto, on or off, got {mode!r}")
    clips = pw.load_pack_clips(spec, size) if mode == "on" else _load_unless_big(spec, size)
    if clips is None:
        return None
    name = os.path.basename(os.path.normpath(spec)) or spec
    return pw.PackWindowsSource(clips, name, size, seed=seed, style=pw.DEFAULT_STYLE if style is None else style)


def _load_unless_big(spec: str, size: int) -> list | None:
    from pathlib import Path

    from rdtf_engine.data import pack_windows as pw
    from rdtf_engine.datasets.pack import pack_entry_count

    if pack_entry_count(Path(spec)) > 2 * pw.MAX_STICKERS:  # clearly a dataset: do not decode it twice
        return None
    try:
        return pw.load_pack_clips(spec, size)
    except pw.PackTooBigError:  # a big folder is a dataset, not a pack: the plain reader takes it
        return None


# ---------------------------------------------------------------------------------------------- bulk render
_WORKER_SOURCE: ClipSource | None = None
