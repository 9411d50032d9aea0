"""tools/make_test_packs.py: the 12 fps copies keep every second frame for twice as long (the same loop), and a
reserved face is refused whatever a theme lists."""

from __future__ import annotations

import io

import pytest
from PIL import Image


@pytest.fixture
def tool(load_script):
    return load_script("tools/make_test_packs.py")


def _webp(n: int, duration: int = 40) -> bytes:
    frames = [Image.new("RGBA", (32, 32), (40 * i, 0, 255 - 40 * i, 255)) for i in range(n)]
    buf = io.BytesIO()
    frames[0].save(buf, format="WEBP", save_all=True, append_images=frames[1:], duration=duration, loop=0,
                   lossless=True)
    return buf.getvalue()


def test_every_second_frame_shown_as_long_as_the_two(tool, tmp_path):
    from rdtf_engine.formats.loader import load_clip

    out = tool.every_nth_frame(_webp(7), 2)  # an odd count: the last frame stands for itself alone
    with Image.open(io.BytesIO(out)) as im:
        kept = []
        for i in range(im.n_frames):
            im.seek(i)
            kept.append(im.convert("RGBA").getpixel((16, 16))[0])
    assert len(kept) == 4 and all(abs(k - want) <= 8 for k, want in zip(kept, (0, 80, 160, 240)))  # 0, 2, 4, 6
    (tmp_path / "x.webp").write_bytes(out)
    assert load_clip(str(tmp_path / "x.webp")).durations_ms == [80, 80, 80, 40]  # 7 × 40 ms: the same loop


def test_a_reserved_face_is_refused(tool, tmp_path):
    with pytest.raises(SystemExit, match="reserved face"):
        tool.write_pack(tmp_path / "p", ["1f600"], {"1f600": _webp(2)})
