"""B5 by network: the two networks a CPU sticker spends its time in, on every CPU runtime that exists here.

A text → sticker on the CPU is mostly guided denoiser calls (the 128 px draft's grid and the 256 px refinement's)
and the autoencoder's decoder; ``benchmarks/cpu.py`` times whole stickers, this script times one call of each
network per runtime, in one process, on the same inputs, and says how far each runtime's output is from eager
PyTorch fp32 (the reference every runtime is checked against):

- ``torch``: eager PyTorch fp32 (the decoder channels-last, as ``model/autoencoder.py`` runs it on the CPU);
- ``torch-bf16``: the same under ``torch.autocast("cpu", torch.bfloat16)``;
- ``onnx``: ONNX Runtime fp32 — the engine's CPU runtime for the denoiser (``diffusion/cpu_runtime.py``; its
  cached export), the decoder exported the same way here;
- ``openvino`` / ``openvino-bf16``: OpenVINO with ``INFERENCE_PRECISION_HINT`` f32 / bf16, reading the same ONNX
  files (``pip install openvino``; skipped when it is not installed; bf16 only where the processor has bf16
  instructions, else OpenVINO would silently run f32).

    python benchmarks/cpu_kernels.py [--iters 5] [--threads 2] [--model FOLDER]

Prints one JSON object: per network, per runtime the best of ``--iters`` calls in ms, the ratio to ONNX Runtime
(the engine's runtime) measured in the same run, the compile/load seconds, and the output's largest absolute and
relative-RMS difference from eager fp32.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PROMPT = "a cat bouncing"


def _best_ms(fn, iters: int) -> tuple[float, np.ndarray]:
    """Two warm-up calls, then the fastest of ``iters`` (ms) and the last output."""
    out = fn()
    fn()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return round(min(times) * 1000, 3), out


def _difference(out: np.ndarray, ref: np.ndarray) -> dict:
    rel = float(np.sqrt(np.mean((out - ref) ** 2)) / max(float(np.sqrt(np.mean(ref**2))), 1e-12))
    return {"max_abs_diff": float(np.abs(out - ref).max()), "rel_rms_diff": rel}


def _openvino():
    """→ (the openvino module or None, whether the CPU runs bf16 natively — the engine's own probe)."""
    from rdtf_engine.diffusion.cpu_choice import import_openvino
    from rdtf_engine.diffusion.cpu_runtime import cpu_has_bf16

    try:
        ov = import_openvino()  # (as the engine imports it: without its telemetry)
    except ImportError:
        return None, False
    return ov, cpu_has_bf16()


def _denoiser_case(pipe, grid: int):
    """The engine's guided denoiser call at ``grid`` latents (two guidance rows, 8 frames) → (torch fn, ONNX file,
    feeds by input name). The ONNX file is the engine's own cached export (built if missing)."""
    import torch

    from rdtf_engine.diffusion.cpu_runtime import INPUT_NAMES, _network_inputs, _NetworkCall

    g = torch.Generator().manual_seed(0)
    states, mask = pipe.text.encode(["", PROMPT])
    example = (torch.randn(1, 4, 8, grid, grid, generator=g), torch.tensor(500), states, mask,
               torch.randn(2, 4, 8, grid, grid, generator=g), torch.tensor([7.5, 1.5]))
    step = pipe.step_fns.get(example)  # the engine's OnnxStep: exports and checks on first use
    path = getattr(step, "path", None)
    inputs = _network_inputs(*example)
    net = _NetworkCall(pipe.unet).eval()
    return (lambda: net(*inputs).numpy()), path, dict(zip(INPUT_NAMES, (a.numpy() for a in inputs)))


def _export_decoder(vae, z, folder: Path) -> Path:
    """The decoder traced to ONNX for ``z``'s shape (fp32), as the denoiser is (``diffusion/cpu_runtime.py``)."""
    import torch

    class Decode(torch.nn.Module):
        def __init__(self, v):
            super().__init__()
            self.v = v

        def forward(self, latents):
            return self.v.decode(latents).sample

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(Decode(vae).eval(), (z,), buf, input_names=["z"], output_names=["pixels"],
                          opset_version=17, dynamo=False)
    path = folder / "decoder.onnx"
    path.write_bytes(buf.getvalue())
    return path


def _onnx_runtime(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    t = time.perf_counter()
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return sess, time.perf_counter() - t


def _openvino_compiled(ov, path: Path, precision: str, threads: int):
    t = time.perf_counter()
    core = ov.Core()
    compiled = core.compile_model(core.read_model(str(path)), "CPU", {
        "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision})
    return compiled.create_infer_request(), time.perf_counter() - t


def measure_network(torch_fn, onnx_path: Path | None, feeds: dict, iters: int, threads: int) -> dict:
    """One network on each runtime → {runtime: {ms, vs_onnx, load_s, max_abs_diff, rel_rms_diff}}. ``torch_fn()``
    returns the output as fp32 numpy (also under bf16 autocast); ``feeds`` are the ONNX file's inputs by name."""
    import torch

    ov, bf16 = _openvino()
    out: dict = {}
    with torch.no_grad():
        ms, ref = _best_ms(torch_fn, iters)
        out["torch"] = {"ms": ms, **_difference(ref, ref)}
        with torch.autocast("cpu", torch.bfloat16):
            ms, o = _best_ms(torch_fn, iters)
        out["torch-bf16"] = {"ms": ms, **_difference(o, ref)}
    if onnx_path is not None:
        sess, load = _onnx_runtime(onnx_path, threads)
        first = sess.get_outputs()[0].name
        ms, o = _best_ms(lambda: sess.run([first], feeds)[0], iters)
        out["onnx"] = {"ms": ms, "load_s": round(load, 2), **_difference(o, ref)}
        for name, precision in (("openvino", "f32"), ("openvino-bf16", "bf16")):
            if ov is None or (precision == "bf16" and not bf16):
                out[name] = {"skipped": "openvino not installed" if ov is None else "no bf16 instructions"}
                continue
            req, load = _openvino_compiled(ov, onnx_path, precision, threads)
            ordered = [feeds[i.get_any_name()] for i in req.model_inputs]

            def run(req=req, ordered=ordered):
                req.infer(ordered)
                return req.get_output_tensor(0).data.copy()

            ms, o = _best_ms(run, iters)
            out[name] = {"ms": ms, "load_s": round(load, 2), **_difference(o, ref)}
    base = out.get("onnx", {}).get("ms")
    for r in out.values():
        if base and "ms" in r:
            r["vs_onnx"] = round(r["ms"] / base, 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--model", default=str(ROOT / "resources" / "models" / "default"))
    a = ap.parse_args()
    os.environ["RDTF_CPU_RUNTIME"] = "onnx"
    import torch

    from rdtf_engine.diffusion.pipeline import StickerPipeline
    from rdtf_engine.model.autoencoder import _cpu_layout, frames_per_call

    torch.set_num_threads(a.threads)  # ONNX Runtime's sessions take the same count
    pipe = StickerPipeline.from_pretrained(a.model, "cpu")
    native = int(pipe.card.size) // 8
    draft = int(getattr(pipe.card, "draft_size", 0) or 0) // 8
    result: dict = {"cpus": os.cpu_count(), "threads": a.threads, "model": Path(a.model).name,
                    "load_avg_before": [round(x, 2) for x in os.getloadavg()], "networks": {}}
    ov, bf16 = _openvino()
    result["openvino"] = ov.__version__ if ov else None
    result["cpu_bf16"] = bf16
    for grid in sorted({g for g in (draft, native) if g}):
        torch_fn, path, feeds = _denoiser_case(pipe, grid)
        key = f"denoiser_{grid * 8}px_2_rows_8_frames"
        result["networks"][key] = measure_network(torch_fn, path, feeds, a.iters, a.threads)
    batch = frames_per_call(pipe.vae, 64 * native * native, "decode")  # what a sticker decodes a call
    z = torch.randn(batch, 4, native, native, generator=torch.Generator().manual_seed(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = _export_decoder(pipe.vae, z, Path(tmp))
        zc = _cpu_layout(z)
        result["networks"][f"decoder_{native * 8}px_{batch}_frames"] = measure_network(
            lambda: pipe.vae.decode(zc).sample.float().numpy(), path, {"z": z.numpy()}, a.iters, a.threads)
    result["load_avg_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
