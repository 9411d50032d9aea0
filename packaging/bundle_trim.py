"""What the desktop bundle leaves out, and why: read by packaging/rdtf_studio.spec, checked by
tests/reliability/test_bundle_spec.py against the installed packages (plain Python, no PyInstaller import).

Every entry was checked against ``sys.modules`` after the app's real paths (GUI start, generate, export, import,
a training run) and is kept honest by the bundle's smoke test (packaging/smoke_test.py, docs/packaging.md).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
from pathlib import Path

# Python modules PyInstaller would follow from static imports but the app never imports, with the reason.
EXCLUDED: dict[str, str] = {
    # Qt modules the app does not use (it draws with QtWidgets/QtGui/QtSvg; pyqtgraph treats QtTest as
    # optional). QtOpenGL/QtOpenGLWidgets stay: pyqtgraph's PlotCurveItem imports them unconditionally.
    **dict.fromkeys(
        ["PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuickControls2", "PySide6.QtQuickTest",
         "PySide6.QtQml", "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtSql", "PySide6.QtTest",
         "PySide6.QtUiTools", "PySide6.QtXml", "PySide6.QtConcurrent", "PySide6.QtNetwork", "PySide6.QtDBus",
         "PySide6.QtPrintSupport", "PySide6.QtSvgWidgets"],
        "Qt module the app never imports"),
    # Development tools installed beside the app in the build venv.
    **dict.fromkeys(["pytest", "_pytest", "pytestqt", "hypothesis", "grimp", "importlinter", "tkinter",
                     "sentence_transformers"], "test/development tool, never imported by the app"),
    "imageio": "declared dependency the engine does not import; WebM goes through PyAV",
    # The cpu-fast extra (ONNX Runtime, OpenVINO) stays out of the bundle to hold it under 800 MB: the engine
    # imports them lazily and samples with PyTorch when they are missing (diffusion/cpu_runtime.py; at bf16 under
    # autocast where the processor has it).
    **dict.fromkeys(["onnxruntime", "onnx", "ml_dtypes", "openvino", "openvino_telemetry"],
                    "optional CPU runtime (cpu-fast extra), not bundled: PyTorch samples instead"),
    "imageio_ffmpeg": "its ffmpeg binary alone is 165 MB and is never run (PyAV encodes and decodes)",
    # scipy (≈ 75 MB with its libraries) is optional in diffusers and transformers: both look for it with
    # importlib.util.find_spec and only the schedulers' beta-sigma option and object-detection losses use it.
    "scipy": "optional in diffusers/transformers; no code path of the app needs it",
    "sklearn": "backs only rdtf_engine.data.keyframes' backend='sklearn', which no CLI command or app page "
               "selects (the default numpy k-means is used)",
    "joblib": "scikit-learn's dependency",
    "threadpoolctl": "scikit-learn's dependency",
    "narwhals": "dataframe shim for plotting/ML libraries; never imported",
    "hf_xet": "Hugging Face Hub download accelerator; the bundle never downloads (the text encoder ships "
              "inside its package)",
    "pydantic": "pulled in by optional Hub/transformers serving code; never imported",
    "pydantic_core": "pydantic's compiled core",
    "rich": "pretty console output of the Hub/transformers command-line tools",
    "pygments": "syntax highlighting for rich/IPython; never imported",
    "fsspec": "remote file systems for Hub/torch.distributed checkpoints; never imported",
    "networkx": "torch's compiler partitioner (torch.compile is never used); never imported",
    "setuptools": "torch.utils.cpp_extension builds C++ extensions; never at run time",
    "torch.utils.tensorboard": "logging to TensorBoard; not used",
    "torch.utils.benchmark": "benchmarking helpers; not used",
    "transformers.pipelines": "transformers' task pipelines; the engine calls AutoModel/AutoTokenizer only",
    "transformers.trainer": "transformers' Trainer; the engine has its own training loop",
    "transformers.exporters": "ONNX/ExecuTorch exporters; not used",
    "transformers.cli": "the transformers command-line tool",
    "diffusers.modular_pipelines": "diffusers' pipeline families; the engine builds its own pipeline",
    "diffusers.commands": "the diffusers command-line tool",
    "sympy.physics": "sympy is imported by torch's symbolic shapes, which never touch its physics package",
    "sqlite3": "the standard library's database module; never imported",
    "PIL._avif": "Pillow's AVIF codec and its 5 MB libavif: stickers are GIF/APNG/WebP/WebM/TGS",
    # torch's compiler back end and test helpers (torch.compile is never called; the app's paths import
    # only torch._inductor's config/utils modules, which stay).
    **dict.fromkeys(["torch._inductor.codegen", "torch._inductor.fx_passes", "torch._inductor.kernel",
                     "torch._vendor.quack"], "torch.compile's code generation; never run"),
    "torch.utils.hipify": "CUDA-to-ROCm source translation for building C++ extensions; never at run time",
    **dict.fromkeys(["torch.testing._internal.opinfo", "torch.testing._internal.generated",
                     "torch.testing._internal.common_methods_invocations"], "torch's own test suite's operator "
                                                                            "tables; never imported"),
    **dict.fromkeys(["torch.distributed.pipelining", "torch.ao.ns", "torch.ao.pruning"],
                    "pipeline parallelism, quantization debugging and pruning; not used"),
}

# transformers model families kept: everything else in transformers.models is excluded (≈ 45 MB of sources,
# which transformers' PyInstaller hook also collects as .py files). The text encoder is a BERT; the others
# are imported on the way to it (checked by tests/reliability/test_bundle_spec.py on each upgrade).
TRANSFORMERS_MODELS: dict[str, str] = {
    "auto": "AutoModel/AutoTokenizer for the text encoder",
    "bert": "the text encoder (all-MiniLM-L6-v2) is a BERT",
    "align": "first family mapped to BertTokenizer: AutoTokenizer imports it to find the class",
    "siglip": "imported by diffusers.models.autoencoders (autoencoder_rae) with AutoencoderKL",
    "dinov2_with_registers": "imported by diffusers' autoencoder_rae",
    "vit_mae": "imported by diffusers' autoencoder_rae",
    "encoder_decoder": "imported by transformers' auto_docstring while those classes are defined",
}

# Files that hooks collect but nothing loads at run time (fnmatch patterns on the bundle path), with reasons.
# torch/bin keeps torch_shm_manager: `import torch` checks for it.
KEEP_FILES = ["torch/bin/torch_shm_manager"]
DROP_FILES: dict[str, str] = {
    "torch/include/*": "C++ headers for building extensions",
    "torch/test/*": "torch's C++ unit-test executables (61 MB)",
    "torch-*.dist-info/RECORD": "torch's list of installed files (2.5 MB): version checks read METADATA, and "
                                "top_level.txt names its package",
    "torch/share/*": "CMake files for building against libtorch",
    "torch/bin/*": "test and benchmark executables",
    "torch/lib/lib*test*.so*": "libraries of torch's own test suite",
    "torch/lib/libbackend_with_compiler.so": "a test backend of torch's JIT",
    "torch/lib/libaoti_custom_ops.so": "AOTInductor test operators",
    "torch/testing/_internal/data/*": "torch test data",
    "PySide6/Qt/translations/*": "Qt's translations: the UI is English only",
    "PySide6/Qt/qml/*": "QML modules: the app has no QML",
    "PySide6/Qt/plugins/platformthemes/libqgtk3.so": "GTK theme plugin: links the GTK stack below, which is "
                                                    "the desktop's to provide; Qt falls back to its own style",
    "PySide6/Qt/plugins/sqldrivers/*": "no QtSql",
    "PySide6/Qt/plugins/qmltooling/*": "no QML",
    "PySide6/Qt/plugins/designer/*": "no Qt Designer",
    "PySide6/Qt/plugins/networkinformation/*": "no QtNetwork",
    "PySide6/Qt/plugins/tls/*": "no QtNetwork",
    **dict.fromkeys(["PySide6/Qt/plugins/platforms/libqlinuxfb.so", "PySide6/Qt/plugins/platforms/libqvnc.so",
                     "PySide6/Qt/plugins/platforms/libqvkkhrdisplay.so", "PySide6/Qt/plugins/platforms/libqeglfs.so",
                     "PySide6/Qt/plugins/platforms/libqminimalegl.so", "PySide6/Qt/plugins/egldeviceintegrations/*",
                     "PySide6/Qt/lib/libQt6EglF[Ss]*", "PySide6/Qt/plugins/generic/*"],
                    "platforms and input plugins for embedded devices without a window system (framebuffer, "
                    "VNC, EGLFS, evdev): the app runs on xcb or wayland, and offscreen in tests"),
    **dict.fromkeys(["libgtk-3.so*", "libgdk-3.so*", "libatk-1.0.so*", "libatk-bridge-2.0.so*",
                     "libcairo*.so*", "libpango*.so*", "libgdk_pixbuf-2.0.so*", "libharfbuzz.so*",
                     "libgraphite2.so*", "libthai.so*", "libdatrie.so*", "libfribidi.so*", "libpixman-1.so*",
                     "libepoxy.so*", "libgio-2.0.so*", "libgmodule-2.0.so*", "libgobject-2.0.so*",
                     "libblkid.so*", "libmount.so*", "libselinux.so*", "libjpeg.so.62*"],
                    "GTK stack pulled in only by the GTK theme plugin (no other library links it)"),
    "libcudart.so": "a CUDA runtime found through a ctypes reference in torch's compiler; CPU torch never loads it",
    "*.pyi": "type stubs",
    "*/__pycache__/*": "byte code caches of collected sources",
}

# Libraries that wheels vendor in a `<dist>.libs/` folder are rewritten by patchelf (auditwheel); `strip`
# breaks them ("ELF load command address/offset not page-aligned" when numpy loads its OpenBLAS), so they are
# copied as they are. Everything else is stripped of its symbol table (libtorch_cpu.so 415 → 330 MB).
NEVER_STRIP = ["*.libs/*"]


def _module_dir(name: str) -> Path | None:
    """The folder of an installed package, found without importing it (only the top level is looked up)."""
    top, *rest = name.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    return folder if (folder / "__init__.py").is_file() else None


def _subpackages(package: str) -> list[str]:
    root = _module_dir(package)
    if root is None:
        return []
    return sorted(p.name for p in root.iterdir() if (p / "__init__.py").is_file())


def suite_packages(package: str) -> list[str]:
    """Every ``tests``/``benchmarks`` sub-package under ``package``: never imported outside a test run."""
    root = _module_dir(package)
    if root is None:
        return []
    found = []
    for init in root.rglob("__init__.py"):
        rel = init.parent.relative_to(root.parent)
        if rel.name in ("tests", "benchmarks"):
            found.append(".".join(rel.parts))
    return sorted(found)


def excluded_modules() -> list[str]:
    """The spec's ``excludes``: the fixed list plus the model families computed from what is installed."""
    names = list(EXCLUDED)
    names += [f"transformers.models.{m}" for m in _subpackages("transformers.models") if m not in TRANSFORMERS_MODELS]
    # diffusers.pipelines' sub-packages are model families' pipelines; the engine builds its own pipeline from
    # diffusers' models and schedulers (diffusers itself imports only the modules pipeline_utils and
    # pipeline_loading_utils directly in diffusers.pipelines).
    names += [f"diffusers.pipelines.{m}" for m in _subpackages("diffusers.pipelines")]
    for pkg in ("sympy", "numpy", "torch", "transformers", "diffusers", "pyqtgraph", "PIL"):
        names += suite_packages(pkg)
    return names


# Torch sources torch itself reads while importing (inspect.getsource): its config modules
# (install_config_module) and the TorchScript overload declarations (@_overload). Everything else of torch is
# collected as byte code only; its PyInstaller hook would also copy every .py file (≈ 50 MB).
_TORCH_READS_SOURCE = re.compile(r"install_config_module\(|\b_overload(_method)?\b")


def torch_sources_read_at_import() -> list[tuple[str, str]]:
    """(source file, bundle folder) pairs for PyInstaller's ``datas``."""
    root = _module_dir("torch")
    if root is None:
        return []
    pairs = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        if "testing" in rel.parts or "__pycache__" in rel.parts:
            continue
        if _TORCH_READS_SOURCE.search(path.read_text("utf-8", errors="replace")):
            pairs.append((str(path), str(rel.parent)))
    return pairs


def keep_file(dest: str) -> bool:
    """False for a collected file the bundle drops (DROP_FILES), by its path inside the bundle."""
    dest = dest.replace("\\", "/")
    if dest in KEEP_FILES:
        return True
    return not any(fnmatch.fnmatch(dest, pat) for pat in DROP_FILES)


def strippable(dest: str) -> bool:
    return not any(fnmatch.fnmatch(dest.replace("\\", "/"), pat) for pat in NEVER_STRIP)
