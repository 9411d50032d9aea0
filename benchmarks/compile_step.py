"""Does kernel fusion pay for the sampling step? The shipped model's guided denoiser step replayed as a CUDA graph
(what the engine runs), against the same step compiled by ``torch.compile`` (inductor: normalisations and
element-wise tails fused into fewer kernels) and then captured as a CUDA graph the same way. Prints one JSON line
per stage as it finishes, so a run cut short keeps what it measured.

The profile (``benchmarks/gpu_profile.py``) found the replay bound by its ≈ 1,500 small kernels, not arithmetic:
≈ 5 ms a step at 128 px and at 256 px alike. This measures the lever it points at, for each latent grid given:
compile time, replay time, and the largest difference of ε̂ from the eager step (the pixels would move by that).

    python benchmarks/compile_step.py [--sides 32,16] [--iters 50] [--mode default|max-autotune-no-cudagraphs]
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def _emit(**row) -> None:
    print(json.dumps(row), flush=True)


def _time(fn, example, iters: int) -> float:
    for _ in range(3):
        fn(*example)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn(*example)
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / iters * 1e3


def step_example(pipe, side: int, prompt: str = "grinning face bouncing",
                 guidance: tuple[float, float] = (4.0, 5.0)) -> list[torch.Tensor]:
    """Inputs of the pipeline's text → video step (guidance rows ∅ and ``prompt``, seeded noise at t = 500) on a
    side × side latent grid: (x, t, txt, tmask, conds, g). Also what ``benchmarks/cpu.py`` compares runtimes on."""
    gen = torch.Generator().manual_seed(0)
    frames = int(pipe.card.num_frames)
    states, tmask = pipe.text.encode(["", prompt])
    x = torch.randn(1, 4, frames, side, side, generator=gen).to(pipe.device)
    conds = torch.zeros(2, 4, frames, side, side, device=pipe.device)
    g = torch.tensor(guidance, device=pipe.device)
    return [x, torch.tensor(500, device=pipe.device), states, tmask, conds, g]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--sides", default="32,16", help="latent grids: 32 = 256 px (native), 16 = 128 px (the draft)")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--mode", default="default")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/compile_step.py needs a CUDA GPU")
    from rdtf_engine.diffusion.denoiser import CudaGraphed
    from rdtf_engine.diffusion.pipeline import StickerPipeline
    from rdtf_engine.model.store import resolve_model

    pipe = StickerPipeline.from_pretrained(resolve_model(a.model), "cuda")
    _emit(device=torch.cuda.get_device_name(0), torch=torch.__version__, mode=a.mode)
    compiled = torch.compile(pipe.step_fns.eager, mode=a.mode, dynamic=False)
    for side in (int(s) for s in a.sides.split(",") if s):
        example = step_example(pipe, side)
        with torch.no_grad():
            ref = pipe.step_fns.eager(*example)
            graph_ms = _time(CudaGraphed(pipe.step_fns.eager, example), example, a.iters)
            _emit(side=side, stage="graph", ms=round(graph_ms, 3))
            try:
                t0 = time.perf_counter()
                out = compiled(*example)
                torch.cuda.synchronize()
                compile_s = time.perf_counter() - t0
                diff = float((out - ref).abs().max())
                fused = CudaGraphed(compiled, example)
                ms = _time(fused, example, a.iters)
                _emit(side=side, stage="compiled_graph", compile_s=round(compile_s, 1), ms=round(ms, 3),
                      vs_graph=round(ms / graph_ms, 3), max_eps_diff=diff, eps_max=float(ref.abs().max()))
            except Exception as exc:  # noqa: BLE001 - a compile failure is the measurement's answer, not a crash
                _emit(side=side, stage="compiled_graph", error=f"{type(exc).__name__}: {exc}"[:400])


if __name__ == "__main__":
    main()
