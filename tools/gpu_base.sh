#!/usr/bin/env bash
# The 256 px base model in one call on a lent GPU host (device tool, one GPU): the shipped model's autoencoder
# decoder fine-tuned at 256 px on Noto + Fluent (the encoder, so the latent space, stays), the DFGN fine-tuned at
# 256 px on builtin:mixed (`rdtf train --init-from default --size 256`), side by side on the one card; then the
# new model exported in fp16 and evaluated beside the old one on the same card; everything comes back in $OUT.
#
#   here:   rdtf data pack-cache fluent --variants base --out .fluent        (≈ 25 MB: one call's carry)
#           python tools/gpu_bundle.py pack --out .gpu --int8 --extra-captions .fluent/captions.txt …
#   call 1: bash tools/gpu_base.sh stage          (carry .fluent; copied to /tmp, which the warm host keeps)
#   call 2: bash tools/gpu_base.sh train 570      (carry .gpu .whl, within 30 s of call 1)
#   back here: cat base.tar.part-* | tar x  → base256/ (the model folder), results.tar.gz, *.png
set -euo pipefail
cmd=${1:?stage or train}; SECS=${2:-570}
T0=$(date +%s)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=4
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" runs/base
PY=${PY:-python3 -P}  # -P: the checkout's engine comes from PYTHONPATH, not the current folder first
STAGE=${STAGE:-/tmp/rdtf-stage}  # outside the checkout: each call's fresh copy of the tree drops ignored folders

if [ "$cmd" = stage ]; then  # the Fluent shards → $STAGE (kept on the warm host while the next call carries more)
  rm -rf $STAGE && mkdir -p $STAGE && cp -r .fluent $STAGE/fluent && du -sh $STAGE/fluent && exit 0
fi
[ -f $STAGE/fluent/index.json ] || { echo "[base] no staged Fluent data: the host went cold; run stage again"; exit 3; }

if [ -z "${SKIP_SETUP:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
  [ -f /tmp/minilm/model.safetensors ] || python3 tools/gpu_bundle.py expand --src .gpu --dst /tmp/minilm >/dev/null
  export RDTF_TEXT_MODEL=/tmp/minilm RDTF_EMOJI_FONT=$PWD/.gpu/font/NotoColorEmoji.ttf
fi
export RDTF_FLUENT_CACHE=$STAGE/fluent RDTF_HOME=$PWD/runs/home
R=runs/base
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt || true
( while sleep 20; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> $R/gpu_util.log; done ) &
UTIL=$!

if [ "$cmd" = train ]; then  # finish: a warm host whose last call ran out of time, export and evaluate only
  EVAL_S=${EVAL_S:-150}                                        # export + both evaluations + collecting
  TRAIN_MIN=$(awk "BEGIN {print ($SECS - $EVAL_S - ($(date +%s) - $T0)) / 60}")
  echo "[base] $(date +%T) DFGN and decoder for $TRAIN_MIN min"
  $PY -m rdtf_engine train-autoencoder --init-from default --decoder-only --data builtin:mixed --size 256 \
      --steps "${AE_STEPS:-4000}" --batch-size 32 --lr "${AE_LR:-2e-4}" --max-frames 16000 --max-clips 3000 \
      --max-minutes "$(awk "BEGIN {print $TRAIN_MIN - 0.7}")" --out $R/ae256 > $R/ae.log 2>&1 &
  AE=$!
  $PY -m rdtf_engine --events jsonl train --data builtin:mixed --out $R/run --init-from default --size 256 \
      --max-clips "${CLIPS:-12000}" --batch-size "${BATCH:-128}" --lr "${LR:-2e-4}" --steps "${STEPS:-1200}" \
      --max-minutes "$TRAIN_MIN" --checkpoint-every 100000 --sample-every 0 --seed "${SEED:-21}" \
      > $R/train.jsonl 2> $R/train.log || echo "train failed" >> $R/errors.txt
  wait $AE || echo "autoencoder failed" >> $R/errors.txt
  echo "[base] $(date +%T) training done"; tail -3 $R/train.log; tail -2 $R/ae.log
fi

# the EMA DFGN with the fine-tuned decoder, fp16 (the shipped form) → runs/base/base256
$PY - $R <<'EOF' || echo "export failed" >> $R/errors.txt
import shutil, sys, torch
from pathlib import Path
from rdtf_engine.model.store import load_model_folder, save_model_folder
from rdtf_engine.training.autoencoder import load_autoencoder
r = Path(sys.argv[1])
unet, vae, card = load_model_folder(r / "run" / "model")
if (r / "ae256" / "config.json").is_file():
    vae = load_autoencoder(r / "ae256", torch.device("cpu"))[0]
shutil.rmtree(r / "base256", ignore_errors=True)
save_model_folder(r / "base256", unet, vae, card, dtype=torch.float16)
print("exported", card.steps, "steps", sorted(str(p.relative_to(r)) for p in (r / "base256").rglob("*")))
EOF

CLF=resources/eval/motion-classifier-builtin-emoji
ev() {  # tag model
  timeout $(( SECS - ($(date +%s) - T0) - 25 )) $PY -m rdtf_engine eval --model "$2" --data builtin:emoji-holdout \
    --clips "${EVAL_CLIPS:-48}" --steps "${EVAL_STEPS:-20}" --seed 1 --classifier $CLF --json --grid $R/$1-grid.png > $R/$1.eval.json 2> $R/$1.eval.log \
    || echo "eval $1 failed" >> $R/errors.txt
}
[ -d $R/base256 ] && ev new $R/base256 &
ev old default &
[ -d $R/ae256 ] && timeout 120 $PY -m rdtf_engine eval-autoencoder default $R/ae256 --data builtin:fluent-holdout \
  --clips "${EVAL_CLIPS:-48}" --json --sheet $R/ae-sheet.png > $R/ae.eval.json 2> $R/ae.eval.err || true
while [ -n "$(jobs -rp | grep -v "^$UTIL$")" ] && [ $(( $(date +%s) - T0 )) -lt $(( SECS - 20 )) ]; do sleep 3; done
kill $UTIL 2>/dev/null || true

[ -d $R/base256 ] && tar cf - -C $R base256 | split -b 15m - "$OUT/base.tar.part-"
cp $R/*.png "$OUT"/ 2>/dev/null || true
cp $R/run/metrics.jsonl $R/metrics.jsonl 2>/dev/null || true
tar czf "$OUT/results.tar.gz" --exclude='*.png' --exclude=run --exclude=ae256 --exclude=base256 --exclude=home $R
ls -la "$OUT"; cat $R/errors.txt 2>/dev/null || true
