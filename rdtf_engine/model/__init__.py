"""Neural networks of the engine: the DFGN denoiser (dfgn.py) and its parts (sti.py, blocks.py, condition.py,
reference.py)."""

from rdtf_engine.model.deferred_imports import defer_family_packages

defer_family_packages()  # before anything imports diffusers' model families (see deferred_imports)

from rdtf_engine.model.blocks import FrameInfo, TemporalAttention
from rdtf_engine.model.condition import ConditionEncoder
from rdtf_engine.model.dfgn import DFGN, TEMPORAL_LAYERS, build_dfgn, count_parameters
from rdtf_engine.model.sti import Conv3DTemporalLayer, STILayer

__all__ = [
    "DFGN",
    "TEMPORAL_LAYERS",
    "ConditionEncoder",
    "Conv3DTemporalLayer",
    "FrameInfo",
    "STILayer",
    "TemporalAttention",
    "build_dfgn",
    "count_parameters",
]
