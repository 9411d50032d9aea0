#!/usr/bin/env bash
# A 256 px base candidate's two evaluations on this machine, as tools/gpu_base.sh runs them on the card (48 clips
# per set, 20 DPM-Solver++ steps, seed 1, the shipped motion classifier): the held-out emoji (the no-regression
# bar) and the held-out real Fluent clips, from the same shard cache the lease trained beside. One difference:
# the text encoder here is the full all-MiniLM-L6-v2 that generation uses, the card's the pruned int8 copy.
# A lease started with EVAL_NEW=0 gives these ≈ 3 device-minutes to training and leaves them to this script.
#
#   bash tools/eval_base.sh MODEL_DIR OUT_DIR     → OUT_DIR/{new,new-fluent}.eval.json, *-grid.png, *.eval.log
#
# On a 2-core CPU each set takes 31–34 minutes (≈ 35 s a clip: text → video drafted and refined, image & text →
# video, the held-out loss); the two run one after the other. Checked against the card on the seventh lease's
# model (docs/results.md): motion the same to the clip, FD within 5 %, identity at most one clip apart (a
# spinning figure on the nearest-neighbour boundary): the card's numbers stay the reference for shipping.
set -euo pipefail
MODEL=${1:?model folder}; OUT=${2:?output folder}
PY=${PY:-.venv/bin/python}
export RDTF_FLUENT_CACHE=${RDTF_FLUENT_CACHE:-$PWD/.fluent}  # bash tools/gpu_carry.sh builds it
[ -f "$RDTF_FLUENT_CACHE/index.json" ] || { echo "no Fluent shard cache at $RDTF_FLUENT_CACHE"; exit 2; }
CLF=resources/eval/motion-classifier-builtin-emoji
mkdir -p "$OUT"
for set in new:builtin:emoji-holdout new-fluent:builtin:fluent-holdout; do
  tag=${set%%:*}; data=${set#*:}
  echo "[eval-base] $(date +%T) $tag on $data"
  $PY -m rdtf_engine eval --model "$MODEL" --data "$data" --clips "${EVAL_CLIPS:-48}" --steps 20 --seed 1 \
      --classifier $CLF --json --grid "$OUT/$tag-grid.png" > "$OUT/$tag.eval.json" 2> "$OUT/$tag.eval.log"
done
echo "[eval-base] $(date +%T) done: $OUT"
