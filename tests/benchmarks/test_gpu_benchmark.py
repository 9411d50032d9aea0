"""benchmarks/gpu.py's peer, built in a tiny layout of the same structure on the CPU: it runs, and a failing peer
ends up in the JSON instead of ending the benchmark."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture
def bench(load_script):
    return load_script("benchmarks/gpu.py")


def test_peer_step_runs_on_a_tiny_layout_of_the_same_structure(bench):
    torch.manual_seed(0)
    unet, vae = bench.build_peer("cpu", torch.float32, layout="tiny")
    eps = bench.peer_step_fn(unet, frames=16, latent=8)()  # 16 frames: the benchmark's clip length
    assert eps.shape == (2, 4, 16, 8, 8) and torch.isfinite(eps).all()
    with torch.no_grad():
        assert vae.decode(torch.randn(2, 4, 4, 4)).sample.shape == (2, 3, 32, 32)


def test_peer_failure_is_reported_not_raised(monkeypatch, bench):

    def broken(*a, **k):
        raise RuntimeError("shape mismatch in motion attention")

    monkeypatch.setattr(bench, "build_peer", broken)
    out = {"B1": {"eager_dpm_20_ms": 10.0}, "B2": {"paper_step_ms": 1.0}}
    bench.run_peer(out, iters=3)
    assert out["peer_error"] == "RuntimeError: shape mismatch in motion attention"
    assert "speedup_vs_peer" not in out["B1"]


def test_peer_ratios_cover_only_the_parts_measured(monkeypatch, bench):
    """--parts b1: the peer's clip gives B1 its ratios, and no B2 entry is made up."""
    monkeypatch.setattr(bench, "build_peer", lambda: (torch.nn.Linear(2, 2), None))
    monkeypatch.setattr(bench, "peer_clip_s", lambda *a: 1.0)
    monkeypatch.setattr(bench, "peer_step_fn", lambda *a: (lambda: None))
    monkeypatch.setattr(bench, "timed", lambda fn, iters: 0.05)
    out = {"B1": {"graph_lcm_4_ms": 20.0, "model": "x"}}
    bench.run_peer(out, iters=3)
    assert "peer_error" not in out, out.get("peer_error")
    assert out["B1"]["speedup_vs_peer"] == {"graph_lcm_4": 50.0} and "B2" not in out


@pytest.mark.parametrize("parts", ["b4", ",", "b1,b5"])
def test_unknown_parts_are_refused(monkeypatch, bench, parts):
    monkeypatch.setattr("sys.argv", ["gpu.py", "--parts", parts])
    with pytest.raises(SystemExit, match="--parts takes b1, b2 and b3"):
        bench.main()


def test_training_step_learns_on_a_tiny_model(bench):
    from rdtf_engine.model.dfgn import build_dfgn

    torch.manual_seed(0)
    model = build_dfgn("tiny", num_frames=4).train()
    before = [p.detach().clone() for p in model.parameters()]
    step = bench.train_step_fn(model, batch=2, frames=4, latent=4, device="cpu")
    for _ in range(2):
        step()
    changed = sum(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert changed > len(before) // 2  # the fused AdamW update reached the weights
    assert all(p.grad is None for p in model.parameters())  # set to none after each step, as the loop does


@pytest.mark.gpu
def test_graphed_step_updates_the_weights_as_the_eager_step_does(bench):
    from rdtf_engine.model.dfgn import build_dfgn

    weights = []
    for graphed in (False, True):
        torch.manual_seed(0)
        model = build_dfgn("tiny", num_frames=4).to("cuda").train()
        torch.manual_seed(1)
        step = bench.train_step_fn(model, batch=4, frames=4, latent=8, graphed=graphed)
        if not graphed:  # the graphed factory runs 3 warm-up steps before its capture: the eager one catches up
            for _ in range(3):
                step()
        step()
        torch.cuda.synchronize()
        weights.append(torch.cat([p.detach().float().flatten() for p in model.parameters()]))
    assert torch.allclose(weights[0], weights[1], rtol=1e-2, atol=1e-3)


def test_b2_arms_run_and_report_their_difference_from_autocast(monkeypatch, bench):
    """The B2 arms on a tiny network on the CPU (the graph and compiled arms need a GPU): the bf16-weight step
    runs, its ε̂ stays near the autocast baseline, and every time comes with its share of the card's peak."""
    calls = []

    def once(fn, iters, warmup=2):
        calls.append(fn())
        return 0.01

    monkeypatch.setattr(bench, "timed", once)
    torch.manual_seed(0)
    arms = bench.paper_step_arms(1, preset="tiny", frames=4, latent=8, device="cpu", peak_tflops=1.0)
    assert set(arms) == {"paper_step_ms", "paper_step_bf16_weights_ms", "bf16_weights_max_rel_diff", "step_gflop",
                         "share_of_peak"}
    assert arms["paper_step_ms"] == arms["paper_step_bf16_weights_ms"] == 10.0
    assert calls[0].shape == calls[1].shape == (2, 4, 4, 8, 8) and calls[1].dtype == torch.bfloat16
    assert 0 <= arms["bf16_weights_max_rel_diff"] < 0.1
    assert arms["step_gflop"] > 0  # counted on the baseline's step: 0.01 s at 1 TFLOP/s is 10 GFLOP a share of 1
    assert arms["share_of_peak"]["paper_step"] == pytest.approx(arms["step_gflop"] / 10, abs=2e-3)


def test_b2_ratios_to_the_compiled_peer(monkeypatch, bench):
    monkeypatch.setattr(bench, "build_peer", lambda: (torch.nn.Linear(2, 2), None))
    monkeypatch.setattr(bench, "peer_clip_s", lambda *a: 1.0)
    monkeypatch.setattr(bench, "peer_step_fn", lambda *a: (lambda: None))
    monkeypatch.setattr(bench, "timed", lambda fn, iters: 0.08)
    monkeypatch.setattr(bench, "_compiled_peer_step", lambda unet, iters: {"compiled_step_ms": 40.0, "compile_s": 9})
    out = {"B2": {"paper_step_ms": 60.0, "paper_step_bf16_compiled_graph_ms": 20.0, "bf16_compiled_graph_compile_s": 5}}
    bench.run_peer(out, iters=3, compile_step=True)
    assert "peer_error" not in out, out.get("peer_error")
    assert out["B2"]["time_vs_peer"] == {"paper_step": 0.75, "paper_step_bf16_compiled_graph": 0.25}
    assert out["B2"]["time_vs_peer_compiled"] == {"paper_step": 1.5, "paper_step_bf16_compiled_graph": 0.5}
    assert out["peer"]["compiled_step_ms"] == 40.0


class _FakeApi:
    """generate() runs the network on a fixed input and returns its output as uint8 frames, like a sticker."""

    def __init__(self, pipe, fail: bool = False):
        self.pipe, self.fail, self.layouts = pipe, fail, []

    def generate(self, req):
        import types

        conv = self.pipe.unet.conv_in.weight
        self.layouts.append(conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous())
        if self.fail:
            raise RuntimeError("no kernel for this layout")
        x = torch.linspace(-1, 1, 2 * 4 * 4 * 8 * 8).reshape(2, 4, 4, 8, 8)
        with torch.no_grad():
            eps = self.pipe.unet(x, torch.tensor([500, 500]), torch.zeros(2, 8, 384), torch.zeros_like(x))
        return types.SimpleNamespace(frames=((eps.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy())


@pytest.mark.parametrize("fail", [False, True])
def test_channels_last_arm_times_reports_and_puts_the_network_back(monkeypatch, bench, fail):
    import types

    from rdtf_engine.model.dfgn import build_dfgn

    torch.manual_seed(0)
    cleared = []
    pipe = types.SimpleNamespace(unet=build_dfgn("tiny", num_frames=4).eval(),
                                 step_fns=types.SimpleNamespace(clear=lambda: cleared.append(1)))
    api = _FakeApi(pipe)
    reference = api.generate(None).frames
    api.fail = fail
    monkeypatch.setattr(bench, "timed", lambda fn, iters, warmup=2: (fn(), 0.02)[1])
    out = bench.channels_last_arm(api, pipe, "model", 64, 1, reference, device="cpu")
    assert api.layouts[1] is True  # the timed stickers ran on channels-last weights
    if fail:
        assert out == {"channels_last_error": "RuntimeError: no kernel for this layout"}
    else:
        assert out["graph_dpm_20_channels_last_ms"] == 20.0
        assert 0 <= out["channels_last_vs_graph_max_pixel_diff"] <= 1  # the same maths in another layout
        assert out["channels_last_vs_graph_share_over_2_levels"] == 0.0
    assert pipe.unet.conv_in.weight.is_contiguous() and len(cleared) == 2  # put back, graphs rebuilt
