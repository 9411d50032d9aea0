"""Denoiser speed and memory: DFGN presets vs a randomly initialised diffusers ``UNet3DConditionModel``
(ModelScope text-to-video layout, 1.41 B parameters: the family DFGN and the paper's 1.2–1.3 B PEFT baselines
come from), measured in the same run on the same device (the paper's Table 8). Prints JSON; report ratios, and absolute times only from a GPU run (the card is named).

    python benchmarks/model_speed.py [--device cuda] [--frames 8] [--latent 32] [--batch 2] [--iters 10]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def build_models(device, dtype, include_peer: bool):
    from rdtf_engine.model.dfgn import build_dfgn, count_parameters

    models = {}
    for preset in ("tiny", "small", "paper"):
        if preset == "paper" and device.type == "cpu":
            continue  # 0.9 B parameters: minutes per forward on a laptop CPU, GPU only
        for temporal in ("sti", "conv3d"):
            m = build_dfgn(preset, temporal=temporal).to(device, dtype).eval()
            models[f"dfgn-{preset}-{temporal}"] = (m, count_parameters(m), "dfgn")
    # small + STI + reference attention: "on" (the shipped default: same weights, longer self-attention keys) and
    # "all" (plus a zero-initialised reference block on the 16 × 16-latent level, which has no attention otherwise)
    for mode in ("on", "all"):
        m = build_dfgn("small", temporal="sti", reference_attention=mode).to(device, dtype).eval()
        models[f"dfgn-small-sti-refattn{'' if mode == 'on' else '-all'}"] = (m, count_parameters(m), "dfgn")
    if include_peer:
        from diffusers import UNet3DConditionModel

        # Default config = ModelScope T2V's UNet (random weights): same input layout (B, 4, F, h, w) as DFGN.
        peer = UNet3DConditionModel().to(device, dtype).eval()
        models["modelscope-unet3d"] = (peer, sum(p.numel() for p in peer.parameters()), "peer")
    return models


@torch.no_grad()
def time_forward(model, kind, device, dtype, batch, frames, latent, iters) -> tuple[float, float]:
    x = torch.randn(batch, 4, frames, latent, latent, device=device, dtype=dtype)
    t = torch.full((batch,), 500, device=device)
    if kind == "dfgn":
        text = torch.randn(batch, 32, 384, device=device, dtype=dtype)
        def call():
            return model(x, t, text, x)
    else:
        text = torch.randn(batch, 77, 1024, device=device, dtype=dtype)
        def call():
            return model(x, t, encoder_hidden_states=text).sample
    call()  # warm-up (kernels, allocator)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(iters):
        call()
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / iters
    mem = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
    return dt, mem


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--latent", type=int, default=32)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--no-peer", action="store_true")
    a = ap.parse_args()
    device = torch.device(a.device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if device.type == "cpu":
        a.iters = min(a.iters, 3)
    out = {"device": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu", "dtype": str(dtype),
           "torch": torch.__version__, "threads": torch.get_num_threads(),
           "input": f"{a.batch}x4x{a.frames}x{a.latent}x{a.latent}", "results": {}}
    models = build_models(device, dtype, include_peer=not a.no_peer)
    for name, (m, params, kind) in models.items():
        dt, mem = time_forward(m, kind, device, dtype, a.batch, a.frames, a.latent, a.iters)
        out["results"][name] = {"params_m": round(params / 1e6, 2), "ms_per_forward": round(dt * 1e3, 2),
                                "peak_mem_mb": None if mem is None else round(mem, 1)}
        del m
        if device.type == "cuda":
            torch.cuda.empty_cache()
    peer = out["results"].get("modelscope-unet3d")
    if peer:
        for r in out["results"].values():
            r["time_vs_peer"] = round(r["ms_per_forward"] / peer["ms_per_forward"], 4)
            r["params_vs_peer"] = round(r["params_m"] / peer["params_m"], 4)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
