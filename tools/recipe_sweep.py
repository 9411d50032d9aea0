"""Screen variants of a fine-tune recipe on a pack: train each, evaluate each, one JSON line per variant.

The CPU "train on my pack" recipe has an hour of 2 CPU cores: a few thousand steps at batch 2. Which settings do
most with those steps (learning rate, which weights learn, EMA, frames, style token) is a question of *steps*,
not of the device, so a GPU can answer it for many variants in minutes: every variant runs the given recipe's
request (``core.recipes``, e.g. the CPU ``pack`` recipe) with the listed fields replaced, on ``--device``, then
``rdtf eval-pack``'s evaluation. The chosen variant is then timed and measured on the CPU itself.

    python tools/recipe_sweep.py --pack packs/tune --out runs/sweep --device cuda --parallel 6 \\
        --variant "base:" --variant "lr3:lr=3e-4" --variant "all:trainable=all,lr=3e-4"

A variant is ``NAME:field=value,…`` over TrainConfig fields (steps, batch_size, lr, ema_decay, trainable,
pack_style, decoder_steps, guidance_text, word_dropout, curriculum, continue_curriculum=1) and RunControl
fields (mixed_precision, max_minutes, checkpoint_every,
resume). Results: ``OUT/NAME/eval-g<G>.json`` per text guidance scale of ``--guidance`` (default
``eval-gmodel.json``: the model's own) and a summary line per variant on stdout (JSON). A variant that a
``max_minutes`` cap stopped before its steps is not evaluated: run it again with ``resume=1`` (the same
``--out``) to finish it in a later chunk, e.g. on a lent GPU whose calls are 10 minutes.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

TRAIN_FIELDS = {"steps": int, "batch_size": int, "lr": float, "ema_decay": float, "trainable": str,
                "pack_style": str, "decoder_steps": int, "guidance_text": float, "word_dropout": float,
                "curriculum": str, "continue_curriculum": lambda v: v == "1"}
RUN_FIELDS = {"mixed_precision": str, "max_minutes": float, "checkpoint_every": int, "resume": lambda v: v == "1"}


def parse_variant(text: str) -> tuple[str, dict[str, object]]:
    """"lr3:lr=3e-4,trainable=all" → ("lr3", {"lr": 3e-4, "trainable": "all"})."""
    name, _, rest = text.partition(":")
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise SystemExit(f"variant {text!r}: give NAME:field=value,…")
    fields: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, _, value = part.partition("=")
        types = {**TRAIN_FIELDS, **RUN_FIELDS}
        if key not in types:
            raise SystemExit(f"variant {name}: unknown field {key!r} (one of {', '.join(types)})")
        fields[key] = types[key](value)
    return name, fields


def run_variant(args: argparse.Namespace, name: str, fields: dict[str, object]) -> dict[str, object]:
    """Train and evaluate one variant in this process (the worker side of ``--one``)."""
    from rdtf_engine.core.recipes import recipe
    from rdtf_engine.jobs.eval_pack import evaluate_pack_model
    from rdtf_engine.training.loop import train

    out = Path(args.out) / name
    req = recipe(args.recipe, args.recipe_device).request(args.pack, str(out), device=args.device)
    train_fields = {k: v for k, v in fields.items() if k in TRAIN_FIELDS}
    req = dataclasses.replace(req, train=dataclasses.replace(req.train, **train_fields))
    run_fields = {k: v for k, v in fields.items() if k in RUN_FIELDS}
    req = dataclasses.replace(req, run=dataclasses.replace(req.run, **run_fields))
    req.validate()
    t0 = time.time()
    summary = train(req)
    row: dict[str, object] = {"variant": name, **fields, "train_s": round(time.time() - t0, 1),
                              "steps_done": summary["step"]}
    if summary.get("stopped"):  # the chunk's time ran out: resume=1 finishes it
        return {**row, "stopped": summary.get("reason", "stopped")}
    for g in args.guidance or [None]:  # None: the model's own (its recipe's guidance_text)
        tag = "model" if g is None else f"{g:g}"
        rep = evaluate_pack_model(str(out / "model"), args.pack, steps=args.eval_steps, seed=0, device=args.device,
                                  guidance=g, sheet_path=str(out / f"sheet-g{tag}.png"))
        (out / f"eval-g{tag}.json").write_text(json.dumps(rep, indent=1))
        t2v, it2v = rep["t2v"], rep["it2v"]
        row[f"g{tag}"] = {"guidance": rep["guidance_text"], "t2v_top1": t2v["identity"]["top1"],
                          "t2v_top3": t2v["identity"]["top3"], "it2v_top1": it2v["identity"]["top1"],
                          "t2v_change": t2v["motion"]["change"]["generated"]["mean"],
                          "t2v_frozen": t2v["motion"]["frozen"]["generated"],
                          "t2v_flicker": t2v["motion"]["flicker"]["generated"],
                          "t2v_sharpness": t2v["sharpness"]["generated"]["mean"]}
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pack", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--variant", action="append", default=[], help="NAME:field=value,… (repeat)")
    ap.add_argument("--recipe", default="pack")
    ap.add_argument("--recipe-device", default="cpu", help="whose recipe the variants start from (cpu | cuda)")
    ap.add_argument("--device", default="auto", help="where the variants run")
    ap.add_argument("--parallel", type=int, default=1, help="variants at a time (each its own process)")
    ap.add_argument("--eval-steps", type=int, default=20)
    ap.add_argument("--guidance", type=lambda v: [float(g) for g in v.split(",")], default=None,
                    help="text guidance scales to evaluate each variant at, e.g. 4,6 (default: the model's own)")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)  # worker: run this one variant
    args = ap.parse_args(argv)
    if args.one is not None:
        print(json.dumps(run_variant(args, *parse_variant(args.one))), flush=True)
        return 0
    for text in args.variant:
        parse_variant(text)  # every variant checked before any of them starts
    Path(args.out).mkdir(parents=True, exist_ok=True)

    def launch(text: str) -> str:
        cmd = [sys.executable, *sys.argv[:1], "--pack", args.pack, "--out", args.out, "--recipe", args.recipe,
               "--recipe-device", args.recipe_device, "--device", args.device, "--eval-steps",
               str(args.eval_steps), "--one", text]
        if args.guidance:
            cmd[-2:-2] = ["--guidance", ",".join(f"{g:g}" for g in args.guidance)]
        name = parse_variant(text)[0]
        with open(Path(args.out) / f"{name}.log", "w") as log:
            done = subprocess.run(cmd, check=False, stdout=subprocess.PIPE, stderr=log, text=True)
        lines = done.stdout.strip().splitlines()
        return lines[-1] if done.returncode == 0 and lines else json.dumps({"variant": name, "failed": done.returncode})

    with cf.ThreadPoolExecutor(max(1, args.parallel)) as pool:
        for line in pool.map(launch, args.variant or ["base:"]):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
