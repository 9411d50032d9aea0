"""Few-step samplers against today's default on the project's own evaluation (``rdtf eval``), on this machine.

Every configuration samples the same held-out clips with the same seeds (a paired comparison), so differences
between rows are the sampler's, not the clips'. The held-out denoising loss does not depend on the sampler and
is left out. Prints one JSON object: per configuration the eval summary (motion accuracy and Fréchet distance of
text→video, identity accuracy of image&text→video, alpha and flicker) and the CPU seconds it took.

    python benchmarks/samplers.py [--clips 24] [--configs dpm:20,dpm:8,unipc:6] [--device cpu] [--tasks t2v]
"""

from __future__ import annotations

import argparse
import json
import sys

DEFAULT_CONFIGS = "dpm:20,dpm:8,unipc:8,dpm:6,unipc:6,dpm:4,unipc:4"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default="builtin:emoji-holdout")
    ap.add_argument("--clips", type=int, default=24)
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma-separated sampler:steps")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--tasks", default="t2v,it2v", help="t2v and/or it2v (comma-separated)")
    a = ap.parse_args()
    from rdtf_engine.jobs.evaluate import evaluate_model, summarize

    rows = []
    for item in a.configs.split(","):
        sampler, steps = item.split(":")
        rep = evaluate_model(a.model, a.data, num_clips=a.clips, steps=int(steps), device=a.device,
                             scheduler=sampler, val_loss=False, tasks=tuple(a.tasks.split(",")))
        s = summarize(rep)
        row = {"sampler": sampler, "steps": int(steps), "clips": rep["clips"],
               **{k: s[k] for k in ("motion_acc", "fd", "identity_acc", "alpha_semi", "flicker")},
               "it2v_motion_acc": (rep["it2v"] or {}).get("motion_accuracy"),
               # text → video identity on the emoji seen in training (with other motions): a never-seen emoji
               # cannot be drawn from its name alone
               "t2v_identity_seen": ((rep["t2v"] or {}).get("identity_accuracy_by_split") or {})
               .get("heldout-pair", {}).get("accuracy"),
               "cpu_seconds": rep["cpu_seconds"], "wall_seconds": rep["seconds"]}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)  # progress: one line per configuration
    print(json.dumps({"model": a.model, "data": a.data, "device": a.device, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
