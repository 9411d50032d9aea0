"""Run by test_bundle_spec.py in a fresh interpreter: the app's imports from source, with what the bundle
leaves out (packaging/bundle_trim.py) made unavailable the way the frozen build lacks it.

Excluded modules cannot be found (``importlib.util.find_spec`` gives None, ``import`` fails), as optional
imports in diffusers/transformers see them in the bundle; torch is shipped as byte code plus a few sources, so
every other torch source file raises OSError when ``inspect`` asks for it. Then every module of ``rdtf_engine``
and ``app`` is imported and one sticker is generated on the shipped model (one step, four frames, written as
WebM). An exception fails the run; on success it prints one JSON object: ``modules`` (sys.modules afterwards)
and ``source_warnings`` (warnings about a missing source).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import pkgutil
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class _Hiding:
    """Wraps a meta-path finder: modules the bundle excludes are not found."""

    def __init__(self, inner, excluded: set[str]) -> None:
        self.inner, self.excluded = inner, excluded

    def find_spec(self, name, path=None, target=None):
        parts = name.split(".")
        if any(".".join(parts[:i]) in self.excluded for i in range(1, len(parts) + 1)):
            return None
        return self.inner.find_spec(name, path, target)

    def __getattr__(self, attr):  # find_distributions (importlib.metadata), invalidate_caches, …
        return getattr(self.inner, attr)


def hide_what_the_bundle_leaves_out() -> None:
    sys.path.insert(0, str(ROOT / "packaging"))
    import bundle_trim

    excluded = set(bundle_trim.excluded_modules())
    sys.meta_path[:] = [_Hiding(f, excluded) for f in sys.meta_path]
    kept = {str(Path(src).resolve()) for src, _ in bundle_trim.torch_sources_read_at_import()}
    torch_dir = str(Path(importlib.util.find_spec("torch").origin).parent)
    original = inspect.getsourcelines  # inspect.getsource and torch._sources both go through it

    def getsourcelines(obj):
        path = inspect.getsourcefile(obj) or ""
        if path.startswith(torch_dir) and str(Path(path).resolve()) not in kept:
            raise OSError(f"not in the bundle: {path}")
        return original(obj)

    inspect.getsourcelines = getsourcelines


def main() -> None:
    hide_what_the_bundle_leaves_out()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import app
        import rdtf_engine

        for pkg in (rdtf_engine, app):
            for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
                if not mod.name.endswith("__main__"):  # importing a __main__ would run it
                    importlib.import_module(mod.name)
        from rdtf_engine.core.requests import GenerateRequest
        from rdtf_engine.jobs.api import generate

        with tempfile.TemporaryDirectory() as tmp:
            generate(GenerateRequest(prompt="a red heart beating", frames=4, steps=1, seed=1,
                                     out=str(Path(tmp) / "probe.webm")))
    source_warnings = sorted({str(w.message) for w in caught if "source" in str(w.message).lower()})
    print(json.dumps({"modules": sorted(sys.modules), "source_warnings": source_warnings}))


if __name__ == "__main__":
    main()
