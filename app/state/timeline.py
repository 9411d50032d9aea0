"""Timeline state: the frames of one sticker, the looping player, and undoable edits.

Every edit replaces the whole frame list through one ``QUndoCommand`` kind holding "before" and "after": a
sticker has at most 24 frames, so snapshots are tiny and undo can never drift from redo. Regenerating the
unlocked frames and inserting an in-between are edits too, so they undo like any other.
"""

from __future__ import annotations

import random
from typing import Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QUndoCommand, QUndoStack

from app.jobs import Engine, JobHandle
from app.logs import human_message
from app.state.base import ViewModel, qprop
from app.state.sticker import MAX_FRAMES, Frame, GalleryStore, Sticker, regenerate_request
from rdtf_engine.core.results import GeneratedSticker

DURATION_MERGE_ID = 1


class _Edit(QUndoCommand):
    def __init__(self, vm: TimelineViewModel, before: list[Frame], after: list[Frame], text: str,
                 merge_key: tuple | None = None) -> None:
        super().__init__(text)
        self.vm, self.before, self.after, self.merge_key = vm, before, after, merge_key

    def redo(self) -> None:
        self.vm._apply(self.after)

    def undo(self) -> None:
        self.vm._apply(self.before)

    def id(self) -> int:
        return DURATION_MERGE_ID if self.merge_key else -1

    def mergeWith(self, other: QUndoCommand) -> bool:
        # Dragging a duration spin box is one undo step, not one per tick.
        if isinstance(other, _Edit) and other.merge_key == self.merge_key:
            self.after = other.after
            return True
        return False


class TimelineViewModel(ViewModel):
    frames_changed = Signal(object)
    current_changed = Signal(int)
    selection_changed = Signal(object)
    playing_changed = Signal(bool)
    speed_changed = Signal(float)
    loop_changed = Signal(bool)
    onion_changed = Signal(bool)
    busy_changed = Signal(bool)
    progress_changed = Signal(float)
    sticker_changed = Signal(object)

    frames = qprop(list, "frames", frames_changed)
    current = qprop(int, "current", current_changed)
    selection = qprop(list, "selection", selection_changed)
    playing = qprop(bool, "playing", playing_changed)
    speed = qprop(float, "speed", speed_changed)
    loop = qprop(bool, "loop", loop_changed)
    onion = qprop(bool, "onion", onion_changed)
    busy = qprop(bool, "busy", busy_changed)
    progress = qprop(float, "progress", progress_changed)

    def __init__(self, engine: Engine, store: GalleryStore, settings: Any = None) -> None:
        super().__init__()
        self.engine, self.store, self.settings = engine, store, settings
        get = settings.get if settings is not None else (lambda k: None)
        self.sticker: Sticker | None = None
        self._frames: list[Frame] = []
        self._current, self._selection = 0, []
        self._playing, self._busy, self._progress = False, False, 0.0
        self._speed = get("timeline/speed") or 1.0
        self._loop = True if get("timeline/loop") is None else get("timeline/loop")
        self._onion = bool(get("timeline/onion"))
        self.undo_stack = QUndoStack(self)
        self.job: JobHandle | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._tick)

    # ---- loading and saving --------------------------------------------------------------------------
    def load(self, sticker: Sticker) -> None:
        self.sticker = sticker
        self.undo_stack.clear()
        self._apply(list(sticker.frames), save=False)
        self._set("current", 0)
        self._set("selection", [])
        self.sticker_changed.emit(sticker)
        self.play(True)

    def _apply(self, frames: list[Frame], save: bool = True) -> None:
        self._set("frames", list(frames))
        if self._current >= len(frames):
            self._set("current", max(0, len(frames) - 1))
        self._set("selection", [i for i in self._selection if i < len(frames)])
        if save and self.sticker is not None:
            self.sticker.frames = list(frames)
            self.store.save(self.sticker)  # autosave: the gallery always holds the latest edit

    def _edit(self, after: list[Frame], text: str, merge_key: tuple | None = None) -> None:
        self.undo_stack.push(_Edit(self, list(self._frames), after, text, merge_key))

    # ---- selection and playback ----------------------------------------------------------------------
    def select(self, indices: list[int]) -> None:
        self._set("selection", sorted({i for i in indices if 0 <= i < len(self._frames)}))
        if self._selection:
            self._set("current", self._selection[-1])

    def targets(self) -> list[int]:
        """The frames an action applies to: the selection, else the current frame."""
        if self._selection:
            return list(self._selection)
        return [self._current] if self._frames else []

    def set_current(self, index: int) -> None:
        if self._frames:
            self._set("current", index % len(self._frames))

    def step(self, delta: int) -> None:
        self.play(False)
        self.set_current(self._current + delta)

    def play(self, on: bool | None = None) -> None:
        on = (not self._playing) if on is None else on
        self._set("playing", bool(on and self._frames))
        if self._playing:
            self._schedule()
        else:
            self._timer.stop()

    def set_option(self, name: str, value: Any) -> None:
        if name not in ("speed", "loop", "onion"):
            raise KeyError(name)
        self._set(name, value)
        if self.settings is not None:
            self.settings.set(f"timeline/{name}", value)

    def _schedule(self) -> None:
        if self._frames:
            duration = self._frames[self._current].duration_ms / max(self._speed, 0.05)
            self._timer.start(max(10, int(duration)))

    def _tick(self) -> None:
        if not self._playing or not self._frames:
            return
        nxt = self._current + 1
        if nxt >= len(self._frames):
            if not self._loop:
                self.play(False)
                return
            nxt = 0
        self._set("current", nxt)
        self._schedule()

    # ---- edits ----------------------------------------------------------------------------------------
    def toggle_lock(self, indices: list[int] | None = None) -> None:
        idx = set(indices if indices is not None else self.targets())
        lock = not all(self._frames[i].locked for i in idx)
        self._edit([f.with_(locked=lock) if i in idx else f for i, f in enumerate(self._frames)],
                   "Lock frames" if lock else "Unlock frames")

    def delete(self, indices: list[int] | None = None) -> None:
        idx = set(indices if indices is not None else self.targets())
        after = [f for i, f in enumerate(self._frames) if i not in idx]
        if not after:
            self.warn("A sticker needs at least one frame.")
            return
        self._set("selection", [])
        self._edit(after, "Delete frames")

    def duplicate(self, indices: list[int] | None = None) -> None:
        idx = set(indices if indices is not None else self.targets())
        if len(self._frames) + len(idx) > MAX_FRAMES:
            self.warn(f"A sticker can have at most {MAX_FRAMES} frames.")
            return
        after: list[Frame] = []
        for i, f in enumerate(self._frames):
            after += [f, f] if i in idx else [f]
        self._edit(after, "Duplicate frames")

    def move(self, delta: int, indices: list[int] | None = None) -> None:
        """Shift the chosen frames left (-1) or right (+1) as a block; keyboard Ctrl+Left/Right."""
        idx = sorted(indices if indices is not None else self.targets())
        if not idx or idx[0] + delta < 0 or idx[-1] + delta >= len(self._frames):
            return
        order = list(range(len(self._frames)))
        for i in (idx if delta < 0 else reversed(idx)):
            order[i], order[i + delta] = order[i + delta], order[i]
        self._edit([self._frames[i] for i in order], "Move frames")
        self._set("selection", [i + delta for i in idx])
        self._set("current", idx[-1] + delta)

    def move_to(self, src: int, dst: int) -> None:
        """Drag and drop in the frame strip: frame ``src`` ends up at position ``dst``."""
        if src == dst or not (0 <= src < len(self._frames)) or not (0 <= dst < len(self._frames)):
            return
        after = list(self._frames)
        after.insert(dst, after.pop(src))
        self._edit(after, "Move frame")
        self._set("selection", [dst])

    def set_duration(self, ms: int, indices: list[int] | None = None) -> None:
        idx = tuple(sorted(indices if indices is not None else self.targets()))
        ms = max(10, min(10_000, int(ms)))
        if all(self._frames[i].duration_ms == ms for i in idx):
            return
        self._edit([f.with_(duration_ms=ms) if i in idx else f for i, f in enumerate(self._frames)],
                   "Change duration", merge_key=("duration", idx))

    # ---- edits the engine makes ------------------------------------------------------------------------
    def _generate(self, on_done: Any, label: str, **overrides: Any) -> None:
        """Run the sticker's own request (every recipe field) with ``overrides``; ``on_done(frame paths)``."""
        if self.sticker is None or self._busy:
            return
        entry = self.store.root / self.sticker.id
        n = 1
        while (entry / f"gen-{n}").exists():  # each generation keeps its own frames: undo needs the old ones
            n += 1
        req = regenerate_request(self.sticker, entry / f"gen-{n}", **overrides)
        self._set("busy", True)
        self._set("progress", 0.0)
        self.job = self.engine.submit(req)
        self.job.progress.connect(lambda _s, i, n, _m: self._set("progress", i / n if n else 0.0))
        self.job.finished.connect(lambda res: self._gen_done(GeneratedSticker.from_dict(res), on_done))
        self.job.failed.connect(self._gen_failed)
        self.info(label)

    def _gen_done(self, result: GeneratedSticker, on_done: Any) -> None:
        self.job = None
        self._set("busy", False)
        on_done(list(result.frames))

    def _gen_failed(self, error_type: str, message: str) -> None:
        self.job = None
        self._set("busy", False)
        self.message.emit("info" if error_type == "Cancelled" else "error", human_message(error_type, message))

    def _swap_in(self, before: list, redraw, label: str):
        """The callback that puts the engine's new frames where ``redraw(frame)`` says, as one undoable edit."""

        def done(paths: list[str]) -> None:
            if len(paths) != len(before):
                self.error("The engine returned a different number of frames; nothing was changed.")
                return
            self._edit([f.with_(path=paths[i]) if redraw(f) else f for i, f in enumerate(before)], label)

        return done

    def regenerate(self) -> None:
        """Make the sticker again from its recipe: same request, same seed, its given frames taken from the
        sticker itself, so an unedited sticker comes back pixel for pixel (durations and locks are kept)."""
        if self.sticker is None:
            return
        before = list(self._frames)
        done = self._swap_in(before, lambda f: True, "Regenerate")
        self._generate(done, "Regenerating from the recipe…", frames=len(before))

    def regenerate_unlocked(self) -> None:
        """Keep the locked frames (condition mask = 1) and let the model redraw the others around them."""
        locked = [f.locked for f in self._frames]
        if not any(locked) or all(locked):
            self.warn("Lock the frames you like (L), then regenerate the others.")
            return
        before = list(self._frames)
        done = self._swap_in(before, lambda f: not f.locked, "Regenerate unlocked frames")
        self._generate(done, "Regenerating the unlocked frames…", frames=len(before),
                       cond_frames=[f.path if f.locked else None for f in before], seed=random.randrange(1 << 31))

    def insert_between(self, index: int | None = None) -> None:
        """A new frame after ``index``, interpolated between it and the next one (wrapping: stickers loop)."""
        n = len(self._frames)
        if n < 2:
            self.warn("Insert in-between needs at least two frames.")
            return
        if n >= MAX_FRAMES:
            self.warn(f"A sticker can have at most {MAX_FRAMES} frames.")
            return
        i = self._current if index is None else index
        a, b = self._frames[i], self._frames[(i + 1) % n]
        before = list(self._frames)

        def done(paths: list[str]) -> None:
            if len(paths) != 3:
                self.error("The engine returned an unexpected result; nothing was changed.")
                return
            mid = Frame(paths[1], (a.duration_ms + b.duration_ms) // 2)
            self._edit(before[: i + 1] + [mid] + before[i + 1:], "Insert in-between")
            self._set("current", i + 1)

        self._generate(done, "Drawing an in-between frame…", frames=3, cond_frames=[a.path, None, b.path],
                       seed=random.randrange(1 << 31))

    def cancel(self) -> None:
        if self.job is not None:
            self.engine.cancel(self.job)
