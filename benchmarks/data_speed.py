"""Data-pipeline benchmark: clips/s of training sources decoded (or drawn) and rendered into training windows.

Prints one JSON document to stdout: per (source, size, workers) the seconds to open the source, clips/s and
frames/s of ``render_many`` (what training's data preparation runs before encoding), and the mean window
length. Sources that are not available here (no fetched Fluent data and no RDTF_FLUENT_CACHE, no emoji font)
are reported as skipped. One warm-up clip per source first, so imports are not timed. Run:
``python benchmarks/data_speed.py [--specs builtin:fluent,builtin:emoji] [--sizes 256,128] [--clips 64]
[--workers 1,0]`` (workers 0 = all cores).
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

from rdtf_engine.core.errors import RdtfError
from rdtf_engine.data.sources import open_source, render_many


def measure(spec: str, size: int, clips: int, workers: int, seed: int) -> dict:
    t0 = time.perf_counter()
    src = open_source(spec, size, seed=seed)
    opened = time.perf_counter() - t0
    src[0]  # warm-up: lazy imports, font, first decode
    ids = [(i * 7919) % len(src) for i in range(1, clips + 1)]  # spread over files, not file 0 over and over
    t1 = time.perf_counter()
    out = render_many(src, ids, workers)
    dt = time.perf_counter() - t1
    frames = sum(c.num_frames for c in out)
    return {"spec": spec, "size": size, "workers": workers or (os.cpu_count() or 1), "clips": clips,
            "open_s": round(opened, 2), "seconds": round(dt, 2), "clips_per_s": round(clips / dt, 2),
            "frames_per_s": round(frames / dt, 1), "mean_frames": round(frames / clips, 1),
            "store": getattr(getattr(src, "store", None), "kind", None)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--specs", default="builtin:fluent,builtin:emoji")
    ap.add_argument("--sizes", default="256,128")
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--workers", default="1,0", help="comma list; 0 = all cores")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    results, skipped = [], {}
    for spec in [s for s in args.specs.split(",") if s]:
        for size in [int(s) for s in args.sizes.split(",") if s]:
            for workers in [int(w) for w in args.workers.split(",") if w]:
                try:
                    results.append(measure(spec, size, args.clips, workers, args.seed))
                except RdtfError as exc:
                    skipped[spec] = str(exc)
                    break
            if spec in skipped:
                break
    print(json.dumps({"host": {"python": platform.python_version(), "machine": platform.machine(),
                               "cpus": os.cpu_count(), "load_avg": [round(v, 1) for v in os.getloadavg()]},
                      "results": results, "skipped": skipped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
