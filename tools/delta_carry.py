"""A size-, style- or few-step-delta model as what a GPU lease must carry: its deltas alone (model/size_deltas.py).

A model trained with ``--trainable deltas`` is the base model's DFGN, unchanged, plus its size deltas — ≈ 7 MB in
fp16 for rank 32 on the ``small`` preset, where the whole folder is ≈ 38 MB and does not fit beside the ≈ 41 MB
checkout in one 64 MiB transfer. ``split`` keeps what differs from the base; ``join`` rebuilds the full folder
from the base (the shipped model, which every checkout holds) on the other side, checking that the base's
weights are the ones the deltas were trained on.

    python tools/delta_carry.py split MODEL OUT            → OUT/{config.json, unet.json, deltas.safetensors}
    python tools/delta_carry.py join OUT MODEL [--base default] [--vae FOLDER]
                                                          (--vae: a tuned decoder's model folder vae/ or
                                                           autoencoder folder; default: the base's)
    python tools/delta_carry.py ship MODEL OUT [--base default]

``ship`` writes MODEL as the folder to commit over the base: its ``unet/`` keeps the base's weight files byte for
byte and adds each kind of deltas the base lacks as one more shard (``diffusion_pytorch_model-size-deltas…`` /
``-style-deltas.safetensors``) that the index names, so git stores the unchanged base once and every clone grows by
the new deltas (and a new decoder) alone. Deltas the base already holds must be the base's, unchanged (a style
run keeps its size deltas frozen). The written folder is loaded back and compared with MODEL, tensor by tensor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rdtf_engine.model.size_deltas import PREFIXES  # the state-dict prefixes of the kinds of deltas


def _base_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the base weights (every non-delta tensor, in fp16): ``join`` refuses another base."""
    h = hashlib.sha256()
    for k in sorted(state):
        if not k.startswith(PREFIXES):
            h.update(k.encode())
            h.update(state[k].detach().to(torch.float16).cpu().numpy().tobytes())
    return h.hexdigest()


def _fp16(state: dict[str, torch.Tensor], prefixes: str | tuple[str, ...]) -> dict[str, torch.Tensor]:
    """The tensors of ``state`` under ``prefixes`` as they are stored: fp16, contiguous."""
    return {k: v.detach().to(torch.float16).contiguous() for k, v in state.items() if k.startswith(prefixes)}


def split(model: Path, out: Path) -> None:
    from safetensors.torch import save_file

    from rdtf_engine.model.store import load_model_folder

    unet, _, card = load_model_folder(model)
    state = unet.state_dict()
    deltas = _fp16(state, PREFIXES)
    if not deltas:
        raise SystemExit(f"{model} has no size or style deltas: carry the whole folder")
    out.mkdir(parents=True, exist_ok=True)
    save_file(deltas, str(out / "deltas.safetensors"), metadata={"base": _base_digest(state)})
    (out / "unet.json").write_text(json.dumps(dict(unet.config), indent=1))
    (out / "config.json").write_text(json.dumps(card.to_dict(), indent=1))
    print(f"{len(deltas)} delta tensors → {out} ({(out / 'deltas.safetensors').stat().st_size / 2**20:.1f} MiB)")


def join(carried: Path, out: Path, base: str, vae_dir: Path | None) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    from rdtf_engine.core.config import ModelCard
    from rdtf_engine.model.dfgn import DFGN
    from rdtf_engine.model.store import load_model_folder, load_module_folder, resolve_model, save_model_folder

    base_unet, vae, _ = load_model_folder(resolve_model(base))
    config = {k: v for k, v in json.loads((carried / "unet.json").read_text()).items() if not k.startswith("_")}
    unet = DFGN.from_config(config)
    with safe_open(str(carried / "deltas.safetensors"), "pt") as f:
        want = (f.metadata() or {}).get("base")
    state = base_unet.state_dict()
    if want != _base_digest(state):
        raise SystemExit(f"the deltas in {carried} were trained on another base than {base}")
    state.update({k: v.float() for k, v in load_file(str(carried / "deltas.safetensors")).items()})
    unet.load_state_dict(state, strict=True)  # every base tensor and every delta, nothing left out
    if vae_dir is not None:
        sub = vae_dir / "vae" if (vae_dir / "vae" / "config.json").is_file() else vae_dir
        vae = load_module_folder(sub, "vae")
    card = ModelCard.from_dict(json.loads((carried / "config.json").read_text()))
    save_model_folder(out, unet.eval(), vae.eval(), card, dtype=torch.float16)
    print(f"joined {base} + {carried.name} → {out}")


def shard_name(prefix: str) -> str:
    """"size_deltas." → diffusion_pytorch_model-size-deltas.safetensors (the shard of one kind of deltas)."""
    return f"diffusion_pytorch_model-{prefix.rstrip('.').replace('_', '-')}.safetensors"


def ship(model: Path, out: Path, base: str) -> None:
    import os
    import shutil
    import tempfile

    from safetensors.torch import save_file

    from rdtf_engine.core.model_trust import INDEX, WEIGHTS
    from rdtf_engine.model.store import load_model_folder, resolve_model

    base_dir = resolve_model(base)
    if base_dir.resolve() == out.resolve():
        raise SystemExit("ship writes a new folder; move it over the base afterwards (git sees the unchanged shards)")
    unet, _, _ = load_model_folder(model)
    base_unet, _, _ = load_model_folder(base_dir)
    state, base_state = unet.state_dict(), base_unet.state_dict()
    if _base_digest(state) != _base_digest(base_state):
        raise SystemExit(f"{model}'s base weights are not {base}'s: its unet cannot reuse the base's files")
    new = {}  # shard name → the fp16 deltas of a kind the base lacks
    for prefix in PREFIXES:
        mine = _fp16(state, prefix)
        held = {k: v for k, v in base_state.items() if k.startswith(prefix)}
        if held and (held.keys() != mine.keys() or any(not torch.equal(held[k].half(), mine[k]) for k in held)):
            raise SystemExit(f"{model}'s {prefix.rstrip('.')} differ from {base}'s: ship it against a base without them")
        if mine and not held:
            new[shard_name(prefix)] = mine
    if not new:
        raise SystemExit(f"{model} has no deltas beyond {base}'s: nothing to ship")
    index = base_dir / "unet" / INDEX
    weight_map = (json.loads(index.read_text())["weight_map"] if index.is_file()
                  else {k: WEIGHTS for k in base_state})
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        for item in model.iterdir():  # the card, the decoder, the notes: as trained
            if item.name != "unet":
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
        (tmp / "unet").mkdir()
        shutil.copy2(model / "unet" / "config.json", tmp / "unet" / "config.json")
        for name in dict.fromkeys(weight_map.values()):
            shutil.copyfile(base_dir / "unet" / name, tmp / "unet" / name)  # byte for byte: git stores it once
        for name, deltas in new.items():
            save_file(deltas, str(tmp / "unet" / name))
            weight_map.update({k: name for k in deltas})
        total = sum(v.numel() * 2 for v in state.values())  # bytes: every tensor is fp16 on disk
        (tmp / "unet" / INDEX).write_text(json.dumps({"metadata": {"total_size": total},
                                                      "weight_map": dict(sorted(weight_map.items()))}, indent=2))
        for f in tmp.rglob("*"):
            f.chmod(0o755 if f.is_dir() else 0o644)
        shipped, _, _ = load_model_folder(tmp)  # the trust checks, then every tensor as the trained folder has it
        mine = shipped.state_dict()
        if mine.keys() != state.keys() or any(not torch.equal(mine[k], state[k]) for k in state):
            raise SystemExit("the written folder does not load as the model: nothing written")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, deltas in new.items():
        print(f"{model} → {out}: the base's unet files and {len(deltas)} delta tensors in {name} "
              f"({(out / 'unet' / name).stat().st_size / 2**20:.1f} MiB)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("split")
    s.add_argument("model", type=Path)
    s.add_argument("out", type=Path)
    j = sub.add_parser("join")
    j.add_argument("carried", type=Path)
    j.add_argument("out", type=Path)
    j.add_argument("--base", default="default")
    j.add_argument("--vae", type=Path, default=None)
    s = sub.add_parser("ship")
    s.add_argument("model", type=Path)
    s.add_argument("out", type=Path)
    s.add_argument("--base", default="default")
    a = ap.parse_args(argv)
    if a.cmd == "split":
        split(a.model, a.out)
    elif a.cmd == "ship":
        ship(a.model, a.out, a.base)
    else:
        join(a.carried, a.out, a.base, a.vae)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
