"""The DFGN's masked attention on one GPU: does a key mask keep it off the fast kernels, and what would it gain?

Training always passes a frame mask (the loss mask pads clips), and PyTorch's flash kernel takes no mask, so every
masked attention call of the DFGN runs the memory-efficient kernel. This times, forward + backward in bf16 on the
shapes the `small` preset trains at (batch 128, 8 frames, half the clips padded):

- ``masked``: the engine's ``masked_attention`` (boolean key mask → memory-efficient kernel);
- ``bias_column``: the same attention with the mask carried as one more channel of q and k (q gets 1, k gets 0 on
  real frames and −10⁴/scale on padded ones, padded to a multiple of 8 with zeros), no mask, so SDPA may pick flash;
  exact up to rounding: a padded key's weight is exp(−10⁴) = 0, and an all-padded row (which the data never makes)
  sees every key alike, as ``masked_attention`` lets it, its logits rounded near −10⁴ (≈ 10⁻³ apart);
- ``unmasked``: no mask at all (what flash costs here: the floor any mask trick can reach).

Prints JSON: ms per forward + backward of each variant per shape, the ratios to ``masked`` and the largest output
difference against it. The CPU runs it too (tests use tiny shapes) but only GPU times mean anything.

    python benchmarks/attention.py [--batch 128] [--size 128] [--iters 20]
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from rdtf_engine.model.blocks import masked_attention

PAD_TO = 8  # flash attention takes head dims in multiples of 8
BIG = 1e4  # logit penalty of a padded key after scaling: exp(-1e4) is 0 in fp32


def bias_column_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
    """``masked_attention`` with the key mask folded into one extra q/k channel. q, k, v: (N, h, T, d); key_mask
    (N, T) bool → (N, h, T, d)."""
    n, h, t, d = q.shape
    scale = d ** -0.5
    extra = -(-(d + 1) // PAD_TO) * PAD_TO - d  # channels added: the mask's one, then zeros up to a multiple of 8
    penalty = torch.where(key_mask, 0.0, -BIG / scale).to(k.dtype)[:, None, :, None].expand(n, h, t, 1)
    zeros = q.new_zeros(n, h, t, extra - 1)
    q2 = torch.cat([q, torch.ones_like(penalty), zeros], dim=-1)
    k2 = torch.cat([k, penalty, zeros], dim=-1)
    v2 = F.pad(v, (0, extra))
    return F.scaled_dot_product_attention(q2, k2, v2, scale=scale)[..., :d]


def shapes(batch: int, size: int, frames: int) -> dict[str, tuple[int, int, int, int]]:
    """(N sequences, heads, tokens, head dim) of the `small` preset's attention calls at ``size`` px."""
    lat = size // 8
    out = {"temporal_in": (batch * lat * lat, 2, frames, 32)}  # transformer_in: every pixel of level 0
    for level, res in enumerate((lat, lat // 2, lat // 4)):
        small = max(res // 2, 1)
        out[f"sti_level{level}"] = (batch, 4, frames * small * small, 32)  # joint attention of a clip's frames
    return out


def _time(fn, iters: int, device: str) -> float:
    for _ in range(2):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters


def measure(n: int, h: int, t: int, d: int, frames: int, iters: int, device: str, dtype: torch.dtype) -> dict:
    g = torch.Generator(device="cpu").manual_seed(0)
    q, k, v = (torch.randn(n, h, t, d, generator=g).to(device, dtype).requires_grad_() for _ in range(3))
    fmask = torch.ones(n, frames, dtype=torch.bool)
    fmask[: n // 2, frames - 3:] = False  # half the sequences padded, as the loss mask makes them
    key_mask = fmask.repeat_interleave(t // frames, dim=1).to(device)
    variants = {"masked": lambda: masked_attention(q, k, v, key_mask),
                "bias_column": lambda: bias_column_attention(q, k, v, key_mask),
                "unmasked": lambda: masked_attention(q, k, v, None)}
    with torch.no_grad():
        ref = variants["masked"]().float()
    out = {"shape": [n, h, t, d]}
    for name, fn in variants.items():
        def step(fn=fn) -> None:
            fn().float().square().mean().backward()
        try:
            out[f"{name}_ms"] = round(_time(step, iters, device) * 1e3, 3)
            if name != "unmasked":
                with torch.no_grad():
                    out[f"{name}_max_diff"] = float((fn().float() - ref).abs().max())
        except RuntimeError as exc:  # a kernel that refuses the shape (it happened: cuDNN's backward at 256 px)
            out[f"{name}_error"] = f"{exc}"[:300]
    for name in ("bias_column", "unmasked"):
        if f"{name}_ms" in out and "masked_ms" in out:
            out[f"{name}_vs_masked"] = round(out[f"{name}_ms"] / out["masked_ms"], 3)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--size", type=int, default=128, help="frame size in px (latent = size / 8)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    dtype = torch.bfloat16 if a.device == "cuda" else torch.float32
    if a.device == "cuda":  # the attention backends the engine allows (it switches cuDNN's off)
        from rdtf_engine.core.device import configure_cuda

        configure_cuda()
    out: dict = {"device": torch.cuda.get_device_name(0) if a.device == "cuda" else "cpu", "dtype": str(dtype),
                 "batch": a.batch, "size": a.size}
    for name, (n, h, t, d) in shapes(a.batch, a.size, a.frames).items():
        out[name] = measure(n, h, t, d, a.frames, a.iters, a.device, dtype)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
