"""B5, the CPU benchmark: text → 8-frame RGBA sticker with the shipped model, for each CPU runtime that exists here.

Each runtime is measured in a fresh child process (so its peak RSS, from ``resource.getrusage``, is its own):
- ``torch``: eager PyTorch fp32 with the process's default threads;
- ``torch-tuned``: eager fp32 with ``torch.set_num_threads(--threads)`` and the denoiser in channels-last;
- ``compile``: ``torch.compile`` of the denoiser (inductor; needs a C++ compiler);
- ``onnx``: ONNX Runtime fp32 (``diffusion/cpu_runtime.py``, what the engine uses on the CPU when it is installed
  and the processor has no bf16 instructions);
- ``openvino``: bf16 precision — the denoiser on OpenVINO in bf16, the autoencoder under bf16 autocast — what the
  engine uses on a processor with bf16 instructions (``diffusion/openvino_runtime.py``).

All but ``openvino`` run at fp32 precision (``RDTF_CPU_PRECISION=fp32``), so they stay comparable with the figures
measured before bf16 existed.

Per runtime and output size: setup seconds (first sticker: export / compile / warm-up), the median seconds of a
sticker after it (the text encoder's states cached, as in the app), the largest absolute difference of one
guided denoiser output from eager PyTorch's, and peak RSS. Output sizes: the model's native size, and 256 px two
ways: resampled from a native-size sample (what ``rdtf generate --size 256`` does) and sampled on a 256-px latent
grid (speed only: the model was not trained at that size). ``--cold`` also times the whole ``rdtf generate``
command per runtime (process start, imports, model load, sampling, GIF; ``--iters`` launches after an untimed
first one, bytecode written as any installed copy has it), the end-to-end figure of a command line, and the same
request served warm (a second request → written GIF in one process, as the app's engine worker serves every
sticker after its first), and the app's first sticker: the ``prepare`` job its worker runs when the window opens,
then the first request (``prepared_request_256px``).

    python benchmarks/cpu.py [--runtimes torch,torch-tuned,compile,onnx] [--steps 20] [--iters 3] [--cold]
                             [--model FOLDER --sampler lcm --steps 4]   (a distilled model's few-step sampler)

Prints one JSON object; ratios are against the first runtime listed (eager PyTorch by default) on the same
setting, measured in the same run. The load average is printed too: on a shared machine every time stretches
with it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.compile_step beside it
RUNTIMES = ("torch", "torch-tuned", "compile", "onnx", "openvino")
PROMPT = "a cat bouncing"
# the model measured (--model; children read it from the environment): the shipped one unless another is named
MODEL_ENV = "RDTF_BENCH_MODEL"


def _model() -> str:
    return os.environ.get(MODEL_ENV) or str(ROOT / "resources" / "models" / "default")


def _pipeline(runtime: str, threads: int):
    import torch

    from rdtf_engine.diffusion.pipeline import StickerPipeline

    if runtime != "torch":
        torch.set_num_threads(threads)  # ONNX Runtime takes its thread count from torch's (cpu_runtime.py)
    pipe = StickerPipeline.from_pretrained(_model(), "cpu")  # (its precision from the environment: _child)
    pipe.step_fns.cpu_runtime = runtime if runtime in ("onnx", "openvino") else "torch"
    if runtime == "torch-tuned":  # channels-last for the 2-D convolutions' weights (the model also has 3-D ones)
        for m in pipe.unet.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
    if runtime == "compile":
        pipe.step_fns.unet = torch.compile(pipe.unet)
    return pipe


def _denoiser_diff(pipe, reference, latent: int) -> float:
    """Largest |ε̂ − ε̂_eager| of one guided step (CFG batch 2, 8 frames) on random inputs; ``reference`` is an
    untouched copy of the denoiser (eager, contiguous)."""
    import torch

    from benchmarks.compile_step import step_example
    from rdtf_engine.diffusion.denoiser import guided_eps

    example = step_example(pipe, latent, PROMPT, guidance=(7.5, 1.5))
    with torch.no_grad():
        fast = pipe.step_fns.get(example)(*example)
        ref = guided_eps(reference, *example)  # the untouched copy: eager, contiguous weights
    return float((fast - ref).abs().max())


SETTINGS = ("native", "256px_resampled", "256px_sampled")


def measure_one(runtime: str, steps: int, sampler: str, iters: int, threads: int, settings: list[str]) -> dict:
    """In this process: one runtime, each size setting (``SETTINGS``)."""

    from rdtf_engine.diffusion.pipeline import SampleParams

    t0 = time.perf_counter()
    pipe = _pipeline(runtime, threads)
    out: dict = {"load_s": round(time.perf_counter() - t0, 2), "threads": _threads()}
    native = int(pipe.card.size)
    grids = {"native": (native, native), "256px_resampled": (256, native), "256px_sampled": (256, 256)}
    for name in settings:
        size, grid = grids[name]
        pipe.card.size = grid  # the sampling grid: native, or 256 px for the speed-only setting
        p = SampleParams(PROMPT, 8, size, steps, seed=1, scheduler=sampler)
        t = time.perf_counter()
        pipe(p)
        setup = time.perf_counter() - t
        times, cpu = [], []
        for _ in range(iters):
            t, c = time.perf_counter(), time.process_time()
            frames = pipe(p)
            times.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        # CPU seconds (all threads of this process) next to wall seconds: on a shared machine they stay comparable
        out[name] = {"size": size, "sampled_at": grid, "first_s": round(setup, 2),
                     "sticker_s": round(sorted(times)[len(times) // 2], 2),
                     "sticker_cpu_s": round(sorted(cpu)[len(cpu) // 2], 2), "frames": list(frames.shape)}
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # before the check
    reference = copy.deepcopy(pipe.unet)
    for param in reference.parameters():
        param.data = param.data.contiguous()
    for name in settings:
        pipe.card.size = grids[name][1]
        out[name]["denoiser_max_abs_diff"] = _denoiser_diff(pipe, reference, grids[name][1] // 8)
    pipe.card.size = native
    return out


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _precision(runtime: str) -> str:
    """The precision a runtime is measured at: bf16 for OpenVINO (its reason to exist), fp32 for every other."""
    return "bf16" if runtime == "openvino" else "fp32"


def _runtime_env(runtime: str, threads: int) -> dict:
    """A child process's environment for ``runtime`` as the engine picks it (``RDTF_CPU_RUNTIME`` and
    ``RDTF_CPU_PRECISION``)."""
    env = {**os.environ, "RDTF_CPU_RUNTIME": runtime if runtime in ("onnx", "openvino") else "torch",
           "RDTF_CPU_PRECISION": _precision(runtime), "PYTHONPATH": str(ROOT)}
    if runtime != "torch":
        env["OMP_NUM_THREADS"] = str(threads)  # torch's thread count, which ONNX Runtime follows
    return env


def _run_json(cmd: list[str], env: dict) -> dict:
    """This script run again as a child (``--one`` / ``--warm-one``): its JSON, or its last error line."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if proc.returncode:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:300]}
    return json.loads(proc.stdout)


def cold_generate(runtime: str, steps: int, sampler: str, threads: int, runs: int = 3) -> dict:
    """The whole ``rdtf generate`` command at 256 px in a child process, as a user's every launch after the first
    runs it: one untimed launch first (it writes the engine's bytecode and the runtime's caches), then ``runs``
    timed ones: their wall seconds (median, and all) and the largest child's peak RSS (``os.wait4``: the rusage of
    that one child, not of every child so far).

    Python writes bytecode unless told not to; an environment with ``PYTHONDONTWRITEBYTECODE`` (some sandboxes set
    it) would recompile the engine's ≈ 150 modules in every launch (≈ 1.2 s on the 2-core development machine), a
    cost no installed copy pays, so the child runs without it."""
    env = {k: v for k, v in _runtime_env(runtime, threads).items() if k != "PYTHONDONTWRITEBYTECODE"}
    walls, rss = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "rdtf_engine", "generate", "--model", _model(), "--prompt", PROMPT, "--frames",
               "8", "--size", "256", "--steps", str(steps), "--sampler", sampler, "--seed", "1", "--device", "cpu",
               "--out", str(Path(tmp) / "x.gif")]
        for i in range(runs + 1):
            t = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
            err = proc.stderr.read().decode(errors="replace")
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t
            if os.waitstatus_to_exitcode(status):
                return {"error": (err.strip().splitlines() or ["failed"])[-1][:300]}
            if i:  # the first launch only prepares
                walls.append(round(wall, 2))
                rss = max(rss, usage.ru_maxrss / 1024)
    return {"wall_s": sorted(walls)[len(walls) // 2], "walls_s": walls, "peak_rss_mb": round(rss, 1)}


def warm_generate(runtime: str, steps: int, sampler: str, threads: int, iters: int = 3,
                  prepared: bool = False) -> dict:
    """Request → written 256 px GIF through the engine's API in one child process, after a first request that
    loads everything: what each sticker after the first costs in the app (its worker keeps the engine loaded).
    ``prepared``: the child first runs the ``prepare`` job the app sends when it opens (``prepare_s``), so its
    ``first_s`` is the app's first sticker."""
    cmd = [sys.executable, __file__, "--warm-one", runtime, "--steps", str(steps), "--sampler", sampler,
           "--iters", str(iters)] + (["--prepare-first"] if prepared else [])
    return _run_json(cmd, _runtime_env(runtime, threads))


def _warm_one(steps: int, sampler: str, iters: int, prepared: bool = False) -> dict:
    from rdtf_engine.core.requests import GenerateRequest, PrepareRequest
    from rdtf_engine.jobs.api import generate, prepare

    out = {}
    if prepared:  # what the app's engine worker does when the window opens
        t = time.perf_counter()
        prepare(PrepareRequest(model=_model(), frames=8, size=256, scheduler=sampler, device="cpu"))
        out["prepare_s"] = round(time.perf_counter() - t, 2)
    with tempfile.TemporaryDirectory() as tmp:
        req = GenerateRequest(prompt=PROMPT, model=_model(), frames=8, size=256, steps=steps, seed=1, scheduler=sampler,
                              device="cpu", out=str(Path(tmp) / "x.gif"))
        t = time.perf_counter()
        generate(req)
        first = time.perf_counter() - t
        times = []
        for _ in range(iters):
            t = time.perf_counter()
            generate(req)
            times.append(time.perf_counter() - t)
    return {**out, "first_s": round(first, 2), "sticker_s": round(sorted(times)[len(times) // 2], 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _child(runtime: str, a) -> dict:
    cmd = [sys.executable, __file__, "--one", runtime, "--steps", str(a.steps), "--iters", str(a.iters),
           "--sampler", a.sampler, "--threads", str(a.threads), "--settings", a.settings]
    # (the runtime itself is set in _pipeline)
    return _run_json(cmd, {**os.environ, "PYTHONPATH": str(ROOT), "RDTF_CPU_PRECISION": _precision(runtime)})


def _ratios(results: dict) -> str:
    """Each sticker time against the first runtime's (eager PyTorch in any sensible order); → that name."""
    name = next(iter(results))
    base = results[name]
    for r in results.values():
        for setting, v in r.items():
            if isinstance(v, dict) and isinstance(base.get(setting), dict) and "sticker_s" in v:
                v["vs_baseline"] = round(v["sticker_s"] / base[setting]["sticker_s"], 3)
    return name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--sampler", default="dpm")
    ap.add_argument("--model", default=None, help="a model folder (default: the shipped model)")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--settings", default=",".join(SETTINGS), help="native, 256px_resampled, 256px_sampled")
    ap.add_argument("--cold", action="store_true", help="also time the whole rdtf generate command per runtime")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one runtime in this process
    ap.add_argument("--warm-one", help=argparse.SUPPRESS)  # internal: warm requests in this process
    ap.add_argument("--prepare-first", action="store_true", help=argparse.SUPPRESS)  # internal: … after a prepare
    a = ap.parse_args()
    if a.model:  # every child this process starts measures it too
        os.environ[MODEL_ENV] = str(Path(a.model).resolve())
    if a.warm_one:
        print(json.dumps(_warm_one(a.steps, a.sampler, a.iters, a.prepare_first)))
        return
    if a.one:
        print(json.dumps(measure_one(a.one, a.steps, a.sampler, a.iters, a.threads, a.settings.split(","))))
        return
    out: dict = {"cpus": os.cpu_count(), "load_avg_before": [round(x, 2) for x in os.getloadavg()],
                 "steps": a.steps, "sampler": a.sampler, "frames": 8, "model": Path(_model()).name, "runtimes": {}}
    for rt in a.runtimes.split(","):
        out["runtimes"][rt] = _child(rt, a)
        if a.cold and rt != "compile":  # the command has no torch.compile switch
            out["runtimes"][rt]["rdtf_generate_256px"] = cold_generate(rt, a.steps, a.sampler, a.threads, a.iters)
            out["runtimes"][rt]["warm_request_256px"] = warm_generate(rt, a.steps, a.sampler, a.threads, a.iters)
            out["runtimes"][rt]["prepared_request_256px"] = warm_generate(rt, a.steps, a.sampler, a.threads, 1,
                                                                          prepared=True)
    out["baseline"] = _ratios(out["runtimes"])
    out["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
