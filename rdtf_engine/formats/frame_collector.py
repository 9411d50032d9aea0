"""Collects decoded frames under the caps, keeping memory bounded by the frame budget.

Decoders composite frames one by one; a 10 s WhatsApp sticker is hundreds of frames, but training keeps at
most ``budget`` of them. Keeping every frame until the end would cost frames x pixels of RAM, so once more than
two budgets' worth are held, neighbouring pairs are merged (the first frame kept, durations summed): total
duration and the loop are preserved, and ``resample_clip`` later picks the exact budget uniformly in time.
"""

from __future__ import annotations

import numpy as np

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import FormatError, LimitError
from rdtf_engine.formats.limits import Caps, Deadline, check_canvas
from rdtf_engine.formats.timing import normalise_durations, resample_clip


class EnoughFrames(BaseException):
    """Raised by ``FrameCollector.add`` once ``stop_after`` frames are held: ends a decoder's loop early.

    A BaseException so that decoders' ``except Exception`` clean-up paths cannot mistake it for a broken file;
    ``decode_bytes`` catches it and builds the clip from the frames so far."""


class FrameCollector:
    def __init__(self, caps: Caps, deadline: Deadline, budget: int | None = None, what: str = "file",
                 stop_after: int | None = None) -> None:
        self.stop_after = stop_after  # e.g. 1: a start image needs only the first frame, not a 1 GB decode
        self.caps = caps
        self.deadline = deadline
        self.budget = budget
        self.what = what
        self.frames: list[np.ndarray] = []
        self.raw_durations: list[float] = []  # as stored in the file, before browser normalisation
        self.durations: list[int] = []
        self.decoded = 0
        self.decoded_pixels = 0

    def add(self, frame: np.ndarray, duration_ms: float) -> None:
        self.deadline.check()
        if frame.ndim != 3 or frame.shape[2] != 4:
            raise FormatError(f"{self.what}: decoder produced a {frame.shape} frame, expected RGBA")
        h, w = frame.shape[:2]
        check_canvas(w, h, self.caps, self.what)
        if self.frames and self.frames[0].shape != frame.shape:
            raise FormatError(f"{self.what}: frame size changes mid-animation ({frame.shape[:2]})")
        self.decoded += 1
        self.decoded_pixels += w * h
        if self.decoded > self.caps.max_frames:
            raise LimitError(f"{self.what} has more than {self.caps.max_frames} frames")
        if self.decoded_pixels > self.caps.max_total_pixels:
            raise LimitError(
                f"{self.what}: decoding {self.decoded}+ frames of {w}x{h} exceeds the "
                f"{self.caps.max_total_pixels / 1e6:.0f} Mpx frames x pixels cap"
            )
        self.frames.append(np.array(frame, dtype=np.uint8, copy=True))
        raw = float(duration_ms) if duration_ms is not None else 0.0
        self.raw_durations.append(raw)
        self.durations.append(normalise_durations([raw])[0])
        if self.budget and len(self.frames) >= 2 * self.budget + 2:
            self._halve()
        if self.stop_after is not None and len(self.frames) >= self.stop_after:
            raise EnoughFrames

    def _halve(self) -> None:
        keep = self.frames[0::2]
        durs = [sum(self.durations[i : i + 2]) for i in range(0, len(self.durations), 2)]
        raws = [sum(self.raw_durations[i : i + 2]) for i in range(0, len(self.raw_durations), 2)]
        self.frames, self.durations, self.raw_durations = keep, durs, raws

    def clip(self, caption: str = "", labels: dict | None = None) -> Clip:
        if not self.frames:
            raise FormatError(f"{self.what} has no decodable frames")
        labels = dict(labels or {})
        labels.setdefault("original_frames", self.decoded)
        if len(self.raw_durations) == self.decoded:
            labels.setdefault("raw_durations_ms", [round(d, 3) for d in self.raw_durations])
        clip = Clip(np.stack(self.frames), list(self.durations), caption, labels)
        if self.budget and clip.num_frames > self.budget:
            clip = resample_clip(clip, self.budget)
        return clip
