"""Writers and exports: round trips through decoders that are not Pillow, frame merging, recipes, checks."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
from conftest import ffmpeg_rgba, need_tool, run_tool
from io_corpus import simple_frames

from rdtf_engine.core.clip import Clip
from rdtf_engine.core.errors import ExportError, InputError, StorageError
from rdtf_engine.core.requests import ExportRequest
from rdtf_engine.formats.loader import load_clip
from rdtf_engine.platforms.byte_fit import Axis, fit_to_bytes
from rdtf_engine.platforms.check import check_file
from rdtf_engine.platforms.export import export_clip, write_clip
from rdtf_engine.platforms.presets import PRESETS

RECIPE = {"prompt": "cat waving", "seed": 7, "model": "small-v1"}


def dup_clip() -> Clip:
    """Six frames where frames 2-3 and 5-6 repeat (what Pillow/libwebp would merge), varied durations."""
    f = simple_frames(4)
    return Clip(np.stack([f[0], f[1], f[1], f[2], f[3], f[3]]), [40, 60, 80, 100, 120, 140], "dups")


def test_apng_round_trip_lossless_via_ffmpeg_and_keeps_duplicates(tmp_path):
    clip = dup_clip()
    out = tmp_path / "a.png"
    rep = write_clip(clip, out, recipe=RECIPE)
    assert rep["frames"] == 6 and "repeated frame" in rep["notes"][0]
    back = load_clip(out)
    assert back.num_frames == 6 and back.durations_ms == clip.durations_ms
    # Pixels identical except the one-alpha-level nudge at (0, 0) of the repeated frames.
    diff = np.abs(back.frames.astype(int) - clip.frames.astype(int))
    assert diff.sum() == 2 and diff[2, 0, 0, 3] == 1 and diff[5, 0, 0, 3] == 1
    ff = ffmpeg_rgba(out, 48, 40)
    np.testing.assert_array_equal(ff, back.frames)
    ffprobe = need_tool("ffprobe")
    times = run_tool(ffprobe, "-v", "error", "-show_entries", "frame=pts_time", "-of", "csv=p=0", str(out)).split()
    assert [round(float(t) * 1000) for t in times] == [0, 40, 100, 180, 280, 400]


def test_webp_round_trip_via_webpmux_keeps_frames_durations_loop_and_xmp(tmp_path):
    webpmux = need_tool("webpmux")
    out = tmp_path / "a.webp"
    write_clip(dup_clip(), out, loop=3, quality=80, recipe=RECIPE)
    info = run_tool(webpmux, "-info", str(out))
    assert "Number of frames: 6" in info and "Loop Count : 3" in info
    assert "XMP" in info and "transparency" in info
    durations = [int(m) for m in re.findall(r"^\s*\d+:\s+\d+\s+\d+\s+\w+\s+\d+\s+\d+\s+(\d+)", info, re.MULTILINE)]
    assert durations == [40, 60, 80, 100, 120, 140]
    xmp = tmp_path / "x.xmp"
    run_tool(webpmux, "-get", "xmp", str(out), "-o", str(xmp))
    assert "cat waving" in xmp.read_text()
    assert check_file(out, "webp")["recipe"]["seed"] == 7


def test_gif_round_trip_via_imagemagick(tmp_path):
    identify = need_tool("identify")
    clip = Clip(simple_frames(5), [33, 50, 100, 0, 250], "g")
    clip.durations_ms[3] = 15  # below the 20 ms floor browsers honour
    out = tmp_path / "a.gif"
    rep = write_clip(clip, out, recipe=RECIPE)
    fields = run_tool(identify, "-format", "%T %D %w %h\n", str(out)).split("\n")
    rows = [f.split() for f in fields if f.strip()]
    assert len(rows) == 5 and all(r[1] == "Background" for r in rows)  # disposal 2 on every frame
    delays = [int(r[0]) * 10 for r in rows]
    assert all(d >= 20 and d % 10 == 0 for d in delays) and sum(delays) == 450
    assert any("10 ms" in n for n in rep["notes"])
    comment = run_tool(identify, "-format", "%c", str(out))
    assert json.loads(comment.split("rdtf-recipe ", 1)[1])["prompt"] == "cat waving"
    back = load_clip(out)
    assert set(np.unique(back.frames[..., 3])) <= {0, 255}  # 1-bit alpha
    assert check_file(out, "gif")["info"]["loop"] == 0


def test_gif_keeps_repeated_frames_apart():
    from rdtf_engine.formats.encoders import encode_gif

    data, notes = encode_gif(dup_clip().frames, dup_clip().durations_ms)
    assert load_clip(data).num_frames == 6 and not any("merged" in n for n in notes)


def test_webm_round_trip_via_ffprobe_and_libvpx(tmp_path):
    ffprobe = need_tool("ffprobe")
    clip = Clip(simple_frames(6), [100, 100, 200, 100, 100, 100], "v")
    out = tmp_path / "a.webm"
    write_clip(clip, out, recipe=RECIPE)
    meta = json.loads(run_tool(ffprobe, "-v", "error", "-count_frames", "-show_entries",
                               "stream=codec_name,nb_read_frames,codec_type:stream_tags:format=duration:format_tags",
                               "-of", "json", str(out)))
    (stream,) = meta["streams"]
    assert stream["codec_name"] == "vp9" and stream["tags"]["alpha_mode"] == "1"
    assert int(stream["nb_read_frames"]) == 6 and float(meta["format"]["duration"]) == pytest.approx(0.7, abs=0.002)
    assert json.loads(meta["format"]["tags"]["RDTF_RECIPE"])["seed"] == 7
    frames = ffmpeg_rgba(out, 48, 40, decoder="libvpx-vp9")
    assert len(frames) == 6 and frames[0, 0, 0, 3] < 10 and frames[0, 14, 5, 3] > 245


def test_export_search_trades_and_reports(tmp_path, busy_cache):
    busy = busy_cache(8, 256)
    write_clip(busy, tmp_path / "in.webp", lossless=True)
    events = []
    rep = export_clip(ExportRequest(str(tmp_path / "in.webp"), "webp", str(tmp_path / "o.webp"),
                                    options={"max_kb": 60}, recipe=RECIPE), on_event=events.append)
    assert rep["bytes"] <= 60_000 and rep["trades"] and rep["encodes"] >= 2
    assert all(c["ok"] for c in rep["checks"]) and rep["recipe"]["prompt"] == "cat waving"
    assert os.path.getsize(rep["path"]) == rep["bytes"]
    assert any("try" in getattr(e, "message", "") for e in events)
    with pytest.raises(ExportError, match="cannot get the file under"):
        export_clip(ExportRequest(str(tmp_path / "in.webp"), "webp", str(tmp_path / "x.webp"),
                                  options={"max_kb": 0.5}))
    assert not (tmp_path / "x.webp").exists()


def test_byte_fit_search_order():
    axes = [Axis("quality", (90, 50, 10), ("q90", "q50", "q10")), Axis("fps", (1.0, 0.5), ("all", "half"))]
    cost = {(90, 1.0): 100, (50, 1.0): 80, (10, 1.0): 60, (90, 0.5): 45, (50, 0.5): 35, (10, 0.5): 30}
    res = fit_to_bytes(axes, lambda s: (b"x" * cost[(s["quality"], s["fps"])], []), 40)
    # quality alone cannot fit; fps is traded, then quality is won back as far as it fits.
    assert res.setting == {"quality": 50, "fps": 0.5} and res.trades == ["quality: q90 → q50", "fps: all → half"]


def test_check_lists_every_rule_and_fails_wrong_files(tmp_path):
    clip = Clip(simple_frames(6), [100] * 6, "x")
    write_clip(clip, tmp_path / "a.gif")
    rep = check_file(tmp_path / "a.gif", "telegram")
    assert not rep["ok"]
    failing = {r["name"] for r in rep["rules"] if not r["ok"]}
    assert {"format", "dimensions"} <= failing
    (tmp_path / "junk.webm").write_bytes(b"not a video")
    bad = check_file(tmp_path / "junk.webm", "telegram")
    assert not bad["ok"] and bad["rules"][0]["name"] == "readable"
    with pytest.raises(InputError):
        check_file(tmp_path / "a.gif", "myspace")


def test_kb_vs_kib_and_margins():
    assert PRESETS["whatsapp"].max_bytes == 500_000 and PRESETS["whatsapp"].target_bytes == 450_000
    assert PRESETS["signal"].max_bytes == 300 * 1024
    assert PRESETS["telegram"].max_bytes == 256_000 and PRESETS["telegram"].target_bytes < 256_000
    for p in PRESETS.values():
        assert p.sources or p.user_sized, p.name


def test_line_loops_and_whole_seconds(tmp_path, small_clip):
    write_clip(small_clip, tmp_path / "in.png")
    rep = export_clip(ExportRequest(str(tmp_path / "in.png"), "line", str(tmp_path / "l.png")))
    info = rep["info"]
    assert info["duration_ms"] == 1000 and 5 <= info["frames"] <= 20 and info["loop"] == 4
    write_clip(Clip(simple_frames(6), [300] * 6), tmp_path / "long.png")  # 1.8 s → 2 s; 4 loops = 8 s
    with pytest.raises(InputError, match="exceed"):
        export_clip(ExportRequest(str(tmp_path / "long.png"), "line", str(tmp_path / "l2.png"), options={"loop": 4}))
    rep2 = export_clip(ExportRequest(str(tmp_path / "long.png"), "line", str(tmp_path / "l3.png")))
    assert rep2["info"]["duration_ms"] == 2000 and rep2["info"]["loop"] == 2
    with pytest.raises(InputError, match="fixed canvas"):
        export_clip(ExportRequest(str(tmp_path / "in.png"), "whatsapp", str(tmp_path / "w.webp"),
                                  options={"size": 300}))
    with pytest.raises(InputError, match="name the output"):
        export_clip(ExportRequest(str(tmp_path / "in.png"), "telegram", str(tmp_path / "t.gif")))


def test_first_frame_rule_catches_fade_in(tmp_path):
    frames = simple_frames(6, 64, 64)
    frames[0] = 0  # an empty first frame: WhatsApp would show nothing as the still
    write_clip(Clip(frames, [100] * 6), tmp_path / "fade.webp")
    rep = check_file(tmp_path / "fade.webp", "whatsapp")
    (rule,) = [r for r in rep["rules"] if r["name"] == "first_frame_complete"]
    assert not rule["ok"]


def test_atomic_writes_leave_nothing_behind(tmp_path, small_clip, monkeypatch):
    import errno

    write_clip(small_clip, tmp_path / "x.webp")
    assert sorted(os.listdir(tmp_path)) == ["x.webp"]
    before = (tmp_path / "x.webp").read_bytes()

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StorageError, match="disk is full"):
        write_clip(Clip(simple_frames(2), [100, 100]), tmp_path / "x.webp")
    assert sorted(os.listdir(tmp_path)) == ["x.webp"] and (tmp_path / "x.webp").read_bytes() == before


@pytest.mark.parametrize("preset,expected", [("telegram", (512, 340)), ("line", (320, 213)),
                                             ("signal", (512, 512)), ("telegram-static", (512, 340))])
def test_non_square_canvas_rules(tmp_path, preset, expected):
    frames = np.zeros((4, 200, 301, 4), np.uint8)  # odd width: VP9 needs even sides, LINE a 270 px side
    frames[:, 50:150, 50:250] = (250, 120, 30, 255)
    frames[np.arange(4), 60, 60 + 40 * np.arange(4)] = (0, 0, 0, 255)
    write_clip(Clip(frames, [250] * 4), tmp_path / "wide.png")
    out = tmp_path / f"o{'.webm' if preset == 'telegram' else '.png'}"
    rep = export_clip(ExportRequest(str(tmp_path / "wide.png"), preset, str(out)))
    assert tuple(rep["info"]["size"]) == expected and rep["ok"]
