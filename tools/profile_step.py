"""Where one DFGN training step spends its time: the top kernels/ops of a few profiled steps, printed as JSON.

The second GPU run measured 412 ms per step for the `small` preset at batch 128 × 8 frames × 32² latents on an
H200, i.e. ≈ 28 TFLOP/s of conv + matmul work: far from the card's bf16 peak. This finds the culprits (e.g.
masked attention falling back to a slow kernel, fp32 norms, permute copies) on the real card, in ~a minute.

    python tools/profile_step.py --preset small --batch 128 --size 32 --steps 6 [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def compile_blocks(model: torch.nn.Module, kinds: str) -> dict[str, int]:
    """torch.compile every block of the named kinds in place (nn.Module.compile); how many of each."""
    from diffusers.models.attention import FeedForward
    from diffusers.models.resnet import ResnetBlock2D

    from rdtf_engine.model.sti import MaskedTemporalConvStack

    types = {"resnet": (ResnetBlock2D,), "temporal": (MaskedTemporalConvStack,), "ff": (FeedForward,),
             "norm": (torch.nn.GroupNorm, torch.nn.LayerNorm)}
    counts: dict[str, int] = {}
    for kind in filter(None, kinds.split(",")):
        for mod in model.modules():
            if isinstance(mod, types[kind]):
                mod.compile()
                counts[kind] = counts.get(kind, 0) + 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="small")
    ap.add_argument("--temporal", default="sti")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=32, help="latent size (256 px → 32)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--compile", action="store_true", help="torch.compile the model first (does it work here, and pay off?)")
    ap.add_argument("--compile-blocks", default="",
                    help="comma list of block kinds to torch.compile one by one, the attention left eager: "
                         "resnet (ResnetBlock2D), temporal (the temporal conv stacks), ff (the transformers' "
                         "feed-forward), norm (their GroupNorm/LayerNorm); whole-model compile fails on the "
                         "masked attention's backward (docs/results.md)")
    ap.add_argument("--size-delta-rank", type=int, default=0,
                    help="build the model with size deltas of this rank (off at half the latent size: a 2× draft) "
                         "and train only them, as `rdtf train --size-delta-rank R --trainable deltas` does")
    ap.add_argument("--sdpa", default=None, choices=("math", "efficient", "flash", "cudnn"),
                    help="allow only this scaled-dot-product-attention backend (default: PyTorch's choice)")
    ap.add_argument("--full-frames", action="store_true",
                    help="no padded frames (no attention key masks): what the masks of the loss mask cost")
    args = ap.parse_args()

    from torch.profiler import ProfilerActivity, profile

    from rdtf_engine.core.device import resolve_device
    from rdtf_engine.model.dfgn import build_dfgn

    dev, mp = resolve_device(args.device, "auto")  # same backend flags as training (cuDNN SDPA off, TF32)
    if args.size_delta_rank:  # the run's architecture and what it trains, as the training loop builds them
        from rdtf_engine.core.config import ModelConfig
        from rdtf_engine.training.finetune import apply_trainable

        px = args.size * 8
        model = build_dfgn(ModelConfig(preset=args.preset, size=px, draft_size=px // 2, temporal=args.temporal,
                                       num_frames=args.frames, size_delta_rank=args.size_delta_rank))
        apply_trainable(model, "deltas")
    else:
        model = build_dfgn(args.preset, temporal=args.temporal, num_frames=args.frames)
    model = model.to(dev).train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, fused=dev.type == "cuda")
    fwd = torch.compile(model) if args.compile else model
    compiled_blocks = compile_blocks(model, args.compile_blocks)
    b, f, s = args.batch, args.frames, args.size
    x = torch.randn(b, 4, f, s, s, device=dev)
    cond = torch.zeros_like(x)
    t = torch.randint(0, 1000, (b,), device=dev)
    text = torch.randn(b, 32, 384, device=dev)
    tmask = torch.ones(b, 32, dtype=torch.bool, device=dev)
    fmask = torch.ones(b, f, dtype=torch.bool, device=dev)
    fmask[: b // 2, 5:] = False  # half the clips padded, as the loss mask makes them
    if args.full_frames:
        fmask = None

    import contextlib

    from torch.nn.attention import SDPBackend, sdpa_kernel

    backends = {"math": SDPBackend.MATH, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                "flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}

    def step() -> None:
        with (sdpa_kernel(backends[args.sdpa]) if args.sdpa else contextlib.nullcontext()), \
                torch.autocast(dev.type, dtype=torch.bfloat16, enabled=mp == "bf16"):
            eps = fwd(x, t, text, cond, frame_mask=fmask, text_mask=tmask)
        loss = (eps.float() - x).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    t_warm = time.perf_counter()
    for _ in range(3):  # warm-up (cuDNN autotuning; the compile itself with --compile)
        step()
    sync()
    warm_s = time.perf_counter() - t_warm
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    sync()
    ms = (time.perf_counter() - t0) * 1000 / args.steps
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(2):
            step()
        sync()
    key = "self_device_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    rows = sorted(prof.key_averages(), key=lambda e: getattr(e, key, 0), reverse=True)
    total = sum(getattr(e, key, 0) for e in rows) or 1
    top = [{"op": e.key[:90], "share": round(getattr(e, key, 0) / total, 4), "calls": e.count} for e in rows[: args.top]]
    print(json.dumps({"device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                      "preset": args.preset, "batch": b, "frames": f, "latent": s, "ms_per_step": round(ms, 1),
                      "compiled": args.compile, "size_delta_rank": args.size_delta_rank, "compiled_blocks": compiled_blocks, "full_frames": args.full_frames, "sdpa": args.sdpa, "warmup_s": round(warm_s, 1),
                      "clips_per_s": round(b * 1000 / ms, 1), "top": top}, indent=1))


if __name__ == "__main__":
    main()
