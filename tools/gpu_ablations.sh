#!/usr/bin/env bash
# The paper's ablations (Table 3: temporal layer, dual masks; Table 4: curriculum none/linear/adaptive) at
# equal compute: same data (builtin:emoji, 64 px), autoencoder, steps, batch and seeds; all arms run side by side
# (spread over the GPUs in $GPUS) so they also see the same hardware.
#
#   bash tools/gpu_ablations.sh prep    # shared autoencoder; motion classifier trained in the background
#   bash tools/gpu_ablations.sh clf     # the motion classifier alone (rdtf eval's --classifier)
#   bash tools/gpu_ablations.sh arms    # 5 arms × SEEDS, equal steps (see UNTIL below)
#   bash tools/gpu_ablations.sh eval    # rdtf eval of every arm on builtin:emoji-holdout → $A/ablations.json
#   bash tools/gpu_ablations.sh train   # prep + arms
# Environment: GPUS="1 2 3" (round robin, default "0"); UNTIL=<epoch s>: instead of a fixed STEPS, every arm first
# trains PROBE_MIN minutes, then all resume to the same step count, chosen from the slowest arm's rate so that
# they end by UNTIL. The env setup for a GPU host (wheels, text encoder) is tools/gpu_lease.sh's.
# CPU pilot: PY=.venv/bin/python DEVICE=cpu PRESET=tiny bash tools/gpu_ablations.sh train
set -euo pipefail
stage=${1:?stage}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export RDTF_HOME=${RDTF_HOME:-$PWD/runs/home}
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}; PRESET=${PRESET:-small}; SIZE=${SIZE:-64}; BATCH=${BATCH:-32}
read -r -a GPU_LIST <<< "${GPUS:-0}"
A=${ABL_DIR:-runs/abl}
SEEDS=${SEEDS:-"0 1"}
STEPS=${STEPS:-3000}
ARMS="conv3d-nodual:--temporal conv3d --no-dual-mask
sti-nodual:--temporal sti --no-dual-mask
sti-dual-none:--temporal sti --curriculum none
sti-dual-linear:--temporal sti --curriculum linear
sti-dual-adaptive:--temporal sti --curriculum adaptive"
mkdir -p "$A"

gpu_of() {  # the n-th job's GPU (round robin over $GPUS)
  echo "${GPU_LIST[$(( $1 % ${#GPU_LIST[@]} ))]}"
}

# run_arms STEPS MINUTES RESUME: every arm × seed in parallel; returns when all have stopped.
run_arms() {
  local steps=$1 minutes=$2 resume=$3 n=0 seed name flags pids=()
  for seed in $SEEDS; do
    # not `echo | while`: that loop runs in a subshell whose background jobs `wait` below would not see
    while IFS=: read -r name flags; do
      local run=$A/$name-s$seed
      if [ -f "$run/done.json" ]; then n=$((n + 1)); continue; fi
      if [ "$resume" = 1 ]; then
        set -- --out "$run" --resume
      else
        # shellcheck disable=SC2206
        set -- --data builtin:emoji --out "$run" --preset "$PRESET" --size "$SIZE" --batch-size "$BATCH" \
          --lr "${LR:-3e-4}" --seed "$seed" --max-clips "${TRAIN_CLIPS:-3000}" --checkpoint-every 1000 \
          --autoencoder "$A/ae" $flags
      fi
      CUDA_VISIBLE_DEVICES=$(gpu_of $n) $PY -m rdtf_engine train "$@" --steps "$steps" --device "$DEVICE" \
        --max-minutes "$minutes" >> "$run.log" 2>&1 &
      pids+=($!)
      n=$((n + 1))
    done <<< "$ARMS"
  done
  # only the arms: a bare `wait` would also wait for the classifier trained in the background
  for p in "${pids[@]}"; do wait "$p" || true; done
}

equal_steps() {  # one step target for every arm: the slowest arm (rate, steps done) must reach it by UNTIL
  $PY - "$A" "$UNTIL" <<'EOF'
import glob, json, sys, time
rates, done = [], []
for f in glob.glob(sys.argv[1] + "/*-s*/metrics.jsonl"):
    rows = [r for r in map(json.loads, open(f)) if "steps_per_s" in r]
    if rows:
        rates.append(rows[-1]["steps_per_s"]); done.append(rows[-1]["step"])
left = float(sys.argv[2]) - time.time()
print(min(done) + max(50, int(min(rates) * left * 0.9)) if rates else 1000)
EOF
}

case "$stage" in
  clf)
    $PY - "$A" "$DEVICE" "${CLF_CLIPS:-0}" "${CLF_STEPS:-0}" <<'EOF'
import sys
from rdtf_engine.data.sources import open_source
from rdtf_engine.eval.classifier import train_motion_classifier, save_classifier
folder, device = sys.argv[1], sys.argv[2]
gpu = device == "cuda"
clips, steps = int(sys.argv[3]) or (4096 if gpu else 1024), int(sys.argv[4]) or (3000 if gpu else 800)
src = open_source("builtin:emoji", 64, num_clips=clips, seed=99)
kw = {} if gpu else {"input_size": 32, "width": 16}
clf = train_motion_classifier(src, steps, device, max_clips=len(src), **kw)
save_classifier(clf, folder + "/clf")
print(clf.summary)
EOF
    ;;
  prep|train)
    [ -f $A/ae/config.json ] || CUDA_VISIBLE_DEVICES=$(gpu_of 0) $PY -m rdtf_engine train-autoencoder \
      --data builtin:emoji --out $A/ae --preset small --size $SIZE --steps ${AE_STEPS:-2500} \
      --batch-size ${AE_BATCH:-64} --max-frames 40000 --max-minutes ${AE_MINUTES:-2} --max-clips 4000 \
      --device $DEVICE > $A/ae.log 2>&1
    tail -2 $A/ae.log
    # The motion classifier sees only real (procedural) clips of the training emoji; detached so arms can start.
    [ -f $A/clf/motion_classifier.safetensors ] || CUDA_VISIBLE_DEVICES=$(gpu_of 1) bash "$0" clf > $A/clf.log 2>&1 &
    [ "$stage" = train ] || exit 0
    ;&
  arms)
    if [ -n "${UNTIL:-}" ]; then
      run_arms 1000000 "${PROBE_MIN:-1.5}" 0
      STEPS=$(equal_steps); left=$(( UNTIL - $(date +%s) ))
      echo "[ablations] $left s left: every arm trains to $STEPS steps"
      run_arms "$STEPS" "$(awk "BEGIN {print $left / 60}")" 1
    else
      run_arms "$STEPS" "${MINUTES:-6.5}" 0
    fi
    for f in $A/*-s*.log; do echo "$f: $(grep -E '^done|^error' "$f" | tail -1)"; done
    wait
    tail -1 $A/clf.log ;;
  eval)
    while [ ! -f $A/clf/motion_classifier.safetensors ]; do sleep 5; done
    n=0
    for d in $A/*-s*/; do
      name=$(basename "$d")
      CUDA_VISIBLE_DEVICES=$(gpu_of $n) $PY -m rdtf_engine eval --model "$d" --data builtin:emoji-holdout \
        --clips ${CLIPS:-96} --steps 20 --classifier $A/clf --device $DEVICE --json > $A/$name.eval.json \
        2> $A/$name.eval.log &
      n=$((n + 1))
    done
    wait
    $PY - "$A" <<'EOF'
import json, sys, glob, os
from rdtf_engine.jobs.evaluate import summarize
rows = {}
for f in sorted(glob.glob(sys.argv[1] + "/*.eval.json")):
    try:
        rep = json.load(open(f))
    except ValueError:
        print("no report:", f, open(f.replace(".json", ".log")).read()[-500:]); continue
    rows[os.path.basename(f)[:-10]] = {"summary": summarize(rep), "report": rep}
json.dump(rows, open(os.path.join(sys.argv[1], "ablations.json"), "w"), indent=1)
for k, v in rows.items():
    print(k, json.dumps(v["summary"]))
EOF
    ;;
  *) echo "unknown stage $stage"; exit 2 ;;
esac
