"""The deferred diffusers model families: the engine's imports skip them, anything that asks for them gets them.

Each check runs in a fresh interpreter: what is imported is process-wide state."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_the_engine_model_imports_skip_the_families_it_does_not_use():
    out = _run("""
        import sys
        import rdtf_engine.model, rdtf_engine.model.autoencoder
        from diffusers import AutoencoderKL
        from rdtf_engine.model import build_dfgn
        from rdtf_engine.model.autoencoder import build_autoencoder
        build_dfgn("tiny"), build_autoencoder("tiny", 32)
        fam = sorted(m for m in sys.modules if m.startswith(("diffusers.models.transformers.",
                     "diffusers.models.unets.", "diffusers.models.autoencoders.")))
        print(*fam)
    """)
    loaded = set(out.split())
    assert "diffusers.models.transformers.transformer_2d" in loaded  # what the DFGN is made of
    assert "diffusers.models.autoencoders.autoencoder_kl" in loaded
    assert not any("flux" in m or "cogvideo" in m or "wan" in m for m in loaded), loaded  # not the rest
    assert len(loaded) < 10, loaded


def test_a_family_is_complete_the_moment_something_asks_for_it():
    out = _run("""
        import rdtf_engine.model
        import diffusers.models.transformers as tr
        from diffusers.models.transformers import FluxTransformer2DModel  # a name only the real __init__ defines
        from diffusers import UNet2DConditionModel, UNetMotionModel, AutoencoderKLWan
        from diffusers.training_utils import EMAModel
        from diffusers.models.autoencoders import AutoencoderKL
        from diffusers.models.unets import *  # noqa: F403 — reads __all__, which only the real __init__ has
        assert "UNet2DConditionModel" in dir()
        print(FluxTransformer2DModel.__name__, UNetMotionModel.__name__, AutoencoderKLWan.__name__,
              hasattr(tr, "SD3Transformer2DModel"), hasattr(tr, "NoSuchModel"))
    """)
    assert out.split() == ["FluxTransformer2DModel", "UNetMotionModel", "AutoencoderKLWan", "True", "False"]


def test_deferring_is_skipped_for_packages_already_imported():
    out = _run("""
        import sys
        import diffusers.models.transformers
        import rdtf_engine.model  # defers what is not imported yet
        from rdtf_engine.model.deferred_imports import defer_family_packages
        print(*(type(sys.modules[n]).__name__ for n in ("diffusers.models.transformers", "diffusers.models.unets")),
              defer_family_packages(), defer_family_packages(("no.such.package",)))
    """)
    assert out.split() == ["module", "_DeferredPackage", "[]", "[]"]
