"""autoencoder.clear_edge_haze: the decoder's faint alpha along the canvas edge is cleared from every decoded frame;
art in the band (solid, or the anti-aliased rim of solid art that touches the edge) and faint alpha inside stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rdtf_engine.model.autoencoder import EDGE_BAND, EDGE_HAZE, EDGE_REACH, clear_edge_haze, tensor_to_rgba

DEFAULT = Path(__file__).resolve().parents[2] / "resources" / "models" / "default"


def _alpha(size=32):
    return torch.zeros(1, size, size, 1)


def test_haze_in_the_band_is_cleared_and_nothing_else():
    a = _alpha()
    a[0, 0, 10] = a[0, 31, 20] = a[0, 15, EDGE_BAND - 1] = 0.1  # faint, in the band, no art near: haze
    a[0, 15, EDGE_BAND] = 0.1  # faint but one pixel inside the band: kept (a soft shadow may be faint)
    a[0, 20, 0] = EDGE_HAZE + 0.01  # not faint: kept
    out = clear_edge_haze(a.clone())
    assert out[0, 0, 10] == 0 and out[0, 31, 20] == 0 and out[0, 15, EDGE_BAND - 1] == 0
    assert out[0, 15, EDGE_BAND] == pytest.approx(0.1) and out[0, 20, 0] == pytest.approx(EDGE_HAZE + 0.01)
    assert torch.equal(out[a == 0], a[a == 0])


def test_art_touching_the_edge_keeps_its_rim():
    a = _alpha()
    a[0, 10:20, 0:6] = 1.0  # solid art crossing the left edge
    a[0, 9, 0:6] = a[0, 20, 0:6] = 0.2  # its anti-aliased rim, inside the band
    a[0, 20 + EDGE_REACH + 1, 0] = 0.2  # a faint pixel beyond the rim's reach: haze
    out = clear_edge_haze(a.clone())
    assert torch.equal(out[0, 9:21], a[0, 9:21])
    assert out[0, 20 + EDGE_REACH + 1, 0] == 0


def test_tiny_frames_are_left_alone():
    a = torch.full((2, 2 * EDGE_BAND, 2 * EDGE_BAND, 1), 0.1)
    assert torch.equal(clear_edge_haze(a.clone()), a)


def test_decoded_frames_come_out_without_it():
    x = -torch.ones(1, 4, 32, 32)
    x[:, :, 0, :] = 2 * 0.15 - 1  # a faint line along the top edge, premultiplied grey at alpha 0.15
    x[:, :, 12:20, 12:20] = 1.0  # and opaque white art in the middle
    out = tensor_to_rgba(x)
    assert (out[0, 0] == 0).all()  # transparent, colour zeroed with it
    assert (out[0, 12:20, 12:20] == 255).all()


@pytest.mark.slow  # the shipped autoencoder at 256 px
@pytest.mark.skipif(not (DEFAULT / "config.json").is_file(), reason="no shipped default model")
def test_the_shipped_decoder_leaves_no_haze_along_the_edge_of_real_art():
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.diffusion.pipeline import StickerPipeline
    from rdtf_engine.model.autoencoder import decode_latents, rgba_to_tensor

    pipe = StickerPipeline.from_pretrained(DEFAULT, "cpu")
    src = open_source("builtin:emoji", 256, num_clips=4, seed=0)
    frames = np.concatenate([src[i].frames[:1] for i in range(4)])  # (4, 256, 256, 4), empty edges
    pixels = decode_latents(pipe.vae, pipe._encode(rgba_to_tensor(frames)).to(pipe.device), pipe.scale)
    raw = ((pixels[:, 3] + 1) * 127.5).round()  # (4, 256, 256): the decoder's own alpha, haze and all
    band = torch.ones(256, 256, dtype=torch.bool)
    band[EDGE_BAND:-EDGE_BAND, EDGE_BAND:-EDGE_BAND] = False
    assert raw[:, band].max() >= 16  # the haze is there before (≥ 6 % alpha) …
    assert (tensor_to_rgba(pixels)[..., 3][:, band.numpy()] == 0).all()  # … and gone after


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_the_conversion_on_the_gpu_gives_the_hosts_pixels():
    """tensor_to_rgba runs where the decoded frames are; only the uint8 result comes to the host."""
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4, 4, 64, 64, generator=gen) * 2.2 - 1.1  # faint, solid and out-of-range values, edges included
    x[:, 3, :, :3] = -0.95  # faint alpha along one edge
    assert np.array_equal(tensor_to_rgba(x.cuda()), tensor_to_rgba(x))
