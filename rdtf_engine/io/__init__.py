"""Sticker I/O: safe importers for user packs, platform exporters, preset checks (issue 4, docs/io.md).

Importing this package is cheap: PyAV, rlottie and imagequant load only when a WebM/MP4, a .tgs or a
GIF/palette export needs them.
"""

from .check import check_bytes, check_file
from .dataset import import_pack, load_dataset
from .export import encode_for_preset, export_clip, list_presets, write_clip
from .limits import DEFAULT_CAPS, Caps
from .loader import load_clip, load_frames_folder
from .pack import iter_pack
from .presets import PRESETS, Preset, get_preset
from .timeline import resample_clip

__all__ = [
    "DEFAULT_CAPS",
    "PRESETS",
    "Caps",
    "Preset",
    "check_bytes",
    "check_file",
    "encode_for_preset",
    "export_clip",
    "get_preset",
    "import_pack",
    "iter_pack",
    "list_presets",
    "load_clip",
    "load_dataset",
    "load_frames_folder",
    "resample_clip",
    "write_clip",
]
