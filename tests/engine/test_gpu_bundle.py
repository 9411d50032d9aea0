"""tools/gpu_bundle.py trim-wheel: the carried diffusers wheel keeps what the engine imports and stays installable."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bundle():
    spec = importlib.util.spec_from_file_location("gpu_bundle", ROOT / "tools" / "gpu_bundle.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_trim_wheel_drops_pipeline_families_and_rewrites_record(tmp_path):
    src = tmp_path / "in" / "diffusers-9.9-py3-none-any.whl"
    src.parent.mkdir()
    files = {
        "diffusers/__init__.py": b"x = 1\n",
        "diffusers/models/modeling_utils.py": b"class ModelMixin: pass\n",
        "diffusers/pipelines/__init__.py": b"# lazy\n",
        "diffusers/pipelines/pipeline_utils.py": b"class DiffusionPipeline: pass\n",
        "diffusers/pipelines/stable_diffusion/pipeline_sd.py": b"big = 1\n",
        "diffusers/modular_pipelines/flux/x.py": b"big = 2\n",
        "diffusers-9.9.dist-info/METADATA": b"Name: diffusers\n",
        "diffusers-9.9.dist-info/RECORD": b"stale\n",
    }
    with zipfile.ZipFile(src, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    out = _bundle().trim_wheel(src, tmp_path / "out")
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        record = z.read("diffusers-9.9.dist-info/RECORD").decode().splitlines()
        kept = {n: z.read(n) for n in names}
    assert names == set(files) - {"diffusers/pipelines/stable_diffusion/pipeline_sd.py",
                                  "diffusers/modular_pipelines/flux/x.py"}
    rows = {r.split(",")[0]: r for r in record}
    assert set(rows) == names and rows["diffusers-9.9.dist-info/RECORD"].endswith(",,")
    for name in names - {"diffusers-9.9.dist-info/RECORD"}:
        digest = base64.urlsafe_b64encode(hashlib.sha256(kept[name]).digest()).rstrip(b"=").decode()
        assert rows[name] == f"{name},sha256={digest},{len(kept[name])}"
    assert not list((tmp_path / "out").glob("*.tmp"))
