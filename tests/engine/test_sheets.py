"""diffusion/sheets: labelled sheets (a caption per row, titled columns) and the training preview, which shows each
previewed caption's real clip beside what the model draws for it now."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from rdtf_engine.diffusion.sheets import PREVIEW_FRAMES, grid_image, labelled_sheet, preview_frames, sample_grid


def test_a_labelled_sheet_has_a_block_per_title_and_a_row_per_caption():
    red = np.zeros((3, 8, 8, 4), np.uint8)
    red[..., 0] = red[..., 3] = 255
    clear = np.zeros((3, 8, 8, 4), np.uint8)
    sheet = np.asarray(labelled_sheet(["a", "b"], [[red, clear], [clear, red]], ("one", "two"), cell=8, label_w=20))
    assert sheet.shape == (22 + 2 * 8, 20 + 2 * 3 * 8 + 12, 3)
    assert (sheet[22:30, 20:44] == [255, 0, 0]).all()  # row a, first block: opaque red
    assert (sheet[22:30, 56:80] == grid_image([clear])).all()  # row a, second block: the checkerboard


def test_preview_frames_are_evenly_spaced_first_and_last_included():
    assert preview_frames(8) == [0, 2, 5, 7] and preview_frames(72) == [0, 24, 47, 71]
    assert preview_frames(2) == [0, 0, 1, 1] and preview_frames(1) == [0, 0, 0, 0]


def test_the_training_preview_shows_each_caption_beside_its_real_clip(tiny_run, tmp_path):
    from rdtf_engine.core.config import ModelConfig
    from rdtf_engine.data.latent_cache import build_latent_cache
    from rdtf_engine.data.sources import open_source
    from rdtf_engine.model.autoencoder import decode_latents, tensor_to_rgba
    from rdtf_engine.model.store import load_model_folder

    unet, vae, card = load_model_folder(tiny_run[0] / "model")
    src = open_source("builtin:shapes", card.size, num_clips=3, seed=5)
    cache = build_latent_cache([src[i] for i in range(3)], vae, card.latent_scale, torch.device("cpu"))
    req = ModelConfig(preset=card.preset, size=card.size, num_frames=card.num_frames)
    path = sample_grid(unet, vae, card.latent_scale, cache, [2, 0], req, tmp_path / "s" / "step_0000010.png", steps=2)
    sheet = np.asarray(Image.open(path).convert("RGB"))
    cell = card.size
    assert sheet.shape == (22 + 2 * cell, 150 + 2 * PREVIEW_FRAMES * cell + 12, 3)  # two captions: real | drawn
    frames = [cache.offsets[2] + j for j in preview_frames(cache.lengths[2])]
    real = tensor_to_rgba(decode_latents(vae, cache.latents[frames], card.latent_scale))
    assert (sheet[22 : 22 + cell, 150 : 150 + PREVIEW_FRAMES * cell] == grid_image([real])).all()  # clip 2 first
    assert not list((tmp_path / "s").glob("*.tmp.png"))  # written whole
