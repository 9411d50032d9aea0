"""Where the GPU time goes: the shipped model's sticker split into its phases, and the top kernels of a denoiser
step (the `small` preset at the native size, and the `paper` preset of B2). Prints JSON; the profile that
decides what `benchmarks/gpu.py`'s B1 and B2 are worth optimising next.

- ``sticker``: one text → 8-frame sticker through the real request path (``jobs.api.generate``, CUDA graphs on,
  text states cached), each pipeline phase timed with the device synchronised at its edges — text encoding,
  the draft and refinement denoising loops (inside them: the schedulers' set-up and updates, the denoiser calls,
  the rest of the loop), the decodes, the encode of the enlarged draft, the conversions to RGBA and the host
  resampling (``fit_canvas``) — for the sampler of each of ``--samplers``. Each phase synchronises the device at
  its edges, so the phases add up to more than an unobserved sticker takes (``total_ms`` is the observed one).
- ``kernels``: the top CUDA kernels by device time of ``--iters`` eager denoiser steps (guidance batch 2, bf16
  autocast as B2 runs them) under ``torch.profiler``: the `small` preset (the shipped model's network, freshly
  initialised, without its deltas) at 256 px (latent 32) and the `paper` preset at 16 frames × 256 px.

    python benchmarks/gpu_profile.py [--iters 5] [--samplers unipc:10,dpm:20] [--top 15]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script: benchmarks.gpu beside it


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class PhaseClock:
    """Wall time per named phase, the device synchronised at each phase's start and end; nested phases count in
    their own name only (the outer phase's time excludes them)."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []

    @contextmanager
    def phase(self, name: str):
        _sync()
        if self._stack:  # pause the enclosing phase
            outer = self._stack[-1]
            self.ms[outer[0]] += (time.perf_counter() - outer[1]) * 1e3
        self._stack.append([name, time.perf_counter()])
        try:
            yield
        finally:
            _sync()
            _, t0 = self._stack.pop()
            self.ms[name] += (time.perf_counter() - t0) * 1e3
            if self._stack:
                self._stack[-1][1] = time.perf_counter()

    def wrap(self, owner, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        def timed(*a, **k):
            with self.phase(name):
                return fn(*a, **k)

        setattr(owner, attr, timed)


def sticker_phases(samplers: list[tuple[str, int]], iters: int, model: str = "default", device: str = "cuda") -> dict:
    """Per-phase milliseconds (mean of ``iters`` stickers after one warm-up) for each (sampler, steps)."""
    import rdtf_engine.diffusion.pipeline as pipeline_mod
    from rdtf_engine.core.requests import GenerateRequest
    from rdtf_engine.formats import timing
    from rdtf_engine.jobs import api
    from rdtf_engine.model.store import resolve_model, validate_model_folder

    model_dir = resolve_model(model)
    card = validate_model_folder(model_dir)
    pipe = api._pipeline(model_dir, device)
    out: dict = {"model": card.name, "size": int(card.size), "draft_size": int(card.draft_size or 0)}
    for sampler, steps in samplers:
        req = GenerateRequest(prompt="grinning face bouncing", model=str(model_dir), frames=8, size=int(card.size),
                              steps=steps, seed=1, scheduler=sampler, device=device)
        api.generate(req)  # warm-up: graphs captured, text states cached
        clock = PhaseClock()
        saved = {(o, a): getattr(o, a) for o, a in ((pipe, "_windows"), (pipe, "_decode"), (pipe, "_encode"),
                                                      (pipe.text, "encode"), (pipeline_mod, "tensor_to_rgba"),
                                                      (timing, "fit_canvas"), (pipeline_mod, "sampling_scheduler"),
                                                      (pipe.step_fns, "get"))}
        for (o, a), name in zip(saved, ("denoise", "decode", "encode", "text", "to_rgba", "resample_host",
                                        "scheduler_setup", "step_lookup")):
            clock.wrap(o, a, name)
        _time_inside_the_loop(clock, pipeline_mod, pipe.step_fns)
        try:
            t0 = time.perf_counter()
            for _ in range(iters):
                with clock.phase("other"):
                    api.generate(req)
            total = (time.perf_counter() - t0) * 1e3 / iters
        finally:
            for (o, a), fn in saved.items():
                setattr(o, a, fn)
        out[f"{sampler}_{steps}"] = {"total_ms": round(total, 1),
                                     **{k: round(v / iters, 1) for k, v in sorted(clock.ms.items())}}
    return out


def _time_inside_the_loop(clock: PhaseClock, pipeline_mod, step_fns) -> None:
    """Split the denoising loop: every scheduler made is timed in its own methods (set-up, update) and every
    denoiser step that ``step_fns.get`` hands out in its calls (a graph replay, or eager), each synchronised."""
    make, get = pipeline_mod.sampling_scheduler, step_fns.get

    def scheduler(*a, **k):
        sched = make(*a, **k)
        for attr, name in (("set_timesteps", "scheduler_setup"), ("set_begin_index", "scheduler_setup"),
                           ("add_noise", "scheduler_setup"), ("scale_model_input", "scheduler_update"),
                           ("step", "scheduler_update")):
            if hasattr(sched, attr):
                clock.wrap(sched, attr, name)
        return sched

    def lookup(*a, **k):
        step = get(*a, **k)

        def denoiser(*x):
            with clock.phase("denoiser_calls"):
                return step(*x)

        return denoiser

    pipeline_mod.sampling_scheduler, step_fns.get = scheduler, lookup


def top_kernels(step, iters: int, top: int) -> dict:
    """The ``top`` CUDA kernels by total device time over ``iters`` calls of ``step`` (after two warm-ups)."""
    from torch.profiler import ProfilerActivity, profile

    for _ in range(2):
        step()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            step()
        torch.cuda.synchronize()
    rows = [e for e in prof.key_averages() if e.device_time_total > 0]
    total = sum(e.self_device_time_total for e in rows) or 1.0
    rows.sort(key=lambda e: e.self_device_time_total, reverse=True)
    return {"device_ms_per_step": round(total / 1e3 / iters, 3),
            "top": [{"kernel": e.key[:120], "share": round(e.self_device_time_total / total, 4),
                     "calls_per_step": round(e.count / iters, 1)} for e in rows[:top]]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--samplers", default="unipc:10,dpm:20")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--model", default="default")
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu_profile.py needs a CUDA GPU")
    from benchmarks.gpu import dfgn_step_fn
    from rdtf_engine.core.device import configure_cuda
    from rdtf_engine.model.dfgn import build_dfgn

    configure_cuda()
    samplers = [(s.split(":")[0], int(s.split(":")[1])) for s in a.samplers.split(",") if s]
    out: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
                 "sticker": sticker_phases(samplers, a.iters, a.model)}
    kernels = {}
    for name, preset, frames in (("small_8f_256", "small", 8), ("paper_16f_256", "paper", 16)):
        net = build_dfgn(preset, num_frames=frames).to("cuda").eval()
        kernels[name] = top_kernels(dfgn_step_fn(net, frames, 32), a.iters, a.top)
        del net
        torch.cuda.empty_cache()
    out["kernels"] = kernels
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
