"""Events that engine entry points emit through ``on_event`` (never prints).

The CLI renders them as human text or JSON lines (``--events jsonl``); the worker forwards them to the app as
JSON lines. Each event is a small dataclass with a ``kind`` tag so ``event_from_dict`` can rebuild it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Progress:
    """``step`` of ``total`` in a named stage ("denoise", "train", "decode", "encode-data"...); ``eta_s``: the
    seconds left at the measured speed, where the stage knows it (training, from its first steps on)."""

    stage: str
    step: int
    total: int
    message: str = ""
    eta_s: float | None = None
    kind: str = "progress"


@dataclass
class Preview:
    """Intermediate or sample frames written as PNG files (paths), e.g. a training sample grid."""

    step: int
    paths: list[str]
    caption: str = ""
    kind: str = "preview"


@dataclass
class Metrics:
    """Numbers at a training step. ``stage`` says whose: "train" (the denoiser), "autoencoder" (trained first,
    with its own step count and loss) or "validation" (the held-out denoising loss, ``val_loss`` and ``val``
    per task). ``task_weights`` are the curriculum's relative task weights (``task_shares()`` normalises them),
    ``task_counts`` the tasks drawn since the last row, ``ms`` the per-step wall time by phase."""

    step: int
    stage: str = "train"
    loss: float | None = None
    lr: float | None = None
    steps_per_s: float | None = None
    eta_s: float | None = None
    elapsed_s: float | None = None  # since the run (or its resume) started
    curriculum: str = ""  # the curriculum mode: none | linear | adaptive
    task_weights: dict[str, float] = field(default_factory=dict)
    task_counts: dict[str, int] = field(default_factory=dict)
    bucket: int | None = None  # the adaptive curriculum's difficulty bucket
    val_loss: float | None = None
    val: dict[str, float] = field(default_factory=dict)
    gpu_mem_mb: float | None = None
    ms: dict[str, float] = field(default_factory=dict)
    extra: dict[str, float] = field(default_factory=dict)  # stage-specific numbers (the autoencoder's loss parts)
    kind: str = "metrics"

    def task_shares(self) -> dict[str, float]:
        """The curriculum's task probabilities (weights / their sum), largest first."""
        total = sum(self.task_weights.values()) or 1.0
        return dict(sorted(((k, v / total) for k, v in self.task_weights.items()), key=lambda kv: -kv[1]))

    def row(self) -> dict[str, Any]:
        """The ``metrics.jsonl`` line (stable keys read by tools: loss, lr, tasks, weights, ms, val…)."""
        if self.stage == "validation":
            return {"step": self.step, "val": self.val}
        names = {"task_weights": "weights", "task_counts": "tasks"}
        row: dict[str, Any] = {"step": self.step}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("step", "kind", "stage", "val", "val_loss", "extra") or v is None:
                continue
            row[names.get(f.name, f.name)] = v
        return {**row, **self.extra}


@dataclass
class Log:
    level: str  # "info" | "warning" | "error"
    message: str
    kind: str = "log"


@dataclass
class Finished:
    """The job's result: for generate ``{"out": path, "frames": n, ...}``, for train ``{"run_dir": ...}``."""

    result: dict[str, Any] = field(default_factory=dict)
    kind: str = "finished"


@dataclass
class Failed:
    """A typed failure: ``error_type`` is the RdtfError subclass name (or "InternalError")."""

    error_type: str
    message: str
    kind: str = "failed"


Event = Progress | Preview | Metrics | Log | Finished | Failed
EventCallback = Callable[[Event], None]
StopCallback = Callable[[], bool]

_KINDS = {cls.__dataclass_fields__["kind"].default: cls for cls in (Progress, Preview, Metrics, Log, Finished, Failed)}


def event_to_dict(event: Event) -> dict[str, Any]:
    return dataclasses.asdict(event)


def event_to_json(event: Event) -> str:
    return json.dumps(event_to_dict(event), separators=(",", ":"), default=_json_default)


def event_from_dict(data: dict[str, Any]) -> Event:
    cls = _KINDS.get(data.get("kind", ""))
    if cls is None:
        raise ValueError(f"unknown event kind {data.get('kind')!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def format_event(event: Event) -> str | None:
    """One human line for the CLI, or None for events not worth printing."""
    if isinstance(event, Progress):
        msg = f" {event.message}" if event.message else ""
        return f"[{event.stage}] {event.step}/{event.total}{msg}"
    if isinstance(event, Metrics):
        row = {"stage": event.stage if event.stage == "autoencoder" else None, **event.row(),
               "val_loss": event.val_loss}
        parts = [f"{k}={_short(v)}" for k, v in row.items()
                 if k != "step" and v is not None and v != "" and not isinstance(v, (dict, list))]
        return f"step {event.step}: " + " ".join(parts)
    if isinstance(event, Preview):
        return f"preview at step {event.step}: {', '.join(event.paths)}"
    if isinstance(event, Log):
        return event.message if event.level == "info" else f"{event.level}: {event.message}"
    if isinstance(event, Finished):
        return "done: " + ", ".join(f"{k}={_short(v)}" for k, v in event.result.items())
    if isinstance(event, Failed):
        return f"error: {event.message}"
    return None


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _json_default(o: Any) -> Any:
    # numpy scalars and paths end up in results; keep JSON output total.
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def null_event(_event: Event) -> None:
    return None


def never_stop() -> bool:
    return False
