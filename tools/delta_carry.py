"""A size-delta model as what a GPU lease must carry: its deltas alone (model/size_deltas.py).

A model trained with ``--trainable deltas`` is the base model's DFGN, unchanged, plus its size deltas — ≈ 7 MB in
fp16 for rank 32 on the ``small`` preset, where the whole folder is ≈ 38 MB and does not fit beside the ≈ 41 MB
checkout in one 64 MiB transfer. ``split`` keeps what differs from the base; ``join`` rebuilds the full folder
from the base (the shipped model, which every checkout holds) on the other side, checking that the base's
weights are the ones the deltas were trained on.

    python tools/delta_carry.py split MODEL OUT            → OUT/{config.json, unet.json, deltas.safetensors}
    python tools/delta_carry.py join OUT MODEL [--base default] [--vae FOLDER]
                                                          (--vae: a tuned decoder's model folder vae/ or
                                                           autoencoder folder; default: the base's)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rdtf_engine.training.finetune import DELTAS  # the state-dict prefix of the deltas


def _base_digest(state: dict[str, torch.Tensor]) -> str:
    """sha256 over the base weights (every non-delta tensor, in fp16): ``join`` refuses another base."""
    h = hashlib.sha256()
    for k in sorted(state):
        if not k.startswith(DELTAS):
            h.update(k.encode())
            h.update(state[k].detach().to(torch.float16).cpu().numpy().tobytes())
    return h.hexdigest()


def split(model: Path, out: Path) -> None:
    from safetensors.torch import save_file

    from rdtf_engine.model.store import load_model_folder

    unet, _, card = load_model_folder(model)
    state = unet.state_dict()
    deltas = {k: v.detach().to(torch.float16).contiguous() for k, v in state.items() if k.startswith(DELTAS)}
    if not deltas:
        raise SystemExit(f"{model} has no size deltas: carry the whole folder")
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
    a = ap.parse_args(argv)
    if a.cmd == "split":
        split(a.model, a.out)
    else:
        join(a.carried, a.out, a.base, a.vae)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
