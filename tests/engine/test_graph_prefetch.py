"""diffusion/graph_prefetch: the graphs a request compiled are remembered under a key of the model folder as it is on
disk and the request's shape, compiled on a background thread at the next launch with that key, and taken by the
OpenVINO step only for the same file and settings; the command line and the engine compute the same key."""

from __future__ import annotations

import argparse
import os
import threading

import pytest
import torch
from sampling_fixtures import _pipe
from test_cpu_precision import _example, needs_openvino

from rdtf_engine.core.requests import GenerateRequest
from rdtf_engine.diffusion import cpu_choice
from rdtf_engine.diffusion import graph_prefetch as gp

CONFIG = {"INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "bf16"}


def _folder(tmp_path):
    m = tmp_path / "model"
    (m / "unet").mkdir(parents=True)
    (m / "config.json").write_text("{}")
    (m / "unet" / "w.safetensors").write_bytes(b"12345678")
    (m / "notes.txt").write_text("not part of the key")
    return m


def test_the_key_follows_the_files_on_disk_and_the_request_shape(tmp_path):
    m = _folder(tmp_path)
    key = gp.request_key(m, 8, 256, False)
    assert key == gp.request_key(m, 8, 256, False) == gp.request_key(tmp_path / "." / "model", 8, 256, False)
    assert len({key, gp.request_key(m, 16, 256, False), gp.request_key(m, 8, 128, False),
                gp.request_key(m, 8, 256, True)}) == 4
    (m / "notes.txt").write_text("edited")
    assert gp.request_key(m, 8, 256, False) == key  # only the config and weight files count
    w = m / "unet" / "w.safetensors"
    w.write_bytes(b"123456789")  # new weights: another size
    assert gp.request_key(m, 8, 256, False) != key
    new = gp.request_key(m, 8, 256, False)
    os.utime(w, ns=(1, 1))  # the same size, another time
    assert gp.request_key(m, 8, 256, False) != new


def test_the_index_keeps_the_newest_keys(tmp_path):
    onnx = tmp_path / "a.onnx"
    onnx.write_bytes(b"x")
    for i in range(gp.KEEP_KEYS + 3):
        gp.remember(f"k{i}", tmp_path, [(str(onnx), CONFIG)])
    index = gp._read_index(tmp_path)
    assert len(index) == gp.KEEP_KEYS and next(iter(index)) == f"k{gp.KEEP_KEYS + 2}" and "k0" not in index
    gp.remember("k5", tmp_path, [(str(onnx), CONFIG)])  # used again: first again
    assert next(iter(gp._read_index(tmp_path))) == "k5"
    gp.remember("none", tmp_path, [])  # a request that compiled nothing records nothing
    assert "none" not in gp._read_index(tmp_path)
    (tmp_path / gp.INDEX).write_text("{not json")
    assert gp._read_index(tmp_path) == {}  # an unreadable index: no head start, no error


def test_nothing_starts_where_openvino_will_not_sample(tmp_path, monkeypatch):
    onnx = tmp_path / "a.onnx"
    onnx.write_bytes(b"x")
    gp.remember("k", tmp_path, [(str(onnx), CONFIG), (str(tmp_path / "gone.onnx"), CONFIG)])
    monkeypatch.setattr(gp, "_compile_all", lambda ov, cache, work: None)
    for runtime, precision in (("torch", "auto"), ("onnx", "bf16"), ("auto", "fp32"), ("openvino", "fp32")):
        monkeypatch.setenv("RDTF_CPU_PRECISION", precision)
        assert gp.start("k", tmp_path, runtime) == 0, (runtime, precision)  # (openvino at fp32: no f32 graph)
    monkeypatch.setenv("RDTF_CPU_PRECISION", "auto")
    assert gp.start("other", tmp_path, "auto") == 0
    pytest.importorskip("openvino")
    try:
        assert gp.start("k", tmp_path, "auto") == 1  # the file that is gone is skipped
        assert gp.start("k", tmp_path, "auto") == 0  # already under way
    finally:
        gp._PENDING.clear()


def test_the_head_start_decides_by_the_samplers_own_rules(tmp_path, monkeypatch):
    """On a processor with bf16, a bf16 graph is prefetched exactly where the sampler will run OpenVINO in bf16: the
    same torch-free rules (cpu_choice) decide both, whatever is installed or asked for by name."""
    from rdtf_engine.diffusion import cpu_choice, cpu_runtime

    onnx = tmp_path / "a.onnx"
    onnx.write_bytes(b"x")
    gp.remember("k", tmp_path, [(str(onnx), CONFIG)])
    monkeypatch.setattr(gp, "_compile_all", lambda ov, cache, work: None)
    monkeypatch.setattr(cpu_runtime, "cpu_has_bf16", lambda: True)
    monkeypatch.setitem(__import__("sys").modules, "openvino", argparse.Namespace())  # no real compile needed
    for installed in (True, False):
        monkeypatch.setattr(cpu_choice, "openvino_installed", lambda installed=installed: installed)
        for runtime in ("auto", "openvino", "onnx", "torch", "tensorrt"):
            for precision in ("auto", "bf16", "Bf16", "fp16"):
                monkeypatch.setenv("RDTF_CPU_RUNTIME", runtime)
                monkeypatch.setenv("RDTF_CPU_PRECISION", precision)
                wanted = cpu_runtime.resolve_cpu_precision()
                sampler = cpu_choice.resolve_cpu_runtime(precision=wanted)
                usable = sampler == "openvino" and wanted == "bf16"  # (the graph remembered was compiled for bf16)
                try:
                    assert (gp.start("k", tmp_path) == 1) == usable, (installed, runtime, precision)
                finally:
                    gp._PENDING.clear()


def test_the_head_start_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from rdtf_engine.diffusion import graph_prefetch, cpu_choice; "
            "cpu_choice.resolve_cpu_runtime(); assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_prefetch_is_taken_only_for_its_settings_and_a_failed_one_is_not_used():
    from concurrent.futures import Future

    done, failed = Future(), Future()
    done.set_result("compiled")
    failed.set_exception(RuntimeError("no plugin"))
    gp._PENDING.update({"a.onnx": (dict(CONFIG), done), "b.onnx": (dict(CONFIG), failed)})
    assert gp.take("a.onnx", {**CONFIG, "INFERENCE_NUM_THREADS": 4}) is None  # other threads: compiled anew
    assert gp.take("a.onnx", CONFIG) is None  # (taken once only: the first call consumed it)
    gp._PENDING["a.onnx"] = (dict(CONFIG), done)
    assert gp.take("a.onnx", CONFIG) == "compiled"
    assert gp.take("b.onnx", CONFIG) is None and gp.take("c.onnx", CONFIG) is None and not gp._PENDING


def test_the_command_line_starts_with_the_key_the_engine_records(tmp_path, monkeypatch):
    from rdtf_engine.cli.generate import start_prefetch
    from rdtf_engine.core.model_folder import resolve_model
    from rdtf_engine.jobs import api

    monkeypatch.setattr(gp, "cache_dir", lambda: tmp_path)
    started = []
    monkeypatch.setattr(gp, "start", lambda key, cache: started.append(key) or 0)
    args = argparse.Namespace(device="auto", model="default", frames=8, size=256, init=None, from_clip=None)
    start_prefetch(args)
    start_prefetch(argparse.Namespace(**{**vars(args), "device": "cuda"}))  # a GPU command: nothing to compile
    start_prefetch(argparse.Namespace(**{**vars(args), "model": "no-such-model"}))  # reported later, not here

    class Fns:
        def compiled_graphs(self):
            return [(str(tmp_path / "a.onnx"), CONFIG)]

    pipe = argparse.Namespace(step_fns=Fns())
    req = GenerateRequest(prompt="x", frames=8, size=256)
    api._remember_graphs(pipe, resolve_model("default"), req.frames, req.size, req.gives_frames)
    assert started == [next(iter(gp._read_index(tmp_path)))]


def test_a_request_gives_frames_with_a_start_image_or_a_locked_slot():
    assert not GenerateRequest(prompt="x").gives_frames
    assert not GenerateRequest(prompt="x", frames=2, cond_frames=[None, None]).gives_frames
    assert GenerateRequest(prompt="x", frames=2, cond_frames=[None, "b.png"]).gives_frames
    assert GenerateRequest(prompt="x", init_image="a.png").gives_frames


@needs_openvino
@pytest.mark.slow  # one ONNX export of a tiny denoiser
def test_the_next_step_takes_the_graph_compiled_in_the_background(monkeypatch, tmp_path):
    openvino = cpu_choice.import_openvino()  # (as the engine imports it: without its telemetry)

    from rdtf_engine.diffusion.openvino_runtime import OpenVinoStep

    monkeypatch.setenv("RDTF_HOME", str(tmp_path))
    monkeypatch.setenv("RDTF_CPU_PRECISION", "auto")
    pipe, example = _pipe(), _example()
    fns = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="openvino", cpu_precision="fp32")
    first = fns.get(example)
    assert isinstance(first, OpenVinoStep) and fns.compiled_graphs() == [(str(first.path), first.compile_config)]
    gp.remember("key", gp.cache_dir(), fns.compiled_graphs())
    fns.used.clear()  # a later request that samples nothing at this shape records nothing of it
    assert fns.compiled_graphs() == [] and fns.get(example) is first and fns.compiled_graphs()

    compiled_on = []
    real = openvino.Core.compile_model

    def compile_model(self, *a, **k):  # which thread compiles
        compiled_on.append(threading.current_thread().name)
        return real(self, *a, **k)

    monkeypatch.setattr(openvino.Core, "compile_model", compile_model)
    assert gp.start("key", gp.cache_dir(), "openvino") == 1
    again = type(pipe.step_fns)(pipe.unet, pipe.device, cpu_runtime="openvino", cpu_precision="fp32")
    step = again.get(example)
    assert compiled_on == ["rdtf-graph-prefetch"] and not gp._PENDING  # taken, not compiled a second time
    with torch.no_grad():
        torch.testing.assert_close(step(*example), first(*example), rtol=1e-5, atol=1e-5)


def test_the_app_worker_prefetches_for_its_first_sticker_only(monkeypatch):
    from rdtf_engine.core.requests import GenerateRequest
    from rdtf_engine.jobs import api
    from rdtf_engine.jobs.backend import EngineBackend

    started, drawn = [], []
    monkeypatch.setattr(gp, "start_for_request", lambda *a: started.append(a) or 1)
    monkeypatch.setattr(api, "generate", lambda req, on_event, stop: drawn.append(req) or "sticker")
    gp._PENDING["never-taken.onnx"] = ({}, None)
    backend = EngineBackend()
    req = GenerateRequest(prompt="a cat", frames=8, size=256, init_image="cat.png")
    assert backend.generate(req, lambda e: None, lambda: False) == "sticker"
    assert started == [("default", 8, 256, True, "auto")] and not gp._PENDING  # what it did not take: dropped
    backend.generate(req, lambda e: None, lambda: False)
    assert len(started) == 1 and len(drawn) == 2  # the engine is loaded: its pipeline holds the graphs now


def test_a_request_for_a_missing_model_starts_nothing_and_raises_nothing():
    assert gp.start_for_request("no-such-model", 8, None, False) == 0
    assert gp.start_for_request("default", 8, 256, False, device="cuda") == 0
