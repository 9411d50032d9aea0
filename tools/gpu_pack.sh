#!/usr/bin/env bash
# One call on a lent GPU host (device tool): "my pack in, my stickers out", measured. For every test pack carried
# in .packs/<name>/ (tools/make_test_packs.py), fine-tune the shipped default model on it (rdtf train --init-from
# default, all packs side by side on the one GPU) for TRAIN_MIN minutes, then `rdtf eval-pack` the tuned run; the
# untuned default is evaluated on each pack meanwhile as the baseline. Everything comes back as one archive.
#
#   here:  python tools/gpu_bundle.py pack --out .gpu --extra-captions .packs/*/captions.csv --extra-text "…token…"
#          python tools/gpu_bundle.py trim-wheel --src diffusers-*.whl --dst .whl
#   call:  bash tools/gpu_pack.sh 540        (carry .gpu .whl .packs; $OUT/pack_results.tar.gz comes back)
#          (with the tree near 48 MiB the three no longer fit one call: `PART_BYTES=12m bash tools/gpu_parts.sh
#          pack .gpu .whl .packs` here, one `gpu_parts.sh stage` call per part, then this script carrying none)
#   The packs travel as 12 fps copies (`tools/make_test_packs.py --every 2`) to fit the 64 MiB transfer with the
#   shipped model. One pack per call without any staging: `bash tools/gpu_slim.sh hide`, `.packs/` holding that one
#   pack, carry .gpu .whl .packs (≈ 66 MB: `bash tools/gpu_slim.sh size .gpu .whl .packs`), then `… restore`.
#   PHASE=train then PHASE=eval (two calls within 30 s: the warm host keeps runs/) split a job too long for one
#   call; EVAL_SIZES="0 128" evaluates every tuned model at its own size (0) and at 128 px (its draft network).
#   EXTRA="--draft-only" adds flags to the training command (here: a pack model that keeps the base's 256 px and
#   its size deltas). DELTA_MIN=M then trains those deltas on the pack at 256 px for M more minutes
#   (--trainable deltas, batch DELTA_BATCH, lr DELTA_LR) into runs/<pack>-deltas, evaluated beside the first;
#   PHASE=train, then PHASE=deltas DELTA_MIN=M, then PHASE=eval runs the three in three calls.
set -euo pipefail
[ ! -f tools/gpu_parts.sh ] || bash tools/gpu_parts.sh link  # .gpu/.whl staged in parts (gpu_parts.sh)
SECS=${1:-540}
T0=$(date +%s)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=4
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" runs/pack
# STEPS sets the LR schedule and the curriculum's horizon; TRAIN_MIN is the wall-time cap that ends a run early
TRAIN_MIN=${TRAIN_MIN:-6}; STEPS=${STEPS:-1500}; BATCH=${BATCH:-64}; LR=${LR:-1e-4}; EVAL_STEPS=${EVAL_STEPS:-20}
# RECIPE=pack: the app's "train on my pack" recipe as it is (decoder tune, batch 256, bf16), only capped by
# TRAIN_MIN; otherwise the explicit STEPS/BATCH/LR above. BASE_EVAL=0 skips the untuned default's evaluation.
if [ "${RECIPE:-}" = pack ]; then TRAIN_ARGS=(--recipe pack)
else TRAIN_ARGS=(--init-from default --batch-size "$BATCH" --lr "$LR" --steps "$STEPS"); fi
# -P: `python -m` would put the current folder first on sys.path, so an ENGINE_DIR engine would lose to the
# checkout's own rdtf_engine (seen on the first lease: eval-pack "not a command")
PY=${PY:-python3${ENGINE_DIR:+ -P}}

if [ -z "${SKIP_SETUP:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
  [ -f /tmp/minilm/model.safetensors ] || $PY tools/gpu_bundle.py expand --src .gpu --dst /tmp/minilm >/dev/null
  export RDTF_TEXT_MODEL=/tmp/minilm
fi
export RDTF_HOME=$PWD/runs/home
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee runs/pack/gpu.txt || true

evalpack() {  # model pack tag [size: 0 = the model's own]
  local t=$(( $(date +%s) ))
  $PY -m rdtf_engine eval-pack --model "$1" --pack "$2" --steps "$EVAL_STEPS" --seed 0 --json --size "${4:-0}" \
      --sheet "runs/pack/$3.png" > "runs/pack/$3.json" 2> "runs/pack/$3.log" || echo "eval $3 failed" >> runs/pack/errors.txt
  echo "$3 eval_s=$(( $(date +%s) - t ))" >> runs/pack/times.txt
}
evaltuned() {  # name pack: the tuned model at every size of EVAL_SIZES (tag suffix: the size, none for its own)
  for size in ${EVAL_SIZES:-0}; do evalpack "runs/$1" "$2" "$1-tuned${size#0}" "$size" & done; wait
}

PHASE=${PHASE:-all}  # train | deltas (DELTA_MIN's run alone, on a warm host's trained runs) | eval | all
case "$PHASE" in eval|all) EVALS=1 ;; *) EVALS=0 ;; esac  # only these two phases evaluate
for dir in .packs/*/; do
  name=$(basename "$dir")
  ( t=$(date +%s)
    if [ "$PHASE" = train ] || [ "$PHASE" = all ]; then
      $PY -m rdtf_engine --events jsonl train --data "$dir" --out "runs/$name" "${TRAIN_ARGS[@]}" ${EXTRA:-} \
          --max-minutes "$TRAIN_MIN" --checkpoint-every 500 \
          > "runs/pack/$name-train.jsonl" 2> "runs/pack/$name-train.log" || echo "train $name failed" >> runs/pack/errors.txt
      echo "$name train_s=$(( $(date +%s) - t ))" >> runs/pack/times.txt
      cp "runs/$name/metrics.jsonl" "runs/pack/$name-metrics.jsonl" 2>/dev/null || true
    fi
    if [ "$PHASE" != eval ] && [ "${DELTA_MIN:-0}" != 0 ]; then t=$(date +%s)
        $PY -m rdtf_engine --events jsonl train --data "$dir" --out "runs/$name-deltas" --init-from "runs/$name/model" \
            --trainable deltas --size 256 --batch-size "${DELTA_BATCH:-64}" --lr "${DELTA_LR:-5e-4}" --steps 3000 \
            --mixed-precision bf16 --max-minutes "$DELTA_MIN" --checkpoint-every 500 \
            > "runs/pack/$name-deltas-train.jsonl" 2> "runs/pack/$name-deltas-train.log" \
            || echo "train $name-deltas failed" >> runs/pack/errors.txt
        echo "$name-deltas train_s=$(( $(date +%s) - t ))" >> runs/pack/times.txt
    fi
    [ "$EVALS" = 0 ] || evaltuned "$name" "$dir"
    [ "$EVALS" = 0 ] || [ ! -d "runs/$name-deltas/model" ] || evalpack "runs/$name-deltas" "$dir" "$name-deltas" ) &
  [ "${BASE_EVAL:-1}" = 0 ] || [ "$EVALS" = 0 ] || evalpack default "$dir" "$name-base" &
done
# the call must return inside its limit whatever happens: stop waiting SECS − 20 s after the start
while [ -n "$(jobs -rp)" ] && [ $(( $(date +%s) - T0 )) -lt $(( SECS - 20 )) ]; do sleep 5; done
tar czf "$OUT/pack_results.tar.gz" --exclude='*.png' runs/pack  # a file comes back only under 16 MiB:
cp runs/pack/*.png "$OUT"/ 2>/dev/null || true                    # the sheets travel beside the archive
for dir in .packs/*/; do  # the tuned model itself (fp16 would be half: 33 MB fp32 in 15 MB parts) to look at here
  name=$(basename "$dir"); [ -d "runs/$name/model" ] && [ -n "${KEEP_MODEL:-}" ] && \
    tar cf - -C "runs/$name" model | split -b 15m - "$OUT/$name-model.tar.part-"
done
ls -la "$OUT"
cat runs/pack/times.txt runs/pack/errors.txt 2>/dev/null || true
