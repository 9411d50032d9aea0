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
    """``step`` of ``total`` in a named stage ("denoise", "train", "decode", "encode-data"...)."""

    stage: str
    step: int
    total: int
    message: str = ""
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
    """Numbers at a training step: loss, lr, steps_per_s, eta_s, task, curriculum weights, gpu_mem_mb..."""

    step: int
    values: dict[str, Any]
    kind: str = "metrics"


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
        parts = [f"{k}={_short(v)}" for k, v in event.values.items() if not isinstance(v, (dict, list))]
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
