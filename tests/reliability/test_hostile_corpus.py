"""≥ 300 hostile files (tests/reliability/corpus.py) through load_clip, `rdtf check` and pack import.

Every file must give a typed result — a clip (or a check report) or an RdtfError subclass, never another
exception — within 2 s of CPU and 1 GiB of memory each. The files run in one subprocess
(corpus_runner.py) whose address space is capped at its post-import size + 1 GiB, so a decoder that
over-allocates fails as an untyped MemoryError there instead of swapping the test machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from corpus import build_corpus

MAX_CPU_S = 2.0
MAX_MEMORY_MIB = 1024


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory) -> tuple[dict[str, str], dict, list[dict], float]:
    folder = tmp_path_factory.mktemp("corpus")
    t0 = time.perf_counter()
    kinds = build_corpus(folder)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(HERE / "corpus_runner.py"), str(folder), str(MAX_MEMORY_MIB)],
                         capture_output=True, text=True, timeout=600, env=env, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    return kinds, lines[0], lines[1:], time.perf_counter() - t0


def test_corpus_size_and_kinds(corpus_run):
    kinds, _, rows, seconds = corpus_run
    counts = Counter(kinds.values())
    assert len(kinds) >= 300, counts
    assert set(counts) == {"valid", "truncated", "corrupted", "malformed", "bomb", "polyglot", "zip-entries",
                           "at-cap", "over-cap"}
    assert {r["file"] for r in rows} == set(kinds)
    print(f"\ncorpus: {len(kinds)} files {dict(counts)}; {len(rows)} runs in {seconds:.1f} s")


def test_every_file_gets_a_typed_result_within_budget(corpus_run):
    _, head, rows, _ = corpus_run
    untyped = [r for r in rows if r["outcome"].startswith("UNTYPED") or r["outcome"] == "?"]
    assert not untyped, "\n".join(json.dumps(r) for r in untyped[:20])
    slow = [r for r in rows if r["cpu_s"] > MAX_CPU_S]
    assert not slow, "\n".join(json.dumps(r) for r in slow[:20])
    peak = max(r["rss_mib"] for r in rows)
    assert peak - head["base_rss_mib"] <= MAX_MEMORY_MIB, peak


def _outcomes(rows, prefix: str, entry: str) -> dict[str, str]:
    return {r["file"]: r["outcome"] for r in rows if r["file"].startswith(prefix) and r["entry"] == entry}


def test_valid_and_at_cap_files_decode(corpus_run):
    _, _, rows, _ = corpus_run
    for prefix in ("valid.", "cap_"):
        got = _outcomes(rows, prefix, "pack")
        bad = {f: o for f, o in got.items() if o != "Clip" and f != "cap_zip_entries.zip"}
        assert not bad, bad
    assert _outcomes(rows, "cap_zip_entries", "pack") == {"cap_zip_entries.zip": "FormatError"}  # empty entries


def test_over_cap_and_bombs_are_limit_errors(corpus_run):
    _, _, rows, _ = corpus_run
    for prefix in ("over_", "bomb_"):
        got = _outcomes(rows, prefix, "pack")
        assert got and all(o == "LimitError" for o in got.values()), got


def test_polyglots_and_zip_entries_are_refused_as_unsafe(corpus_run):
    _, _, rows, _ = corpus_run
    poly = _outcomes(rows, "poly_", "load_clip")
    # A file that starts with another format's bytes is simply not a sticker; a sticker with a tail is unsafe.
    assert all(o == ("FormatError" if "first" in f or "pdf" in f else "UnsafeInputError") for f, o in poly.items())
    entries = _outcomes(rows, "zip_", "pack")
    safe = {"zip_duplicate_names.zip", "zip_nul_name.zip"}  # zipfile cuts a name at NUL: "a", not a sticker
    assert all("UnsafeInputError" in o for f, o in entries.items() if f not in safe), entries
