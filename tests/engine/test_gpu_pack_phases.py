"""tools/gpu_pack.sh's phases, with a stand-in for the engine: which commands each call runs over a warm host's
runs/ (train, then deltas, then eval — three calls of at most 10 minutes each)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not all(shutil.which(t) for t in ("bash", "tar")), reason="needs bash and tar")

# the engine's stand-in: logs its command line; `train --out D` makes D/model, `eval-pack` prints a report
FAKE = '''
import sys, pathlib
args = sys.argv[1:]
with open("calls.txt", "a") as f:
    f.write(" ".join(a for a in args if not a.startswith("/")) + "\\n")
if "train" in args:
    pathlib.Path(args[args.index("--out") + 1], "model").mkdir(parents=True, exist_ok=True)
if "eval-pack" in args:
    print("{}")
'''


def _call(tree: Path, **env: str) -> list[str]:
    (tree / "calls.txt").unlink(missing_ok=True)
    full = {**os.environ, "SKIP_SETUP": "1", "PY": f"{sys.executable} fake_engine.py", "OUT": str(tree / "out"),
            "TRAIN_MIN": "1", "BASE_EVAL": "0", **env}
    subprocess.run(["bash", str(ROOT / "tools" / "gpu_pack.sh"), "60"], cwd=tree, env=full, check=True,
                   capture_output=True, text=True, timeout=120)
    return sorted((tree / "calls.txt").read_text().splitlines()) if (tree / "calls.txt").exists() else []


def test_train_then_deltas_then_eval_each_run_only_their_own_step(tmp_path):
    (tmp_path / ".packs" / "sky").mkdir(parents=True)
    (tmp_path / "fake_engine.py").write_text(FAKE)
    train = _call(tmp_path, PHASE="train", RECIPE="pack", EXTRA="--draft-only")
    assert len(train) == 1 and "train --data .packs/sky/ --out runs/sky --recipe pack --draft-only" in train[0]
    deltas = _call(tmp_path, PHASE="deltas", DELTA_MIN="2")
    assert len(deltas) == 1 and "--out runs/sky-deltas --init-from runs/sky/model --trainable deltas" in deltas[0]
    evals = _call(tmp_path, PHASE="eval")
    assert [c.split(" --model ")[1].split()[0] for c in evals] == ["runs/sky", "runs/sky-deltas"]
    assert (tmp_path / "out" / "pack_results.tar.gz").is_file()
