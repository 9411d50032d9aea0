#!/usr/bin/env bash
# Streaming encoded shards against the in-memory latent cache on a lent GPU host (device tool, one GPU), one call:
# the same clips (builtin:emoji at the size a fine-tune of the shipped model trains at, 128 px) encoded once into
# webdataset shards (`rdtf data encode-shards`), then the shipped model fine-tuned for the same wall time from the
# shards (`--data shards:DIR`) and from the source itself (its latent cache in GPU memory); → $OUT/shards.json:
# steps/s (from the start, and steady over the second half) and the per-step phases of both (metrics "ms"), the
# shard encoding's clips/s. The tree slimmed (tools/gpu_slim.sh hide) leaves room for .gpu and .whl beside it.
#
#   here:  bash tools/gpu_carry.sh                       (.gpu, .whl)
#   call:  bash tools/gpu_shards.sh                      (carry .gpu .whl; its first run, while encode-shards
#          still encoded on the CPU, did not get past the encoding in 6.7 min: give it the full 10 minutes;
#          each stage has its own limit, ENCODE_S=150 and RUN_S=190 per run, so the call ends inside 600 s)
set -euo pipefail
[ ! -f tools/gpu_parts.sh ] || bash tools/gpu_parts.sh link  # .gpu/.whl staged in parts (gpu_parts.sh)
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
CLIPS=${CLIPS:-6000}; BATCH=${BATCH:-128}; MIN=${MIN:-1.2}
W=/tmp/rdtf-shards; rm -rf $W && mkdir -p $W
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $W/site .whl/*.whl
python3 tools/gpu_bundle.py expand --src .gpu --dst $W/minilm >/dev/null
export PYTHONPATH=$W/site:$PWD RDTF_TEXT_MODEL=$W/minilm RDTF_EMOJI_FONT=$PWD/.gpu/font/NotoColorEmoji.ttf
export RDTF_HOME=$W/home HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "no GPU"; } | tee $W/gpu.txt
PY="python3 -P -m rdtf_engine"
t0=$(date +%s.%N)
# each stage under its own limit, so one that runs long still leaves the others' numbers in $OUT
timeout ${ENCODE_S:-150} $PY data encode-shards --data builtin:emoji --out $W/shards --max-clips $CLIPS --seed 3 \
    --json > $W/encode.json || echo "encode-shards failed or ran past ${ENCODE_S:-150} s" >> $W/errors.txt
t1=$(date +%s.%N)
run() {  # name data → a capped fine-tune of the shipped model; its metrics stay in $W/$name
  timeout ${RUN_S:-190} $PY --events jsonl train --data "$2" --out $W/$1 --init-from default --max-clips $CLIPS --seed 3 \
      --batch-size $BATCH --steps 100000 --max-minutes $MIN --checkpoint-every 100000 --sample-every 0 \
      > $W/$1.jsonl 2> $W/$1.log || echo "$1 failed" >> $W/errors.txt
}
run stream shards:$W/shards
run memory builtin:emoji
python3 - "$W" "$t0" "$t1" "$BATCH" > "$OUT/shards.json" <<'EOF'
import json, sys
from pathlib import Path
w, t0, t1 = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
out = {"gpu": (w / "gpu.txt").read_text().strip(), "encode_s": round(t1 - t0, 1),
       "errors": (w / "errors.txt").read_text() if (w / "errors.txt").exists() else ""}
for name in ("stream", "memory"):
    log = w / name / "metrics.jsonl"
    rows = [json.loads(x) for x in log.read_text().splitlines() if '"ms"' in x] if log.exists() else []
    rows = [r for r in rows if r.get("ms") and r.get("elapsed_s") is not None]  # training steps, not validation
    if not rows:
        out[name] = {"steps": 0}
        continue
    late = rows[len(rows) // 2:]  # past the warm-up and the first windows
    # the logged steps_per_s runs from the start (the first steps' kernel tuning, the first window's load): the
    # steady rate is the second half's, from its elapsed times
    span = late[-1]["elapsed_s"] - late[0]["elapsed_s"]
    steady = (late[-1]["step"] - late[0]["step"]) / span if len(late) > 1 and span > 0 else rows[-1]["steps_per_s"]
    out[name] = {"steps": rows[-1]["step"], "steps_per_s": rows[-1]["steps_per_s"],
                 "steady_steps_per_s": round(steady, 3), "clips_per_s": round(steady * int(sys.argv[4]), 1),
                 "first_step_at_s": rows[0].get("elapsed_s"),
                 "ms": {k: round(sum(r["ms"][k] for r in late) / len(late), 2) for k in late[0]["ms"]}}
print(json.dumps(out, indent=1))
EOF
cat "$OUT/shards.json"; tail -n 3 $W/stream.log $W/memory.log; cp $W/encode.json "$OUT/" 2>/dev/null || true
