"""Which CPU runtime and precision a process samples with, decided from names alone (nothing here imports torch).

``RDTF_CPU_RUNTIME`` = auto (default) | onnx | openvino | torch picks the runtime for a whole process, and
``RDTF_CPU_PRECISION`` = auto (default) | fp32 | bf16 its precision. auto picks OpenVINO when it is installed and
the precision is bf16, else ONNX Runtime when installed, else PyTorch (``cpu_runtime`` has the measurements).
Why torch-free: a cold ``rdtf generate`` starts compiling its OpenVINO graphs before the engine (and torch) is
imported (``graph_prefetch``), and must decide by the same rules as the sampler whether OpenVINO will run at all.
Whether "auto" precision means bf16 needs the processor probe in ``cpu_runtime.resolve_cpu_precision`` (torch).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

log = logging.getLogger("rdtf_engine.diffusion")

RUNTIMES = ("auto", "onnx", "openvino", "torch")
ENV = "RDTF_CPU_RUNTIME"
PRECISIONS = ("auto", "fp32", "bf16")
PRECISION_ENV = "RDTF_CPU_PRECISION"


def onnx_installed() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))


def openvino_installed() -> bool:
    # OpenVINO reads the file ONNX Runtime optimised and saved (cpu_runtime._export), so it needs the ONNX pair too
    return onnx_installed() and importlib.util.find_spec("openvino") is not None


def import_openvino():
    """``import openvino`` without its telemetry → the module.

    Importing OpenVINO (2026.4) sends a usage event to Google Analytics (``www.google-analytics.com``) from a background
    thread (through a forked process) and writes a client ID under ``~/intel``, unless a consent file there says no: its
    telemetry package counts a missing file as consent. The engine uses no network when it generates and writes nothing
    outside its own folders, so ``openvino_telemetry`` is marked absent before the first import and OpenVINO takes its
    own do-nothing stand-in (``openvino.tools.ovc.telemetry_stub``). The mark stays for the process: nothing else here
    uses that package."""
    if "openvino" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # None: "import openvino_telemetry" raises ImportError
    import openvino

    return openvino


def _named(choice: str | None, env: str, allowed: tuple[str, ...], fallback: str, quiet: bool = False) -> str:
    """``choice``, else ``$env``, else "auto", lower-cased; a name not ``allowed`` becomes ``fallback`` (logged
    unless ``quiet``)."""
    name = (choice or os.environ.get(env) or "auto").strip().lower()
    if name in allowed:
        return name
    if not quiet:
        log.warning("%s=%r is not one of %s: using %s", env, name, ", ".join(allowed), fallback)
    return fallback


def requested_precision(choice: str | None = None, quiet: bool = False) -> str:
    """``choice`` (or ``$RDTF_CPU_PRECISION``, or "auto") → "auto", "fp32" or "bf16" as asked: an unknown name is
    fp32 (exact). Whether the processor can honour bf16 is ``cpu_runtime.resolve_cpu_precision``'s part."""
    return _named(choice, PRECISION_ENV, PRECISIONS, "fp32", quiet)


def resolve_cpu_runtime(choice: str | None = None, precision: str = "fp32", quiet: bool = False) -> str:
    """``choice`` (or ``$RDTF_CPU_RUNTIME``, or "auto") → "onnx", "openvino" or "torch" for a process sampling at
    ``precision`` ("fp32" or "bf16"). auto: OpenVINO for bf16 when installed, else ONNX Runtime when installed,
    else PyTorch; a named runtime that is not installed, or an unknown name, falls back the same way (logged unless
    ``quiet``: sampling never fails over the choice of runtime)."""
    name = _named(choice, ENV, RUNTIMES, "torch", quiet)
    if name == "torch":
        return "torch"
    if name in ("auto", "openvino") and openvino_installed() and (name == "openvino" or precision == "bf16"):
        return "openvino"
    if name == "openvino" and not quiet:
        log.warning("openvino is not installed (pip install 'rdtf-sticker-studio[cpu-fast]'): using %s",
                    "onnx" if onnx_installed() else "torch")
    if onnx_installed():
        return "onnx"
    if name == "onnx" and not quiet:
        log.warning("onnxruntime is not installed (pip install 'rdtf-sticker-studio[cpu-fast]'): using torch")
    return "torch"


__all__ = ["ENV", "PRECISIONS", "PRECISION_ENV", "RUNTIMES", "import_openvino", "onnx_installed",
           "openvino_installed", "requested_precision", "resolve_cpu_runtime"]
