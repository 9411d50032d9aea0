"""Compile a sticker's OpenVINO graphs while the rest of the engine is still importing (a cold command on a CPU).

A cold ``rdtf generate`` on two cores spends ≈ 4 s importing Python modules — one core busy, the other idle — and
later ≈ 0.8 s per graph while OpenVINO loads its cached kernels (the draft's graph and the refinement's). The graphs a
request needs are the ones the same request needed last time, so an index in the export cache (``prefetch.json``)
remembers, per request key (the model folder as it is on disk, frames, size, a given picture or not), the exported
files and the settings they were compiled with. The next launch with that key compiles them on a background thread
from its first lines (``start``), and the OpenVINO step takes a finished one (``take``: waiting for it if need be)
instead of compiling it again. A key that changed — other weights, another size — finds nothing and the step
compiles as before; a prefetched graph is only taken for the same file and the same settings, and is checked
like any other (``openvino_runtime``). Nothing here imports torch.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from rdtf_engine.core.atomic import write_text_atomic
from rdtf_engine.diffusion import cpu_choice

log = logging.getLogger("rdtf_engine.diffusion")

INDEX = "prefetch.json"  # in the export cache (user cache/onnx)
BLOB_DIR = "openvino"  # OpenVINO's compiled-kernel caches, under the export cache (blob_dir)
KEEP_KEYS = 16  # request keys remembered, newest first
EXIT_WAIT_S = 10.0  # a process that ends early waits this long at most for a compile still running

_PENDING: dict[str, tuple[dict[str, Any], Future]] = {}  # str(onnx path) → (compile settings, its compile)
_LOCK = threading.Lock()


def blob_dir(cache: Path, config: dict[str, Any]) -> Path:
    """OpenVINO's compiled-kernel cache for graphs compiled with ``config``: one folder per precision, because
    OpenVINO's cache key leaves the precision hint out — a bf16 compile found the fp32 blob of the same file and
    computed NaN from it (OpenVINO 2026.4 on a processor with AMX)."""
    return cache / BLOB_DIR / str(config.get("INFERENCE_PRECISION_HINT", "default"))


def cache_dir() -> Path:
    """The export cache: ONNX files of the denoiser (``cpu_runtime``), OpenVINO's blobs, this index."""
    from rdtf_engine.core.paths import user_cache_dir

    return user_cache_dir() / "onnx"


def request_key(model_dir: str | os.PathLike[str], frames: int, size: int, given: bool) -> str:
    """What decides which graphs a request compiles: the model folder's files as they are on disk (path, size and
    modification time of every file: new weights give a new key without reading them), frames, size in px and
    whether a picture is given (a third guidance row)."""
    root = Path(model_dir).resolve()
    files = sorted((str(p.relative_to(root)), p.stat().st_size, p.stat().st_mtime_ns)
                   for p in root.rglob("*") if p.is_file() and p.suffix in (".json", ".safetensors"))
    sig = json.dumps([str(root), files, int(frames), int(size), bool(given)])
    return hashlib.sha256(sig.encode()).hexdigest()[:24]


def start_for_request(model: str, frames: int, size: int | None, given: bool, device: str = "auto") -> int:
    """``start`` for a request as it arrives (a model name, the size it asks for or None for the model's own) → how
    many graphs; never raises: a model that cannot be found is the request's error to report, not this one's."""
    if str(device) not in ("auto", "cpu"):
        return 0
    from rdtf_engine.core.errors import RdtfError
    from rdtf_engine.core.model_folder import resolve_model, validate_model_folder

    try:
        folder = resolve_model(model)
        size = int(size) if size else int(validate_model_folder(folder).size)
        return start(request_key(folder, frames, size, given), cache_dir())
    except (RdtfError, OSError, ValueError):
        return 0


def forget() -> None:
    """Drop the prefetches nobody took (a request that needed other graphs): a long-lived worker keeps no compiled
    graph it will never use."""
    with _LOCK:
        _PENDING.clear()


def _read_index(cache_dir: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        data = json.loads((cache_dir / INDEX).read_text())
    except (OSError, ValueError):  # none yet, or unreadable: nothing to prefetch
        return {}
    return data if isinstance(data, dict) else {}


def start(key: str, cache_dir: Path, runtime: str | None = None) -> int:
    """Begin compiling the graphs remembered for ``key`` on a background thread → how many. ``runtime``: the CPU
    runtime asked for (``$RDTF_CPU_RUNTIME`` when None); one that cannot be OpenVINO prefetches nothing."""
    # the sampler's own rules (quietly: it says so itself if a name is wrong); "auto" precision may be bf16 here —
    # whether the processor has it needs torch — so only an explicit fp32 is known to be fp32
    precision = cpu_choice.requested_precision(quiet=True)
    if cpu_choice.resolve_cpu_runtime(runtime, "fp32" if precision == "fp32" else "bf16", quiet=True) != "openvino":
        return 0
    graphs = [g for g in _read_index(cache_dir).get(key, [])
              if isinstance(g, dict) and Path(str(g.get("path", ""))).is_file() and isinstance(g.get("config"), dict)
              and (precision != "fp32" or g["config"].get("INFERENCE_PRECISION_HINT") == "f32")]
    if not graphs:
        return 0
    try:
        # here, not on the thread: two threads importing at once could meet in a module's lock
        openvino = cpu_choice.import_openvino()
    except ImportError:
        return 0
    work = []
    with _LOCK:
        for g in graphs:
            if str(g["path"]) not in _PENDING:
                fut: Future = Future()
                _PENDING[str(g["path"])] = (dict(g["config"]), fut)
                work.append((str(g["path"]), dict(g["config"]), fut))
    if work:
        threading.Thread(target=_compile_all, args=(openvino, cache_dir, work), name="rdtf-graph-prefetch",
                         daemon=True).start()
    return len(work)


def _compile_all(ov, cache_dir: Path, work: list[tuple[str, dict[str, Any], Future]]) -> None:
    for path, config, fut in work:
        try:
            core = ov.Core()
            core.set_property({"CACHE_DIR": str(blob_dir(cache_dir, config))})
            fut.set_result(core.compile_model(path, "CPU", config))  # (OpenVINO releases the GIL meanwhile)
        except Exception as exc:  # noqa: BLE001 - a failed prefetch is only a missed head start
            fut.set_exception(exc)


def take(path: str | os.PathLike[str], config: dict[str, Any]) -> Any | None:
    """The prefetched compiled model of ``path`` if it was compiled with exactly ``config`` (waits for it), else
    None: the caller compiles it itself."""
    with _LOCK:
        pending = _PENDING.pop(str(path), None)
    if pending is None or pending[0] != config:
        return None
    try:
        return pending[1].result()
    except Exception as exc:  # noqa: BLE001
        log.info("prefetched OpenVINO graph unusable, compiling again: %s", exc)
        return None


def remember(key: str, cache_dir: Path, graphs: list[tuple[str, dict[str, Any]]]) -> None:
    """Record the graphs (onnx path, compile settings) a request with ``key`` compiled, for the next launch."""
    if not graphs:
        return
    index = _read_index(cache_dir)
    entry = [{"path": str(p), "config": dict(c)} for p, c in graphs]
    if next(iter(index), None) == key and index[key] == entry:
        return  # the newest already: nothing to write
    index.pop(key, None)
    index = {key: entry, **dict(list(index.items())[: KEEP_KEYS - 1])}
    try:
        write_text_atomic(cache_dir / INDEX, json.dumps(index, indent=1))
    except OSError as exc:  # a read-only or full cache only costs the next launch its head start
        log.info("could not record the compiled graphs: %s", exc)


@atexit.register
def _wait_at_exit() -> None:
    """Let a compile still running finish before the interpreter goes away under it (a request that failed early)."""
    with _LOCK:
        futures = [f for _, f in _PENDING.values()]
    for fut in futures:
        try:
            fut.exception(timeout=EXIT_WAIT_S)
        except Exception:  # noqa: BLE001, S110 - a timeout at exit: nothing more to do
            pass


__all__ = ["BLOB_DIR", "INDEX", "blob_dir", "cache_dir", "forget", "remember", "request_key", "start",
           "start_for_request", "take"]
