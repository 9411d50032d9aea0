#!/usr/bin/env bash
# tools/recipe_sweep.py on a lent GPU host (device tool), in chunks that fit its 10-minute calls: the run folders
# live in $SWEEP (outside the checkout, which each call copies afresh), so a later call made while the host is
# still warm resumes them with resume=1 and evaluates them.
#
#   here:   python tools/make_test_packs.py --themes tune,animals,sky,vehicles --out /work/packs
#           python tools/gpu_bundle.py thin-pack --src /work/packs/NAME --dst .packs/NAME   (each; ≈ 4.5 MB a pack)
#           python tools/gpu_bundle.py pack --out .gpu-text --int8 --no-font --extra-captions \
#               .fluent/captions.txt /work/packs/*/captions.csv --extra-text "in the style of my pack"   (13 MB)
#           python tools/gpu_bundle.py trim-wheel --src diffusers-*.whl --dst .whl   (+ webdataset, platformdirs…)
#   call 0: bash tools/gpu_sweep.sh stage-text                     (carry .gpu-text: the tree and the packs
#                                                                   leave no room for it in the same call)
#   call 1: bash tools/gpu_sweep.sh --guidance 4,6 --variant "a:steps=3600,max_minutes=7" …  (carry .whl .packs)
#   call 2: bash tools/gpu_sweep.sh --guidance 4,6 --variant "a:steps=3600,resume=1" …   → $OUT/sweep.tar.gz
#   Issue each call the moment the last returns: the host is given back 30 s after a call.
#
# PACK (default .packs/tune) is the pack the variants are screened on. EVAL_PACKS="animals sky" with EVAL_VARIANT
# "NAME:fields" also runs that one variant on each of those evaluation packs beside the screen (in
# $SWEEP/eval-<pack>/), the same chunking: put max_minutes or resume=1 in EVAL_VARIANT as in the variants.
set -euo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=2
OUT=${OUT:-/tmp/out}; SWEEP=${SWEEP:-/tmp/sweep}; mkdir -p "$OUT" "$SWEEP"
if [ "${1:-}" = stage-text ]; then
  python3 tools/gpu_bundle.py expand --src .gpu-text --dst /tmp/minilm >/dev/null && du -sh /tmp/minilm; exit 0
fi
[ -f /tmp/minilm/model.safetensors ] || [ -d .gpu-text ] || [ -d .gpu ] || {
  echo "[sweep] no text encoder on this host: it went cold between calls; stage-text again"; exit 3; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD RDTF_HOME=/tmp/rdtf-home RDTF_TEXT_MODEL=/tmp/minilm
for src in .gpu-text .gpu; do
  [ -f /tmp/minilm/model.safetensors ] || [ ! -d $src ] || python3 tools/gpu_bundle.py expand --src $src --dst /tmp/minilm >/dev/null
done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$SWEEP/gpu.txt" || true
# SECS bounds the call; give the variants' max_minutes ≈ 2 minutes less (start-up, decoder, the final checkpoint).
# `timeout` ends the sweep only: its variant processes finish their chunk and checkpoint on the warm host.
PIDS=""
for p in ${EVAL_PACKS:-}; do
  mkdir -p "$SWEEP/eval-$p"
  ( timeout "${SECS:-560}" python3 tools/recipe_sweep.py --pack ".packs/$p" --out "$SWEEP/eval-$p" --device cuda \
      --variant "${EVAL_VARIANT:?EVAL_VARIANT names the variant the evaluation packs run}" \
      >> "$SWEEP/eval-$p/summary.jsonl" || echo "eval pack $p ended early" ) &
  PIDS="$PIDS $!"
done
timeout "${SECS:-560}" python3 tools/recipe_sweep.py --pack "${PACK:-.packs/tune}" --out "$SWEEP" --device cuda \
    --parallel "${PARALLEL:-7}" "$@" | tee -a "$SWEEP/summary.jsonl" || echo "sweep ended early ($?)"
[ -z "$PIDS" ] || wait $PIDS || true
cat "$SWEEP"/eval-*/summary.jsonl 2>/dev/null || true
# what comes back: summaries, evaluations and logs (the models stay on the host); the sheets of the variants
# named in SHEETS beside them (a call returns at most 8 files of ≤ 16 MiB)
tar czf "$OUT/sweep.tar.gz" -C "$SWEEP" --exclude='*/checkpoints' --exclude='*/model' --exclude='*/autoencoder' \
    --exclude='*/samples' --exclude='*/cache*' --exclude='*.png' . 2>/dev/null || true
for v in ${SHEETS:-}; do
  for f in "$SWEEP/$v"/sheet-g*.png; do [ -f "$f" ] && cp "$f" "$OUT/$(echo "$v" | tr / -)-$(basename "$f")"; done
done
ls -la "$OUT"
