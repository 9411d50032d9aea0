"""Decoding: compositing by the specs, durations, formats detected by content, resampling."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ffmpeg_rgba, need_tool, run_tool
from io_corpus import (
    ApngFrame,
    GifFrame,
    apng_reference,
    build_apng,
    build_gif,
    gif_reference,
    simple_frames,
    tgs_bytes,
)

from rdtf_engine.core.clip import Clip
from rdtf_engine.formats.encoders import encode_webm
from rdtf_engine.formats.loader import load_clip
from rdtf_engine.formats.timing import normalise_durations, resample_clip
from rdtf_engine.platforms.export import write_clip

PAL = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)


def odd_gif() -> tuple[bytes, np.ndarray]:
    """Partial frames with every disposal (0 unspecified, 1 keep, 2 clear, 3 restore), with and without a
    transparent index, and delays 50 / 0 / 120 / 10 / 200 ms (0 and 10 play as 100 ms in browsers)."""
    w, h = 20, 16
    bg = np.full((h, w), 1, np.uint8)
    bg[4:8, 4:8] = 0  # a hole through the transparent index
    frames = [
        GifFrame(0, 0, bg, delay_cs=5, disposal=1, transparent=0),
        GifFrame(5, 3, np.full((6, 6), 2, np.uint8), delay_cs=0, disposal=3),
        GifFrame(8, 8, np.where(np.eye(5, dtype=bool), 4, 0).astype(np.uint8), delay_cs=12, disposal=2,
                 transparent=0),
        GifFrame(2, 2, np.full((3, 3), 3, np.uint8), delay_cs=1, disposal=0),
        GifFrame(0, 0, np.full((2, 2), 4, np.uint8), delay_cs=20, disposal=2),
    ]
    return build_gif(w, h, PAL, frames, comment=b"hello"), gif_reference(w, h, PAL, frames)


def odd_apng(hidden_default: bool = False) -> tuple[bytes, np.ndarray]:
    red = np.zeros((10, 10, 4), np.uint8)
    red[...] = (255, 0, 0, 255)
    blue = np.zeros((6, 6, 4), np.uint8)
    blue[...] = (0, 0, 255, 128)
    green = np.zeros((4, 4, 4), np.uint8)
    green[...] = (0, 255, 0, 200)
    frames = [ApngFrame(0, 0, red, 100), ApngFrame(2, 2, blue, 50, dispose=2, blend=1),
              ApngFrame(5, 5, green, 0, dispose=1, blend=1), ApngFrame(0, 0, blue, 70, blend=1)]
    hidden = np.zeros((10, 10, 4), np.uint8) if hidden_default else None
    return build_apng(10, 10, frames, hidden_default=hidden), apng_reference(10, 10, frames)


def test_gif_disposal_and_partial_frames_match_browser_reference():
    data, ref = odd_gif()
    clip = load_clip(data, name_hint="odd.gif")
    assert clip.num_frames == 5
    np.testing.assert_array_equal(clip.frames, ref)
    assert clip.durations_ms == [50, 100, 120, 100, 200]  # 0 and 10 ms normalised like browsers
    assert clip.labels["raw_durations_ms"] == [50.0, 0.0, 120.0, 10.0, 200.0]


def test_gif_frame_count_and_delays_agree_with_imagemagick(tmp_path):
    identify = need_tool("identify")
    data, _ = odd_gif()
    path = tmp_path / "odd.gif"
    path.write_bytes(data)
    lines = run_tool(identify, "-format", "%T %D\n", str(path)).split()
    assert lines[0::2] == ["5", "0", "12", "1", "20"]  # centiseconds as stored
    assert lines[1::2] == ["None", "Previous", "Background", "Undefined", "Background"]


@pytest.mark.parametrize("hidden_default", [False, True])
def test_apng_blend_and_dispose_match_spec_and_ffmpeg(tmp_path, hidden_default):
    data, ref = odd_apng(hidden_default)
    clip = load_clip(data)
    assert clip.num_frames == 4  # a default image outside the animation is not a frame
    np.testing.assert_array_equal(clip.frames, ref)
    assert clip.durations_ms == [100, 50, 100, 70]
    path = tmp_path / "odd.png"
    path.write_bytes(data)
    if not hidden_default:
        np.testing.assert_array_equal(ffmpeg_rgba(path, 10, 10), ref)


def test_webp_alpha_and_variable_durations_round_trip(tmp_path, small_clip):
    out = tmp_path / "a.webp"
    write_clip(small_clip, out, lossless=True)
    back = load_clip(out)
    assert back.num_frames == small_clip.num_frames
    assert back.durations_ms == small_clip.durations_ms
    np.testing.assert_array_equal(back.frames[..., 3], small_clip.frames[..., 3])
    visible = small_clip.frames[..., 3] > 0
    np.testing.assert_array_equal(back.frames[visible], small_clip.frames[visible])


def test_webm_vp9_alpha_survives_decoding():
    frames = simple_frames(5, 48, 40)
    data, _ = encode_webm(frames, [100, 100, 200, 100, 100], crf=10)
    clip = load_clip(data, name_hint="x.webm")
    assert clip.num_frames == 5 and clip.labels["alpha"] is True
    assert clip.durations_ms == [100, 100, 200, 100, 100]
    assert (clip.frames[:, 0, 0, 3] < 10).all()  # transparent corner stays transparent
    assert (clip.frames[:, 14, 20, 3] > 245).any()  # the opaque square is opaque
    # Semi-transparent bar (alpha 128) keeps partial alpha.
    assert 90 < int(np.median(clip.frames[:, 31, 20, 3])) < 170


def test_mp4_decodes_opaque():
    av = pytest.importorskip("av")
    import io

    if "libx264" not in av.codecs_available:
        pytest.skip("no H.264 encoder in this PyAV build")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(4):
            img = np.zeros((32, 32, 3), np.uint8)
            img[:, i * 8 : i * 8 + 8] = 200
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    data = buf.getvalue()
    clip = load_clip(data, name_hint="clip.mp4")
    assert clip.num_frames == 4 and (clip.frames[..., 3] == 255).all()
    assert clip.labels["format"] == "mp4"


def test_tgs_renders_with_straight_alpha():
    clip = load_clip(tgs_bytes(frames=30, fps=30, size=64), name_hint="💃.tgs")
    assert clip.num_frames == 30 and sum(clip.durations_ms) == pytest.approx(1000, abs=30)
    assert clip.caption == "dancer"
    px = clip.frames[0][clip.frames[0][..., 3] > 0]
    assert len(px) and abs(int(px[0, 3]) - 128) < 3 and px[0, 0] > 250  # 50% red, un-premultiplied


def test_tgs_long_animation_resampled_to_budget():
    clip = load_clip(tgs_bytes(frames=180, fps=60, size=64), max_frames=12)
    assert clip.num_frames == 12
    assert sum(clip.durations_ms) == pytest.approx(3000, abs=2)


def test_format_comes_from_content_not_extension(tmp_path):
    data, _ = odd_gif()
    path = tmp_path / "looks_like.webp"
    path.write_bytes(data)
    clip = load_clip(path)
    assert clip.labels["format"] == "gif" and clip.caption == "looks like"


def test_static_png_and_16_bit_png(tmp_path):
    from PIL import Image

    Image.new("RGBA", (8, 6), (1, 2, 3, 4)).save(tmp_path / "s.png")
    clip = load_clip(tmp_path / "s.png")
    assert clip.frames.shape == (1, 6, 8, 4) and tuple(clip.frames[0, 0, 0]) == (1, 2, 3, 4)
    Image.fromarray(np.full((4, 4), 65535, np.uint16)).save(tmp_path / "g16.png")
    assert load_clip(tmp_path / "g16.png").frames[0, 0, 0, 0] == 255


def test_frames_folder_with_durations(tmp_path):
    from PIL import Image

    frames = simple_frames(3)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(tmp_path / f"frame_{i + 1}.png")
    (tmp_path / "durations.json").write_text(json.dumps([50, 0, 70]))
    clip = load_clip(tmp_path)
    np.testing.assert_array_equal(clip.frames, frames)
    assert clip.durations_ms == [50, 100, 70]


def test_normalise_durations_like_browsers():
    assert normalise_durations([0, 5, 10, 11, 20, 33.4]) == [100, 100, 100, 11, 20, 33]


def test_resample_keeps_total_duration_and_loop():
    frames = np.arange(10, dtype=np.uint8)[:, None, None, None].repeat(4, axis=3).repeat(2, 1).repeat(2, 2)
    clip = Clip(frames, [10, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    out = resample_clip(clip, 4)
    assert out.num_frames == 4 and sum(out.durations_ms) == sum(clip.durations_ms)
    # slot midpoints at 68.75, 206.25, 343.75, 481.25 ms fall in source frames 3, 5, 7, 9
    assert out.frames[:, 0, 0, 0].tolist() == [3, 5, 7, 9]
    assert out.labels["original_frames"] == 10
    assert resample_clip(clip, 20) is clip


def test_long_clip_decoded_with_bounded_memory_keeps_timing():
    pal = PAL
    frames = [GifFrame(0, 0, np.full((4, 4), 1 + i % 4, np.uint8), delay_cs=2) for i in range(300)]
    clip = load_clip(build_gif(4, 4, pal, frames), max_frames=16)
    assert clip.num_frames == 16 and sum(clip.durations_ms) == 300 * 20
    assert clip.labels["original_frames"] == 300
