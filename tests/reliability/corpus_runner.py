"""Run every file of a corpus folder through the real entry points in this process; print one JSON line each.

    python tests/reliability/corpus_runner.py FOLDER [MEMORY_MIB]

Entry points: ``load_clip`` (the decoder behind everything), ``rdtf check`` (``check_file`` with the Telegram
preset) and pack import (``iter_pack`` on the file). After a warm-up that loads every decoder library, the
address space is capped at what it is then + MEMORY_MIB (RLIMIT_AS), so a file that tries to allocate more
fails here as an untyped MemoryError instead of slowing the machine. CPU time (all threads) is measured per
file and entry point, so a busy machine does not make the numbers lie; ``rss_mib`` is the process high-water
mark after the call (so it bounds every file so far).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

from rdtf_engine.core.errors import RdtfError
from rdtf_engine.datasets.pack import iter_pack
from rdtf_engine.formats.loader import load_clip
from rdtf_engine.platforms.check import check_file


def _pack(path: Path) -> str:
    outcomes = sorted({type(v).__name__ if isinstance(v, Exception) else "Clip" for _, v in iter_pack(path)})
    for name in outcomes:
        if name != "Clip" and not name.endswith("Error"):
            return f"UNTYPED {name}"
    return ",".join(outcomes) or "empty"


ENTRY_POINTS = {
    "load_clip": lambda p: type(load_clip(p)).__name__,
    "check": lambda p: "report" if isinstance(check_file(p, "telegram"), dict) else "?",
    "pack": _pack,
}


def run_one(path: Path, entry: str) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        outcome = ENTRY_POINTS[entry](path)
    except RdtfError as exc:
        outcome = type(exc).__name__
    except BaseException as exc:  # noqa: BLE001 - the point: report anything untyped
        outcome = f"UNTYPED {type(exc).__name__}: {str(exc)[:200]}"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"file": path.name, "entry": entry, "outcome": outcome, "cpu_s": round(time.process_time() - c0, 3),
            "wall_s": round(time.perf_counter() - t0, 3), "rss_mib": round(rss, 1)}


def cap_address_space(extra_mib: int) -> int:
    vm_kib = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith("VmSize:"))
    limit = vm_kib * 1024 + (extra_mib << 20)
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    return limit


def main(argv: list[str]) -> int:
    folder = Path(argv[0])
    files = sorted(p for p in folder.iterdir() if p.is_file())
    for p in files:  # warm-up: import every decoder (PyAV, rlottie, Pillow plugins) before the cap
        if p.name.startswith("valid."):
            for entry in ENTRY_POINTS:
                run_one(p, entry)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    limit = cap_address_space(int(argv[1]) if len(argv) > 1 else 1024) if sys.platform == "linux" else 0
    print(json.dumps({"base_rss_mib": round(base_rss, 1), "as_limit_mib": limit >> 20}), flush=True)
    for p in files:
        for entry in ENTRY_POINTS:
            print(json.dumps(run_one(p, entry)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
