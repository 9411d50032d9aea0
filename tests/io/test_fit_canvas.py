"""formats.timing.fit_canvas resizes the frames side by side in threads: the same pixels as one frame at a time."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rdtf_engine.formats.timing import fit_canvas


def _one_by_one(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    f, h, w = frames.shape[:3]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    out = np.zeros((f, height, width, 4), np.uint8)
    ox, oy = (width - nw) // 2, (height - nh) // 2
    for i in range(f):
        im = Image.fromarray(frames[i], "RGBA").resize((nw, nh), Image.Resampling.LANCZOS)
        out[i, oy : oy + nh, ox : ox + nw] = np.asarray(im)
    return out


@pytest.mark.parametrize(("width", "height"), [(256, 256), (512, 512), (300, 200), (64, 96), (128, 128)])
def test_threaded_resize_gives_the_frame_by_frame_pixels(width, height):
    frames = np.random.default_rng(0).integers(0, 256, (9, 128, 128, 4), dtype=np.uint8)
    frames[:, :, :, 3][frames[:, :, :, 3] < 64] = 0  # transparent pixels with hidden colour: premultiplied resize
    got = fit_canvas(frames, width, height)
    assert got.shape == (9, height, width, 4) and np.array_equal(got, _one_by_one(frames, width, height))


def test_same_size_is_a_copy_and_a_single_frame_works():
    frames = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 4), dtype=np.uint8)
    same = fit_canvas(frames, 32, 32)
    assert np.array_equal(same, frames) and same is not frames
    assert np.array_equal(fit_canvas(frames[:1], 48, 48), _one_by_one(frames[:1], 48, 48))


def _in_a_worker(frames: np.ndarray) -> np.ndarray:
    return fit_canvas(frames, 96, 96)


def test_a_pool_worker_resizes_on_one_thread_with_the_same_pixels(monkeypatch):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    frames = np.random.default_rng(2).integers(0, 256, (4, 64, 64, 4), dtype=np.uint8)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        assert np.array_equal(pool.submit(_in_a_worker, frames).result(), _one_by_one(frames, 96, 96))
    from rdtf_engine.formats import timing

    monkeypatch.setattr(timing, "ThreadPoolExecutor", None)  # a worker process never makes threads
    monkeypatch.setattr(timing.multiprocessing, "parent_process", lambda: object())
    assert np.array_equal(fit_canvas(frames, 96, 96), _one_by_one(frames, 96, 96))
