#!/usr/bin/env bash
# The paper's ablations (Table 3: temporal layer, dual masks; Table 4: curriculum none/linear/adaptive) at
# equal compute: same data (builtin:emoji, 64 px), autoencoder, steps, batch, seeds; all arms run side by side on
# one GPU so they also see the same hardware. Run after tools/gpu_train.sh has set up the host (same wheels).
#
#   bash tools/gpu_ablations.sh train   # shared autoencoder + motion classifier, then 5 arms × SEEDS in parallel
#   bash tools/gpu_ablations.sh eval    # rdtf eval of every arm on builtin:emoji-holdout → $OUT/ablations.json
set -euo pipefail
stage=${1:?stage}
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# CPU pilot: PY=.venv/bin/python DEVICE=cpu PRESET=tiny ... (the dev machine already has every package)
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}; PRESET=${PRESET:-small}; SIZE=${SIZE:-64}; BATCH=${BATCH:-32}
if [ "$DEVICE" = cuda ]; then
  [ -d /tmp/site/diffusers ] || $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
  $PY -c "import diffusers.models.modeling_utils" 2>/dev/null || \
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/extra/*.whl
  [ -f /tmp/minilm/model.safetensors ] || $PY tools/gpu_bundle.py expand --src .gpu --dst /tmp/minilm
  export RDTF_TEXT_MODEL=/tmp/minilm RDTF_EMOJI_FONT=$PWD/.gpu/font/NotoColorEmoji.ttf
fi
export RDTF_HOME=$PWD/runs/home
A=${ABL_DIR:-runs/abl}
SEEDS=${SEEDS:-"0 1"}
STEPS=${STEPS:-3000}
ARMS="conv3d-nodual:--temporal conv3d --no-dual-mask
sti-nodual:--temporal sti --no-dual-mask
sti-dual-none:--temporal sti --curriculum none
sti-dual-linear:--temporal sti --curriculum linear
sti-dual-adaptive:--temporal sti --curriculum adaptive"

case "$stage" in
  train)
    mkdir -p $A
    [ -f $A/ae/config.json ] || $PY -m rdtf_engine train-autoencoder --data builtin:emoji --out $A/ae --preset small \
      --size $SIZE --steps ${AE_STEPS:-2500} --batch-size ${AE_BATCH:-64} --max-frames 40000 --max-minutes ${AE_MINUTES:-2} \
      --max-clips 4000 --device $DEVICE > $A/ae.log 2>&1
    tail -2 $A/ae.log
    $PY - "$A" "$DEVICE" <<'EOF' > $A/clf.log 2>&1 &
import sys
from rdtf_engine.data.sources import open_source
from rdtf_engine.eval.classifier import train_motion_classifier, save_classifier
folder, device = sys.argv[1], sys.argv[2]
gpu = device == "cuda"
src = open_source("builtin:emoji", 64, num_clips=4096 if gpu else 1024, seed=99)
kw = {} if gpu else {"input_size": 32, "width": 16}
clf = train_motion_classifier(src, 3000 if gpu else 800, device, max_clips=len(src), **kw)
save_classifier(clf, folder + "/clf")
print(clf.summary)
EOF
    for seed in $SEEDS; do
      # not `echo | while`: that loop runs in a subshell whose background jobs `wait` below would not see
      while IFS=: read -r name flags; do
        [ -f $A/$name-s$seed/done.json ] && continue
        $PY -m rdtf_engine train --data builtin:emoji --out $A/$name-s$seed --preset $PRESET --size $SIZE \
          --batch-size $BATCH --lr ${LR:-3e-4} --steps $STEPS --seed $seed --max-clips ${TRAIN_CLIPS:-3000} \
          --checkpoint-every 1000 --autoencoder $A/ae --device $DEVICE --max-minutes ${MINUTES:-6.5} $flags > $A/$name-s$seed.log 2>&1 &
      done <<< "$ARMS"
    done
    wait
    for f in $A/*-s*.log; do echo "$f: $(grep -E '^done|^error' $f | tail -1)"; done
    tail -1 $A/clf.log ;;
  eval)
    for d in $A/*-s*/; do
      n=$(basename $d)
      $PY -m rdtf_engine eval --model $d --data builtin:emoji-holdout --clips ${CLIPS:-96} --steps 20 \
        --classifier $A/clf --device $DEVICE --json > $A/$n.eval.json 2> $A/$n.eval.log &
    done
    wait
    $PY - "$OUT" "$A" <<'EOF'
import json, sys, glob, os
from rdtf_engine.eval.report import summarize
rows = {}
for f in sorted(glob.glob(sys.argv[2] + "/*.eval.json")):
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
