"""The sampling loop built for CUDA graphs (static inputs, device timestep, batched guidance) does the same maths
as the plain loop it replaced, and capture failures fall back to eager sampling."""

from __future__ import annotations

import logging

import pytest
import torch
from sampling_fixtures import H, W, _pipe, _text, _window

from rdtf_engine.diffusion.pipeline import SampleParams, StickerPipeline, _Window, condition_prior
from rdtf_engine.diffusion.schedule import sampling_scheduler
from rdtf_engine.diffusion.step_runtime import StepFunctions


def reference_loop(pipe: StickerPipeline, w: _Window, p: SampleParams, text, gen) -> torch.Tensor:
    """The loop as it was before the graph-ready restructuring (Python-float guidance, a fresh timestep tensor
    per step, device-side timesteps): the exact maths the new loop must keep."""
    states, tmask = text
    steps = int(p.steps)
    sched = sampling_scheduler(pipe.card.diffusion, p.scheduler)
    sched.set_timesteps(steps, device=pipe.device)
    has_img = any(w.mask)
    skip = steps - w.run if has_img and w.run else 0
    timesteps = sched.timesteps[skip:]
    if skip and hasattr(sched, "set_begin_index"):
        sched.set_begin_index(skip)
    shape = (1, 4) + tuple(w.cond.shape[:1]) + tuple(w.cond.shape[2:])
    x = torch.randn(shape, generator=gen).to(pipe.device) * sched.init_noise_sigma
    if has_img:
        prior = condition_prior(w.cond, w.mask).permute(1, 0, 2, 3)[None]
        x = sched.add_noise(prior, x, timesteps[:1])
    c = w.cond.permute(1, 0, 2, 3)[None]
    g_txt, g_img = p.guidance_text, p.guidance_image
    three = has_img and g_img != 1.0
    conds = torch.cat([torch.zeros_like(c), c, c]) if three else torch.cat([c, c])
    txt, tm = (states[[0, 0, 1]], tmask[[0, 0, 1]]) if three else (states, tmask)
    extra = {"eta": 1.0, "generator": gen} if p.scheduler == "ddim" else {}
    for t in timesteps:
        inp = sched.scale_model_input(x, t)
        n = conds.shape[0]
        tt = torch.full((n,), int(t), device=pipe.device, dtype=torch.long)
        eps = pipe.unet(inp.expand(n, *inp.shape[1:]), tt, txt, conds, text_mask=tm).float()
        if three:
            e00, e0i, eti = eps.chunk(3)
            e = e00 + g_img * (e0i - e00) + g_txt * (eti - e0i)
        else:
            eu, et = eps.chunk(2)
            e = eu + g_txt * (et - eu)
        x = sched.step(e, t, x, **extra).prev_sample
    return x[0].permute(1, 0, 2, 3)


def _both(pipe, w, p, device="cpu"):
    text = _text(device)
    with torch.no_grad():
        new = pipe._denoise(w, p, text, torch.Generator().manual_seed(p.seed), None)
        old = reference_loop(pipe, w, p, text, torch.Generator().manual_seed(p.seed))
    return new, old


@pytest.mark.parametrize(("scheduler", "given", "strength", "g_img"), [
    ("dpm", False, 1.0, 1.5),  # text only: two branches
    ("dpm", True, 0.5, 1.5),  # a given frame, img2img from the middle of the schedule: three branches
    ("unipc", True, 1.0, 1.0),  # image scale 1: two branches on the condition
    ("ddim", True, 1.0, 1.5),  # η = 1: fresh noise from the CPU generator every step
])
def test_graph_ready_loop_is_bit_identical_to_the_plain_loop(scheduler, given, strength, g_img):
    pipe = _pipe()
    p = SampleParams("x", frames=W, size=8 * H, steps=4, seed=3, guidance_text=7.5, guidance_image=g_img,
                     strength=strength, scheduler=scheduler)
    run = max(1, round(4 * strength))
    new, old = _both(pipe, _window(given, run), p)
    assert new.shape == (W, 4, H, H)
    assert torch.equal(new, old)


@pytest.mark.parametrize("given", [False, True])
def test_every_scale_at_one_runs_the_conditional_branch_alone_with_the_same_result(given, monkeypatch):
    """Guidance 1 (text, and image when frames are given): one denoiser row per step instead of two or three,
    and the sample the guidance formula gives at those scales, to float rounding."""
    pipe = _pipe()
    p = SampleParams("x", frames=W, size=8 * H, steps=4, seed=3, guidance_text=1.0, guidance_image=1.0)
    rows: list[int] = []
    real = pipe.unet.forward
    monkeypatch.setattr(pipe.unet, "forward", lambda x, *a, **k: rows.append(x.shape[0]) or real(x, *a, **k))
    new, old = _both(pipe, _window(given, 4), p)  # the pipeline's loop first, then the two-branch reference
    assert rows == [1] * 4 + [2] * 4
    assert torch.allclose(new, old, atol=1e-5)


def test_cpu_steps_with_the_torch_runtime_run_eagerly():
    pipe = _pipe()
    assert pipe.step_fns.get([torch.zeros(1)]) == pipe.step_fns.eager


def test_failed_capture_is_logged_once_and_sampling_goes_on_eagerly(caplog, monkeypatch):
    """A CUDA pipeline whose capture fails (here: this PyTorch has no CUDA at all, or capture is refused) samples
    eagerly and says why, once per input signature."""
    from rdtf_engine.diffusion import denoiser, step_runtime

    def refuse(*a, **k):
        raise denoiser.GraphUnavailable("capture refused")

    monkeypatch.setattr(step_runtime, "CudaGraphed", refuse)
    fns = StepFunctions(torch.nn.Identity(), torch.device("cuda"), enabled=True)
    example = [torch.zeros(1, 4), torch.zeros(())]
    with caplog.at_level(logging.WARNING, logger="rdtf_engine.diffusion"):
        assert fns.get(example) == fns.eager
        assert fns.get(example) == fns.eager
    assert [r.getMessage() for r in caplog.records] == [
        "CUDA graph sampling unavailable, sampling eagerly: capture refused"]


def test_graph_capture_without_cuda_raises_graph_unavailable():
    from rdtf_engine.diffusion.denoiser import CudaGraphed, GraphUnavailable

    if torch.cuda.is_available():
        pytest.skip("this machine can capture graphs")
    with pytest.raises(GraphUnavailable):
        CudaGraphed(lambda x: x * 2, [torch.zeros(2)])


@pytest.mark.gpu
@pytest.mark.parametrize("given", [False, True])
def test_cuda_graph_sampling_matches_eager(given):
    graphed, eager = _pipe("cuda"), _pipe("cuda", cuda_graphs=False)
    p = SampleParams("x", frames=W, size=8 * H, steps=6, seed=5, guidance_image=1.5, strength=1.0)
    w = _window(given, 6, "cuda")
    text = _text("cuda")
    with torch.no_grad():
        a = graphed._denoise(w, p, text, torch.Generator().manual_seed(5), None)
        b = eager._denoise(w, p, text, torch.Generator().manual_seed(5), None)
        c = graphed._denoise(w, p, text, torch.Generator().manual_seed(5), None)  # the cached graph, replayed again
    assert any(v is not None for v in graphed.step_fns._built.values()), "capture failed (see the warning)"
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    assert torch.equal(a, c)


@pytest.mark.gpu
def test_cuda_denoising_loop_never_waits_for_the_device():
    pipe = _pipe("cuda")
    p = SampleParams("x", frames=W, size=8 * H, steps=6, seed=5)
    w = _window(False, 6, "cuda")
    text = _text("cuda")
    with torch.no_grad():
        pipe._denoise(w, p, text, torch.Generator().manual_seed(5), None)  # capture outside the checked part
        sched, timesteps, x = pipe._start(w, p, torch.Generator().manual_seed(5))
        branches = pipe._branches(w, p, text)
        ts = timesteps.to("cuda")
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            pipe._steps(sched, (timesteps, ts), x, w, p, branches, torch.Generator(), None)
        finally:
            torch.cuda.set_sync_debug_mode("default")


@pytest.mark.gpu
def test_cuda_graph_sampling_with_size_deltas_matches_eager():
    """The size deltas merge into each layer's weight for the call (swapped in and out by hooks): the captured
    graph must replay the merged weights, as eager computes them."""
    from rdtf_engine.core.config import DFGN_PRESETS
    from rdtf_engine.model.dfgn import DFGN

    pipes = []
    for graphs in (True, False):
        pipe = _pipe("cuda", cuda_graphs=graphs)
        torch.manual_seed(0)
        pipe.unet = DFGN(**{**DFGN_PRESETS["tiny"], "num_frames": W, "size_delta_rank": 4,
                            "size_delta_off_latent": H // 2}).to("cuda").eval()
        with torch.no_grad():
            for q in pipe.unet.size_deltas.parameters():
                q.copy_(torch.randn(q.shape, generator=torch.Generator().manual_seed(q.numel())) * 0.05)
        pipe.step_fns = type(pipe.step_fns)(pipe.unet, pipe.device, enabled=graphs)
        pipes.append(pipe)
    p = SampleParams("x", frames=W, size=8 * H, steps=6, seed=5, guidance_image=1.5, strength=1.0)
    w, text = _window(True, 6, "cuda"), _text("cuda")
    with torch.no_grad():
        a, b = (pp._denoise(w, p, text, torch.Generator().manual_seed(5), None) for pp in pipes)
    assert any(v is not None for v in pipes[0].step_fns._built.values()), "capture failed (see the warning)"
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_a_window_asked_for_more_steps_than_the_schedule_has_runs_them_all():
    """``run`` above ``steps`` once gave a negative skip: the last timestep alone, from a negative begin index, and
    NaN latents. It now runs the whole schedule."""
    calls = []
    pipe = _pipe()
    pipe.unet.register_forward_hook(lambda m, a, out: calls.append(int(a[1].flatten()[0])))
    p = SampleParams("x", frames=W, size=8 * H, steps=3, seed=3, guidance_image=1.5)
    with torch.no_grad():
        out = pipe._denoise(_window(True, 4), p, _text(), torch.Generator().manual_seed(3), None)
    assert torch.isfinite(out).all() and len(calls) == 3 and calls[0] == 999
