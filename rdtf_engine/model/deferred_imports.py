"""Import only the diffusers models the engine uses, not every model family diffusers ships.

diffusers' ``models.transformers``, ``models.unets`` and ``models.autoencoders`` packages import every model of
their family in their ``__init__`` (about 60 transformers, 30 autoencoders, the UNets), although the engine needs
three modules of them (``transformer_2d``, ``unet_2d_blocks`` through the autoencoder, ``autoencoder_kl``).
Importing ``diffusers.models.transformers.transformer_2d`` runs its package's ``__init__`` first, so a cold
``rdtf generate`` spent about a second of its start-up importing model families it never touches.

:func:`defer_family_packages` puts a stand-in for each of those packages in ``sys.modules`` before diffusers
imports them: it has the real package's ``__path__`` and spec, so ``import diffusers.models.transformers.X``
loads just ``X``; the first time anything asks the package itself for a name it does not have yet (``from
diffusers.models.transformers import FluxTransformer2DModel``, ``hasattr``), the stand-in runs the real
``__init__`` in its own namespace and answers from it. Code that uses the families still gets them; only the
moment they are imported moves. Where anything about this does not hold (another diffusers layout, a package
already imported), it does nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types

FAMILY_PACKAGES = ("diffusers.models.transformers", "diffusers.models.unets", "diffusers.models.autoencoders")

_lock = threading.RLock()


class _DeferredPackage(types.ModuleType):
    """A package whose ``__init__`` runs on the first lookup of a name it lacks (see the module docstring)."""

    def __getattr__(self, name: str):
        # the import system probes dunders (__path__ is set, __file__ …): those never complete the package, except
        # __all__, which `from package import *` reads
        if name.startswith("__") and name.endswith("__") and name != "__all__":
            raise AttributeError(name)
        with _lock:
            if not self.__dict__.get("_rdtf_completed"):
                self.__dict__["_rdtf_completed"] = True
                self.__spec__.loader.exec_module(self)  # the real __init__, in this module's namespace
        try:
            return self.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {self.__name__!r} has no attribute {name!r}") from None


def defer_family_packages(names: tuple[str, ...] = FAMILY_PACKAGES) -> list[str]:
    """Put a deferred stand-in in ``sys.modules`` for each package of ``names`` not imported yet → the names
    deferred. Safe to call more than once; never raises (a failure means the normal, slower import)."""
    done = []
    with _lock:
        for name in names:
            if name in sys.modules:
                continue
            try:
                spec = importlib.util.find_spec(name)  # imports the parent (diffusers.models is itself lazy)
                if spec is None or spec.loader is None or not spec.submodule_search_locations:
                    continue
                module = _DeferredPackage(name)
                module.__spec__, module.__loader__ = spec, spec.loader
                module.__file__, module.__package__ = spec.origin, name
                module.__path__ = list(spec.submodule_search_locations)
                sys.modules[name] = module
                parent, _, child = name.rpartition(".")
                setattr(importlib.import_module(parent), child, module)
                done.append(name)
            except Exception:  # noqa: BLE001 — an optimisation only: anything unexpected → the normal import
                sys.modules.pop(name, None)
    return done
