"""Shared test set-up: an isolated user data folder, 2 torch threads, no hub access."""

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Sampling tests train their own tiny models: an ONNX export per model would cost more than the sampling it
# speeds up. tests/engine/test_cpu_runtime.py checks the ONNX Runtime path explicitly.
os.environ.setdefault("RDTF_CPU_RUNTIME", "torch")
# … and in fp32 (exact, the same pixels on every processor); tests of the bf16 path ask for it explicitly
os.environ.setdefault("RDTF_CPU_PRECISION", "fp32")


@pytest.fixture(autouse=True, scope="session")
def _isolated_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("rdtf-home")
    old = os.environ.get("RDTF_HOME")
    os.environ["RDTF_HOME"] = str(home)
    try:
        import torch

        torch.set_num_threads(min(2, os.cpu_count() or 2))
    except ImportError:
        pass
    yield home
    if old is None:
        os.environ.pop("RDTF_HOME", None)
    else:
        os.environ["RDTF_HOME"] = old


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


_EXIT = {"status": None}


def pytest_sessionfinish(session, exitstatus):
    _EXIT["status"] = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """Leave without interpreter finalisation once pytest has reported everything.

    With Qt (PySide6), torch and worker subprocesses in one process, CPython's final garbage collection has
    aborted with "Fatal Python error: bool_dealloc" (a refcount bug in a C extension at shutdown) after all
    tests had passed, turning a green run into exit code 134. The results are already printed and flushed here.
    """
    import sys

    if _EXIT["status"] is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT["status"])


@pytest.fixture(scope="session")
def load_script():
    """``load_script("tools/gpu_bundle.py")`` → that script imported as a module (tools/ and benchmarks/ are not
    packages: they run as scripts)."""

    def load(rel: str):
        path = ROOT / rel
        spec = importlib.util.spec_from_file_location(path.stem, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        return mod

    return load
