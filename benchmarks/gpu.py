"""The project's GPU benchmark: the shipped model and the `paper` preset against an AnimateDiff-sized peer, built
and timed in one process on one card, so every figure has its peer beside it. Prints JSON (ratios first; the
absolute times are only meaningful with the card's name, which is printed too).

Peer: a randomly initialised diffusers ``UNetMotionModel`` (Stable Diffusion 1.5 UNet layout + a motion adapter,
≈ 1.3 B parameters) with an SD-layout ``AutoencoderKL``, bf16, classifier-free guidance as batch 2.

- B1  text → 8-frame RGBA sticker, end to end (text encoder, sampling, decode) with the shipped model at its
      native size: today's 20 DPM-Solver++ steps eager, the same with the denoiser step replayed as a CUDA
      graph, and few-step samplers with graphs (``B1_VARIANTS``); the peer's 25-step 16-frame clip (UNet steps +
      VAE decode) beside them.
- B2  one denoiser step of the `paper` preset at 16 frames × 256 px (latent 32), CFG batch 2, against the
      peer's step on the same latent shape, eager and compiled: as autocast runs it, with bf16 weights, as a CUDA
      graph, channels-last, and compiled by ``torch.compile`` before its capture; each with its share of the
      card's bf16 matrix rate and its difference from the autocast step.
- B3  training: a full step (forward, masked ε-MSE, backward, fused AdamW) of the shipped config at batch
      ``--train-batch`` and of the `paper` preset at batch 4; clips/s and model FLOP utilisation (FLOPs counted
      by torch's FlopCounterMode over one step, against the card's bf16 matrix rate measured in the same run);
      the shipped config's whole step captured as one CUDA graph at ``--train-batch`` and 4× it too.

    python benchmarks/gpu.py [--skip-peer] [--iters 20] [--train-batch 128] [--model FOLDER] [--parts b1,b2,b3]
                             [--no-compile]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import torch


def timed(fn: Callable[[], object], iters: int, warmup: int = 2) -> float:
    """Median seconds per call over ``iters`` calls after ``warmup`` ones, device-synchronised."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return sorted(times)[len(times) // 2]


def matmul_peak_tflops() -> float:
    """The card's bf16 matrix rate on random 8192³ operands (the MFU denominator), measured now."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    s = timed(lambda: a @ b, 10, warmup=3)
    return 2 * 8192**3 / s / 1e12


# The SD 1.5 UNet layout, and a tiny one of the same structure (the CPU test builds and runs that one).
PEER_LAYOUTS = {
    "sd15": {"unet": {"sample_size": 64, "block_out_channels": (320, 640, 1280, 1280), "layers_per_block": 2,
                      "cross_attention_dim": 768, "attention_head_dim": 8},
             "vae": (128, 256, 512, 512)},
    "tiny": {"unet": {"sample_size": 8, "block_out_channels": (32, 64, 64, 64), "layers_per_block": 1,
                      "cross_attention_dim": 32, "attention_head_dim": 8},
             "vae": (32, 32, 32, 32)},
}


def build_peer(device: str = "cuda", dtype: torch.dtype = torch.bfloat16, layout: str = "sd15"):
    """→ (UNetMotionModel, AutoencoderKL), randomly initialised on ``device`` (built there: no 1.3 B-parameter
    initialisation on the host)."""
    from diffusers import AutoencoderKL, MotionAdapter, UNet2DConditionModel, UNetMotionModel

    cfg = PEER_LAYOUTS[layout]
    with torch.device(device):
        unet2d = UNet2DConditionModel(
            **cfg["unet"],
            down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        )
        adapter = MotionAdapter(block_out_channels=cfg["unet"]["block_out_channels"],
                                motion_layers_per_block=cfg["unet"]["layers_per_block"])
        unet = UNetMotionModel.from_unet2d(unet2d, adapter)
        vae = AutoencoderKL(
            block_out_channels=cfg["vae"], layers_per_block=2, latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        )
    return unet.to(device, dtype).eval(), vae.to(device, dtype).eval()


def peer_step_fn(unet, frames: int, latent: int) -> Callable[[], object]:
    """One guided peer step: sample (2, 4, F, h, w), CFG cond + uncond. UNetMotionModel folds the frames into the
    batch for its spatial layers, so the text states must already be per frame, (2·F, 77, D), as diffusers'
    AnimateDiff pipeline passes them; (2, 77, D) makes the spatial cross-attention fail with a shape error."""
    p = next(unet.parameters())
    x = torch.randn(2, 4, frames, latent, latent, device=p.device, dtype=p.dtype)
    text = torch.randn(2, 77, unet.config.cross_attention_dim, device=p.device, dtype=p.dtype)
    text = text.repeat_interleave(frames, dim=0)  # (2·F, 77, D)
    t = torch.tensor([500, 500], device=p.device)

    def step():
        with torch.no_grad():  # inside the call: a decorator on this factory would not cover the timed calls
            return unet(x, t, encoder_hidden_states=text).sample

    return step


@torch.no_grad()
def peer_clip_s(unet, vae, frames: int, latent: int, steps: int, iters: int) -> float:
    step = peer_step_fn(unet, frames, latent)
    z = torch.randn(frames, 4, latent, latent, device="cuda", dtype=torch.bfloat16)

    def clip() -> None:
        for _ in range(steps):
            step()
        vae.decode(z).sample  # noqa: B018 - the decode is the work being timed

    return timed(clip, iters, warmup=1)


def step_inputs(frames: int, latent: int, device: str = "cuda",
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A guided step's inputs, CFG batch 2: noisy latents (2, 4, F, h, w), timesteps (2,), text states (2, 32, 384)."""
    x = torch.randn(2, 4, frames, latent, latent, device=device, generator=generator)
    text = torch.randn(2, 32, 384, device=device, generator=generator)
    return x, torch.tensor([500, 500], device=device), text


def dfgn_step_fn(model, frames: int, latent: int, device: str = "cuda",
                 inputs: tuple[torch.Tensor, ...] | None = None) -> Callable[[], object]:
    """One guided denoiser step (CFG batch 2) as B2 has always timed it: fp32 weights under bf16 autocast, on
    ``inputs`` (``step_inputs``'s; fresh random ones if None)."""
    x, t, text = inputs if inputs is not None else step_inputs(frames, latent, device)

    def step():
        with torch.no_grad(), torch.autocast(device, dtype=torch.bfloat16):
            return model(x, t, text, torch.zeros_like(x))

    return step


def paper_step_arms(iters: int, preset: str = "paper", frames: int = 16, latent: int = 32, device: str = "cuda",
                    peak_tflops: float = 0.0, compile_step: bool = True) -> dict:
    """B2's arms on one network: as autocast runs it (the baseline: every matrix weight cast to bf16 in every
    step, the profile's largest kernel), with the weights stored in bf16 (no casts; the normalisations then run
    in bf16 too), and on a GPU that step replayed as a CUDA graph (no launch gaps), with channels-last weights,
    and compiled by ``torch.compile`` (inductor: the normalisations, element-wise tails and layout copies fused)
    before its capture. Each arm's largest difference of ε̂ from the baseline, relative to the baseline's largest
    value, says what the change costs in exactness; with ``peak_tflops`` each time also as a share of the card's
    bf16 matrix rate (the step's FLOPs counted once)."""
    from rdtf_engine.model.dfgn import build_dfgn

    net = build_dfgn(preset, num_frames=frames).to(device).eval()
    x, t, text = step_inputs(frames, latent, device, torch.Generator(device=device).manual_seed(0))
    baseline = dfgn_step_fn(net, frames, latent, device, (x, t, text))
    flops = step_flops(baseline)
    arms = {"paper_step_ms": round(timed(baseline, iters) * 1e3, 2), "step_gflop": round(flops / 1e9, 3)}
    ref = baseline().float()
    net = net.to(torch.bfloat16)
    example = [x.bfloat16(), t, text.bfloat16(), torch.zeros_like(x, dtype=torch.bfloat16)]

    def bf16_step(*a: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(*a)

    def rel(out: torch.Tensor) -> float:
        return round(float((out.float() - ref).abs().max() / ref.abs().max()), 4)

    arms["paper_step_bf16_weights_ms"] = round(timed(lambda: bf16_step(*example), iters) * 1e3, 2)
    arms["bf16_weights_max_rel_diff"] = rel(bf16_step(*example))
    if device == "cuda":
        arms.update(_graphed_arms(net, bf16_step, example, rel, iters, compile_step))
    if peak_tflops:
        arms["share_of_peak"] = {k[:-3]: round(flops / 1e12 / (v / 1e3) / peak_tflops, 3)
                                 for k, v in arms.items() if k.endswith("_ms")}
    return arms


def _graphed_arms(net, step: Callable[..., torch.Tensor], example: list[torch.Tensor], rel: Callable, iters: int,
                  compile_step: bool) -> dict:
    """B2's CUDA-graph arms: the bf16 step captured as it is, with channels-last 2-D weights (aimed at cuDNN's
    NCHW ↔ NHWC conversions, the bf16 step's largest kernel; measured: no change, the activations stay NCHW), and
    compiled before its capture (``compile_s``: the first call's compile time)."""
    from rdtf_engine.diffusion.denoiser import CudaGraphed

    arms: dict = {}
    variants = [("bf16_graph", torch.contiguous_format, step), ("bf16_channels_last_graph", torch.channels_last, step)]
    if compile_step:
        variants.append(("bf16_compiled_graph", torch.contiguous_format, torch.compile(step, dynamic=False)))
    for name, layout, fn in variants:
        weights_layout(net, layout)
        try:
            first_s = first_call_s(fn, *example)  # (a compiled step compiles here)
            if fn is not step:
                arms[f"{name}_compile_s"] = round(first_s, 1)
            graph = CudaGraphed(fn, example)
            arms[f"paper_step_{name}_ms"] = round(timed(lambda g=graph: g(*example), iters) * 1e3, 2)
            arms[f"{name}_max_rel_diff"] = rel(graph(*example))
        except Exception as exc:  # noqa: BLE001 - a refused capture or compile is a result, not a reason to stop
            arms[f"{name}_error"] = f"{type(exc).__name__}: {exc}"[:300]
    return arms


# B1 variants: (sampler, steps, CUDA graphs). The first is today's default, eager (the B1 baseline), the second the
# same with graphs (their stickers are compared pixel by pixel).
B1_VARIANTS = (("dpm", 20, False), ("dpm", 20, True), ("dpm", 8, True), ("unipc", 8, True), ("unipc", 6, True))
FEW_STEP_VARIANTS = (("lcm", 4, True), ("lcm", 8, True))  # a model with few-step deltas (--model): its sampler too


def shipped_sticker(iters: int, device: str = "cuda", model: str = "default") -> dict:
    """B1: the real request path (jobs.api.generate) without writing a file, text states cached after warm-up,
    for each of ``B1_VARIANTS`` (and ``FEW_STEP_VARIANTS`` for a distilled model); with the largest pixel
    difference between the graph and eager stickers."""
    from rdtf_engine.core.requests import GenerateRequest
    from rdtf_engine.jobs import api
    from rdtf_engine.model.store import resolve_model, validate_model_folder

    model_dir = resolve_model(model)
    card = validate_model_folder(model_dir)
    pipe = api._pipeline(model_dir, device)  # the pipeline generate() uses: switch its graphs on and off
    out: dict = {"model": card.name, "size": int(card.size), "preset": card.preset, "frames": 8}
    stickers = {}
    few = getattr(pipe.unet, "few_step_deltas", None) is not None
    for sampler, steps, graphs in B1_VARIANTS + (FEW_STEP_VARIANTS if few else ()):
        req = GenerateRequest(prompt="grinning face bouncing", model=str(model_dir), frames=8, size=int(card.size),
                              steps=steps, seed=1, scheduler=sampler, device=device)
        pipe.step_fns.enabled = graphs
        name = f"{'graph' if graphs else 'eager'}_{sampler}_{steps}"
        out[f"{name}_ms"] = round(timed(lambda req=req: generate_frames(api, req), iters, warmup=2) * 1e3, 1)
        stickers[name] = generate_frames(api, req)
    pipe.step_fns.enabled = True
    out["graphs_captured"] = sum(g is not None for g in pipe.step_fns._built.values())
    eager, graph = (stickers[n] for n in list(stickers)[:2])  # the first two variants: one sampler, eager and graph
    out["graph_vs_eager_max_pixel_diff"] = int(abs(graph.astype(int) - eager.astype(int)).max())
    out.update(channels_last_arm(api, pipe, model_dir, int(card.size), iters, graph, device))
    return out


def channels_last_arm(api, pipe, model_dir, size: int, iters: int, reference, device: str = "cuda") -> dict:
    """The graphed 20-step sticker again with the denoiser's 2-D convolution weights channels-last (cuDNN picks its
    NHWC kernels without converting the weights in every call), then the network put back as it was."""
    from rdtf_engine.core.requests import GenerateRequest

    req = GenerateRequest(prompt="grinning face bouncing", model=str(model_dir), frames=8, size=size, steps=20,
                          seed=1, scheduler="dpm", device=device)
    pipe.step_fns.clear()
    weights_layout(pipe.unet, torch.channels_last)
    try:
        ms = round(timed(lambda: generate_frames(api, req), iters, warmup=2) * 1e3, 1)
        diff = abs(generate_frames(api, req).astype(int) - reference.astype(int))
        # other kernels round differently and 28 steps carry it on: the largest difference sits where un-premultiplying
        # divides a nearly transparent pixel's colour by its alpha, so the share of values moved by > 2 levels says more
        return {"graph_dpm_20_channels_last_ms": ms, "channels_last_vs_graph_max_pixel_diff": int(diff.max()),
                "channels_last_vs_graph_share_over_2_levels": round(float((diff > 2).mean()), 5)}
    except Exception as exc:  # noqa: BLE001 - a layout the network refuses is a result, not the end of the run
        return {"channels_last_error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        weights_layout(pipe.unet, torch.contiguous_format)
        pipe.step_fns.clear()


def weights_layout(module: torch.nn.Module, layout: torch.memory_format) -> None:
    """Every 4-D weight of ``module`` (the 2-D convolutions') in ``layout``, in place; ``Module.to(memory_format=)``
    refuses a network that also holds 5-D weights (the temporal layers' Conv3d). A sampling model's merged delta
    weights are dropped (frozen afresh), so that they are merged again from the weights in their new layout."""
    from rdtf_engine.model.size_deltas import freeze_deltas

    with torch.no_grad():
        for p in module.parameters():
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=layout)
    if any(getattr(m, "_frozen", None) is not None for m in module.modules()):
        freeze_deltas(module)


def generate_frames(api, req):
    return api.generate(req).frames


def train_step_fn(model, batch: int, frames: int, latent: int, device: str = "cuda",
                  graphed: bool = False) -> Callable[[], None]:
    """One full training step as the loop does it: bf16 autocast forward, masked ε-MSE, backward, fused AdamW.

    ``graphed``: the whole step (forward, backward and the optimizer's update) captured once as a CUDA graph and
    replayed: what the step costs without a single kernel launch from Python — the ceiling of graphing the real
    loop (whose inputs would be copied into static buffers first). The optimizer is then ``capturable`` (its step
    counter on the device), autocast's weight cache off (a graph must not keep the cast copies of one replay), and
    the gradients live in the graph's memory pool: each replay overwrites them instead of accumulating."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True, capturable=graphed)
    x = torch.randn(batch, 4, frames, latent, latent, device=device)
    t = torch.randint(0, 1000, (batch,), device=device)
    text = torch.randn(batch, 32, 384, device=device)
    fmask = torch.ones(batch, frames, dtype=torch.bool, device=device)
    fmask[: batch // 2, frames - 3:] = False  # half the clips padded, as the loss mask makes them
    w = fmask[:, None, :, None, None].float()
    dtype = torch.bfloat16 if device == "cuda" else torch.float32  # (bf16 autocast on a CPU only slows a test)

    def forward_backward() -> torch.Tensor:
        with torch.autocast(device, dtype=dtype, cache_enabled=not graphed, enabled=device == "cuda"):
            eps = model(x, t, text, torch.zeros_like(x), frame_mask=fmask)
        loss = ((eps.float() - x) ** 2 * w).sum() / w.sum().clamp_min(1) / x[0, :, 0].numel()
        loss.backward()
        return loss.detach()

    def step() -> None:
        forward_backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    if not graphed:
        return step
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up off the capturing stream (cuDNN/cuBLAS choose their kernels here)
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # the gradients are None here, so backward allocates them in the graph's pool
        forward_backward()
        opt.step()
    return graph.replay


def step_flops(step: Callable[[], None]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return float(counter.get_total_flops())


def training(preset: str, batch: int, frames: int, latent: int, peak: float, iters: int, ref: str = "off",
             graphed: bool = False) -> dict:
    from rdtf_engine.model.dfgn import build_dfgn

    out = {"preset": preset, "batch": batch, "frames": frames, "latent": latent, "cuda_graph": graphed}
    model = step = None
    try:
        model = build_dfgn(preset, num_frames=frames, reference_attention=ref).to("cuda").train()
        flops = step_flops(train_step_fn(model, batch, frames, latent))  # counted eagerly: a graph hides its ops
        step = train_step_fn(model, batch, frames, latent, graphed=graphed)
        torch.cuda.reset_peak_memory_stats()
        s = timed(step, iters, warmup=3)
        out.update({"ms_per_step": round(s * 1e3, 2), "clips_per_s": round(batch / s, 1),
                    "mfu": round(flops / s / 1e12 / peak, 4),
                    "peak_vram_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)})
    except Exception as exc:  # noqa: BLE001 - one arm failing (a capture error, out of memory) must not lose the rest
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
    del model, step
    torch.cuda.empty_cache()
    return out


def run_peer(out: dict, iters: int, compile_step: bool = False) -> None:
    """The peer's clip and step (with ``compile_step`` and B2 measured, also its step compiled by ``torch.compile``,
    what B2 must beat), and the B1/B2 ratios. Any failure (a diffusers version without the motion classes, a
    shape error, out of memory) is reported in the JSON as ``peer_error``, never fatal."""
    unet = vae = None
    try:
        unet, vae = build_peer()
        peer_clip = peer_clip_s(unet, vae, 16, 32, 25, max(3, iters // 5))
        peer_step = timed(peer_step_fn(unet, 16, 32), iters)
        out["peer"] = {"params_b": round(sum(p.numel() for p in unet.parameters()) / 1e9, 3),
                       "clip_25_steps_ms": round(peer_clip * 1e3, 1), "step_ms": round(peer_step * 1e3, 2)}
        if "B1" in out:
            out["B1"]["speedup_vs_peer"] = {k[:-3]: round(peer_clip * 1e3 / v, 2) for k, v in out["B1"].items()
                                            if k.endswith("_ms")}
        if "B2" in out:
            out["B2"]["time_vs_peer"] = _ratios(out["B2"], peer_step)
            if compile_step:
                out["peer"].update(_compiled_peer_step(unet, iters))
                out["B2"]["time_vs_peer_compiled"] = _ratios(out["B2"], out["peer"]["compiled_step_ms"] / 1e3)
    except Exception as exc:  # noqa: BLE001 - the peer is context for the ratios, never a reason to lose the run
        out["peer_error"] = f"{type(exc).__name__}: {exc}"[:500]
    finally:
        del unet, vae
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _ratios(b2: dict, seconds: float) -> dict:
    return {k[:-3]: round(v / 1e3 / seconds, 3) for k, v in b2.items() if k.endswith("_ms")}


def _compiled_peer_step(unet, iters: int) -> dict:
    """The peer's guided step compiled by ``torch.compile`` (inductor, static shapes): its compile time and step."""
    step = torch.compile(peer_step_fn(unet, 16, 32), dynamic=False)
    compile_s = first_call_s(step)
    return {"compiled_step_ms": round(timed(step, iters) * 1e3, 2), "compile_s": round(compile_s, 1)}


def first_call_s(fn: Callable[..., object], *args: torch.Tensor) -> float:
    """Seconds of one call of ``fn``, device-synchronised: a compiled function's compile time on its first call."""
    import time

    t0 = time.perf_counter()
    fn(*args)
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--train-batch", type=int, default=128)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--no-compile", action="store_true", help="leave out B2's compiled arms (ours and the peer's: "
                    "≈ 100 s of compiling each)")
    ap.add_argument("--model", default="default", help="the model of B1 (a distilled one adds its few-step sampler)")
    ap.add_argument("--parts", default="b1,b2,b3", help="which targets to measure (comma-separated; the peer's clip "
                    "and step are measured whenever B1 or B2 is)")
    a = ap.parse_args()
    parts = {p.strip().lower() for p in a.parts.split(",") if p.strip()}
    if not parts or parts - {"b1", "b2", "b3"}:
        raise SystemExit(f"--parts takes b1, b2 and b3, got {a.parts!r}")
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA GPU")
    from rdtf_engine.core.device import configure_cuda

    configure_cuda()
    torch.backends.cuda.matmul.allow_tf32 = True
    out: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    peak = matmul_peak_tflops()
    out["bf16_matmul_tflops"] = round(peak, 1)

    if "b1" in parts:
        out["B1"] = shipped_sticker(a.iters, model=a.model)
    if "b2" in parts:
        out["B2"] = paper_step_arms(a.iters, peak_tflops=peak, compile_step=not a.no_compile)
        torch.cuda.empty_cache()  # (the network went with the function's frame)
    if not a.skip_peer and parts & {"b1", "b2"}:
        run_peer(out, a.iters, compile_step="b2" in parts and not a.no_compile)
    if "b3" in parts:
        out["B3"] = training_arms(a.train_batch, peak, a.iters)
    print(json.dumps(out, indent=2))


def training_arms(train_batch: int, peak: float, iters: int) -> dict:
    """B3: the shipped layout (small preset, 8 frames at 128 px = latent 16, reference attention on) at
    ``train_batch``, the `paper` preset at batch 4, and the shipped step captured whole as one CUDA graph at
    ``train_batch`` and 4× it (a fuller card)."""
    arms = {"shipped": training("small", train_batch, 8, 16, peak, iters, ref="on"),
            "paper": training("paper", 4, 16, 32, peak, max(5, iters // 2))}
    for batch in sorted({train_batch, 4 * train_batch}):
        arms[f"shipped_graphed_{batch}"] = training("small", batch, 8, 16, peak, iters, ref="on", graphed=True)
    return arms


if __name__ == "__main__":
    main()
