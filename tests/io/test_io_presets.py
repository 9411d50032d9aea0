"""Every preset's export passes its own check for busy 8, 16 and 48-frame clips.

Platform presets get 512 px input (their canvas and byte rules are what is tested); the plain gif/apng/webp
presets have no size or byte rule, so they get 128 px input to keep the matrix inside the CPU budget.
"""

from __future__ import annotations

import pytest

from rdtf_engine.platforms.check import check_bytes
from rdtf_engine.platforms.conform import ExportOptions
from rdtf_engine.platforms.export import encode_for_preset
from rdtf_engine.platforms.presets import PRESETS

RECIPE = {"prompt": "busy test", "seed": 3, "model": "tiny"}
MATRIX = [(n, name) for n in (8, 16, 48) for name in PRESETS]


@pytest.mark.parametrize("frames,preset", MATRIX, ids=[f"{n}f-{p}" for n, p in MATRIX])
def test_preset_output_passes_its_own_check(frames, preset, busy_cache):
    p = PRESETS[preset]
    clip = busy_cache(frames, 128 if p.user_sized else 512)
    data, report = encode_for_preset(clip, p, ExportOptions(), RECIPE)
    failed = [r for r in report["checks"] if not r["ok"]]
    assert report["ok"] and not failed, failed
    assert report["recipe"]["seed"] == 3
    if p.max_bytes:
        assert len(data) <= p.target_bytes
    if p.animated:
        assert report["info"]["frames"] >= max(2, p.min_frames)
    if frames == 48 and preset in ("telegram", "line"):
        # The check inside export is the same code; run it once more on the bytes as a user would.
        assert check_bytes(data, p)["ok"]
