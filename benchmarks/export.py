"""Export benchmark: wall ms and output bytes per preset for a busy 16-frame clip at 256 and 512 px.

Prints one JSON document to stdout. Each number is a full export as the CLI runs it minus file I/O: conform
to the preset, the byte-cap search (every encode it needs), and the check of the result; one warm-up export
per preset first, so library imports are not timed. Run:
``python benchmarks/export.py [--frames 16] [--sizes 256,512] [--presets telegram,whatsapp] [--repeat 1]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "io"))

# tests/io's generator: one corpus for tests and benchmark
from io_corpus import busy_frames

from rdtf_engine.core.clip import Clip
from rdtf_engine.platforms.conform import ExportOptions
from rdtf_engine.platforms.export import encode_for_preset
from rdtf_engine.platforms.presets import PRESETS


def busy_clip(frames: int, size: int, seed: int = 0) -> Clip:
    """The same worst-case-ish busy sticker art the preset tests check (tests/io/io_corpus.py)."""
    return Clip(busy_frames(frames, size, seed), [100] * frames, "busy benchmark clip")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--sizes", default="256,512")
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest is reported")
    args = ap.parse_args()
    results = []
    warm = busy_clip(4, 64)
    for name in args.presets.split(","):  # first use imports PyAV / imagequant / libwebp: keep it out of the timings
        encode_for_preset(warm, PRESETS[name], ExportOptions(), None)
    for size in (int(s) for s in args.sizes.split(",")):
        clip = busy_clip(args.frames, size)
        for name in args.presets.split(","):
            preset = PRESETS[name]
            best_ms, data, report = None, b"", {}
            for _ in range(max(1, args.repeat)):
                t0 = time.perf_counter()
                data, report = encode_for_preset(clip, preset, ExportOptions(), {"prompt": "benchmark"})
                ms = (time.perf_counter() - t0) * 1000
                best_ms = ms if best_ms is None else min(best_ms, ms)
            results.append({
                "preset": name, "size": size, "frames_in": args.frames, "frames_out": report["info"]["frames"],
                "ms": round(best_ms, 1), "bytes": len(data), "cap_bytes": preset.max_bytes,
                "encodes": report["encodes"], "ok": report["ok"], "trades": report["trades"],
            })
            print(f"{name:16s} {size:4d}px {best_ms:9.0f} ms {len(data):10,d} B", file=sys.stderr)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(json.dumps({
        "benchmark": "export",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "load_avg_at_end": [round(x, 2) for x in load] if load else None},
        "content": "busy: moving gradients + 12 moving discs + noise sigma 3, round alpha with 2 px edge",
        "results": results,
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
