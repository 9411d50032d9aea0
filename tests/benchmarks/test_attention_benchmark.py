"""benchmarks/attention.py: the mask carried as a q/k channel gives masked attention's output, padded keys and
all-padded rows included, and the shapes are the `small` preset's."""

from __future__ import annotations

import pytest
import torch

from rdtf_engine.model.blocks import masked_attention


@pytest.fixture
def bench(load_script):
    return load_script("benchmarks/attention.py")


@pytest.mark.parametrize("d", [8, 32, 40])  # an extra channel alone, and a full block of 8 added
def test_bias_column_equals_masked_attention(bench, d):
    torch.manual_seed(0)
    n, h, t = 6, 2, 12
    q, k, v = (torch.randn(n, h, t, d) * 3 for _ in range(3))
    mask = torch.rand(n, t) > 0.4
    mask[0] = False  # a row of nothing but padding: masked_attention lets it see every key
    mask[1, 1:] = False
    got = bench.bias_column_attention(q, k, v, mask)
    want = masked_attention(q, k, v, mask)
    assert got.shape == want.shape == (n, h, t, d)
    torch.testing.assert_close(got[1:], want[1:], rtol=1e-5, atol=1e-5)
    # the all-padded row (never made by the data) sees every key alike, up to the rounding of logits near -1e4
    torch.testing.assert_close(got[0], want[0], rtol=0, atol=1e-2)
    # the padded keys really are ignored: changing their values changes nothing
    k2, v2 = k.clone(), v.clone()
    k2[1, :, 1:], v2[1, :, 1:] = 100.0, -100.0
    torch.testing.assert_close(bench.bias_column_attention(q, k2, v2, mask)[1], got[1], rtol=1e-5, atol=1e-5)


def test_gradients_match(bench):
    torch.manual_seed(1)
    mask = torch.rand(4, 8) > 0.3
    mask[:, 0] = True
    grads = []
    for fn in (bench.bias_column_attention, masked_attention):
        q, k, v = (torch.randn(4, 2, 8, 16, requires_grad=True) for _ in range(3))
        torch.manual_seed(2)
        q.data, k.data, v.data = (torch.randn(4, 2, 8, 16) for _ in range(3))
        fn(q, k, v, mask).square().sum().backward()
        grads.append([q.grad, k.grad, v.grad])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_shapes_are_the_small_presets_and_the_run_reports_every_variant(bench):
    shapes = bench.shapes(128, 256, 8)
    assert shapes["temporal_in"] == (128 * 32 * 32, 2, 8, 32)
    assert shapes["sti_level0"] == (128, 4, 8 * 16 * 16, 32)
    assert shapes["sti_level2"] == (128, 4, 8 * 4 * 4, 32)
    out = bench.main(["--batch", "2", "--size", "32", "--iters", "1", "--device", "cpu"])
    for name in ("temporal_in", "sti_level0", "sti_level1", "sti_level2"):
        row = out[name]
        assert {"masked_ms", "bias_column_ms", "unmasked_ms", "bias_column_vs_masked"} <= set(row)
        assert row["bias_column_max_diff"] < 1e-5
