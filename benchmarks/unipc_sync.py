"""UniPC's corrector without its wait for the device (``diffusion/schedule.unipc_without_sync``) against diffusers'
stock scheduler, on the B1 path: the shipped model's text → 8-frame sticker through ``jobs.api.generate``, CUDA
graphs on, arms alternated in one process. Also whether the denoising loop itself ever waits for the device
(``torch.cuda.set_sync_debug_mode("error")`` around the loop, as the project's GPU test does), per sampler.

    python benchmarks/unipc_sync.py [--iters 10] [--rounds 3]      (JSON; needs a CUDA GPU)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def loop_waits(pipe, scheduler: str) -> str:
    """"" when the shipped model's 10-step sampling loop (256 px, text alone) ran under sync-debug "error" without
    a wait for the device, else the error's first line."""
    from rdtf_engine.diffusion.pipeline import SampleParams, _Window

    frames, side = 8, int(pipe.card.size) // 8
    p = SampleParams("grinning face bouncing", frames=frames, size=int(pipe.card.size), steps=10, seed=1,
                     scheduler=scheduler)
    w = _Window(torch.zeros(frames, 4, side, side, device="cuda"), [False] * frames, 10, lambda i: None)
    text = pipe.text.encode(["", p.prompt])
    with torch.no_grad():
        pipe._denoise(w, p, text, torch.Generator().manual_seed(1), None)  # the graph captured outside the check
        sched, timesteps, x = pipe._start(w, p, torch.Generator().manual_seed(1))
        branches = pipe._branches(w, p, text)
        ts = timesteps.to("cuda")
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            pipe._steps(sched, (timesteps, ts), x, w, p, branches, torch.Generator(), None)
        except RuntimeError as exc:
            return str(exc).splitlines()[0]
        finally:
            torch.cuda.set_sync_debug_mode("default")
    return ""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("benchmarks/unipc_sync.py needs a CUDA GPU")
    from diffusers import UniPCMultistepScheduler

    from benchmarks.gpu import generate_frames, timed
    from rdtf_engine.core.device import configure_cuda
    from rdtf_engine.core.requests import GenerateRequest
    from rdtf_engine.diffusion import schedule
    from rdtf_engine.jobs import api
    from rdtf_engine.model.store import resolve_model, validate_model_folder

    configure_cuda()
    model_dir = resolve_model("default")
    card = validate_model_folder(model_dir)
    ours = schedule.unipc_without_sync
    arms = {"stock": lambda: UniPCMultistepScheduler, "no_wait": ours}
    out: dict = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    for steps in (10, 8):
        req = GenerateRequest(prompt="grinning face bouncing", model=str(model_dir), frames=8, size=int(card.size),
                              steps=steps, seed=1, scheduler="unipc", device="cuda")
        ms: dict[str, list[float]] = {name: [] for name in arms}
        frames = {}
        for _ in range(a.rounds):
            for name, make in arms.items():
                schedule.unipc_without_sync = make  # what sampling_scheduler builds for "unipc"
                ms[name].append(timed(lambda req=req: generate_frames(api, req), a.iters, warmup=2) * 1e3)
                frames[name] = generate_frames(api, req)
        schedule.unipc_without_sync = ours
        best = {name: min(v) for name, v in ms.items()}
        out[f"unipc_{steps}"] = {"ms": {k: round(v, 1) for k, v in best.items()},
                                 "ratio": round(best["no_wait"] / best["stock"], 3),
                                 "max_pixel_diff": int(abs(frames["no_wait"].astype(int)
                                                           - frames["stock"].astype(int)).max())}
    pipe = api._pipeline(model_dir, "cuda")
    out["loop_waits"] = {s: loop_waits(pipe, s) for s in ("dpm", "unipc")}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
