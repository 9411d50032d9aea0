"""Decoder-only fine-tuning keeps the latent space; the reconstruction metrics see blur, colour and alpha loss."""

import numpy as np
import torch
from PIL import Image, ImageFilter

from rdtf_engine.data.sources import open_source
from rdtf_engine.eval.pack_metrics import sharpness
from rdtf_engine.eval.reconstruction import alpha_iou, psnr, reconstruct, reconstruction_report
from rdtf_engine.model.autoencoder import build_autoencoder, rgba_to_tensor
from rdtf_engine.training.autoencoder import load_autoencoder, train_autoencoder


def _frames(n=4, size=32):
    src = open_source("builtin:shapes", size, num_clips=n, seed=0)
    return np.concatenate([src[i].frames for i in range(n)])  # (N, size, size, 4) uint8


def test_decoder_only_keeps_encoder_and_scale(tmp_path):
    torch.manual_seed(0)
    base = build_autoencoder("tiny", 32)
    base.register_to_config(scaling_factor=0.7)
    enc_before = {k: v.clone() for k, v in base.encoder.state_dict().items()}
    dec_before = {k: v.clone() for k, v in base.decoder.state_dict().items()}
    frames = _frames()
    vae, scale = train_autoencoder(None, tmp_path / "ae", "tiny", 3, torch.device("cpu"), batch_size=2,
                                   frames=frames, init_vae=base, decoder_only=True)
    assert scale == 0.7
    assert all(torch.equal(v, vae.encoder.state_dict()[k]) for k, v in enc_before.items())
    assert any(not torch.equal(v, vae.decoder.state_dict()[k]) for k, v in dec_before.items())
    again, s2 = load_autoencoder(tmp_path / "ae", torch.device("cpu"))
    x = rgba_to_tensor(frames[:2])
    assert s2 == 0.7 and torch.allclose(again.encode(x).latent_dist.mode(), vae.encode(x).latent_dist.mode())


def test_a_draft_size_alternates_the_batches_between_the_two_sizes(tmp_path, monkeypatch):
    """With ``draft_source`` every other step trains on the same data at the draft size (a two-size model's
    decoder must decode its drafts too); the saved info names the draft size."""
    import json

    import rdtf_engine.training.autoencoder as ae

    seen = []
    real_loss = ae.autoencoder_loss
    monkeypatch.setattr(ae, "autoencoder_loss", lambda vae, x: (seen.append(x.shape[-1]), real_loss(vae, x))[1])
    base = build_autoencoder("tiny", 32)
    train_autoencoder(None, tmp_path / "ae", "tiny", 4, torch.device("cpu"), batch_size=2, frames=_frames(),
                      init_vae=base, decoder_only=True, draft_source=open_source("builtin:shapes", 16, num_clips=4))
    assert seen == [32, 16, 32, 16]
    assert json.loads((tmp_path / "ae" / "ae.json").read_text())["draft_size"] == 16


def test_decoder_only_needs_a_start():
    import pytest

    from rdtf_engine.core.errors import InputError

    with pytest.raises(InputError):
        train_autoencoder(None, "unused", "tiny", 1, torch.device("cpu"), frames=_frames(1), decoder_only=True)


def test_reconstruction_metrics_order():
    real = _frames(2, 64)
    blurred = np.stack([np.asarray(Image.fromarray(f, "RGBA").filter(ImageFilter.GaussianBlur(2))) for f in real])
    shifted = real.copy()
    shifted[..., :3] = (shifted[..., :3].astype(int) // 2).astype(np.uint8)  # colour drift, same alpha
    assert psnr(real, real) == float("inf") and alpha_iou(real, real) == 1.0
    assert psnr(real, blurred) < 40 and psnr(real, shifted) < 40
    assert alpha_iou(real, shifted) == 1.0 and alpha_iou(real, blurred) < 1.0
    assert sharpness(blurred) < 0.7 * sharpness(real)


def test_reconstruct_round_trip_shapes():
    vae = build_autoencoder("tiny", 32).eval()
    frames = _frames(2)
    rec = reconstruct(vae, frames, torch.device("cpu"), batch=3)
    assert rec.shape == frames.shape and rec.dtype == np.uint8
    rep = reconstruction_report([frames], [rec])
    assert set(rep) >= {"psnr_db", "alpha_iou", "sharpness", "sharpness_real"} and rep["frames"] == len(frames)


def test_the_cpu_codes_a_pixel_budget_per_call_and_gives_the_same_pixels(monkeypatch):
    """On the CPU the autoencoder takes as many frames a call as fit its pixel budget (speed and peak memory), a
    chunk size given by the caller still rules, and neither latents nor pixels depend on the chunking."""
    from rdtf_engine.model import autoencoder as ae

    torch.manual_seed(0)
    vae = build_autoencoder("tiny", 32).eval()
    seen = []
    decode, encode = vae.decode, vae.encode
    vae.decode = lambda z, *a, **k: (seen.append(("dec", z.shape[0])), decode(z, *a, **k))[1]
    vae.encode = lambda x, *a, **k: (seen.append(("enc", x.shape[0])), encode(x, *a, **k))[1]
    z = torch.randn(7, 4, 4, 4)
    assert ae.frames_per_call(vae, 256 * 256, "decode") == 1 and ae.frames_per_call(vae, 128 * 128, "encode") == 4
    monkeypatch.setattr(ae, "CPU_CALL_PIXELS", 2 * 32 * 32 + 5)  # two 32² frames a call
    with torch.no_grad():
        auto = ae.decode_latents(vae, z, 0.5)
        lat = ae.encode_frames(vae, auto, 0.5)
        assert seen == [("dec", 2)] * 3 + [("dec", 1)] + [("enc", 2)] * 3 + [("enc", 1)]
        seen.clear()
        whole, lat_whole = ae.decode_latents(vae, z, 0.5, batch=16), ae.encode_frames(vae, auto, 0.5, batch=16)
    assert seen == [("dec", 7), ("enc", 7)]
    assert auto.shape == (7, 4, 32, 32) and torch.allclose(auto, whole, atol=1e-5)
    assert torch.allclose(lat, lat_whole, atol=1e-5)
