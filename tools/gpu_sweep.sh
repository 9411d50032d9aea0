#!/usr/bin/env bash
# tools/recipe_sweep.py on a lent GPU host (device tool), in chunks that fit its 10-minute calls: the run folders
# live in $SWEEP (outside the checkout, which each call copies afresh), so a later call made while the host is
# still warm resumes them with resume=1 and evaluates them.
#
#   here:   python tools/gpu_bundle.py pack --out .gpu --int8 --extra-captions packs/*/captions.csv …  (text model)
#           python tools/gpu_bundle.py trim-wheel --src diffusers-*.whl --dst .whl   (+ webdataset, platformdirs…)
#           the tuning pack in .packs/tune
#   call 1: bash tools/gpu_sweep.sh --guidance 4,6 --variant "a:steps=3600,max_minutes=7" …  (carry .gpu .whl .packs)
#   call 2: bash tools/gpu_sweep.sh --guidance 4,6 --variant "a:steps=3600,resume=1" …   → $OUT/sweep.tar.gz
set -euo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=2
OUT=${OUT:-/tmp/out}; SWEEP=${SWEEP:-/tmp/sweep}; mkdir -p "$OUT" "$SWEEP"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD RDTF_HOME=/tmp/rdtf-home RDTF_TEXT_MODEL=/tmp/minilm
[ -f /tmp/minilm/model.safetensors ] || python3 tools/gpu_bundle.py expand --src .gpu --dst /tmp/minilm >/dev/null
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$SWEEP/gpu.txt" || true
# SECS bounds the call; give the variants' max_minutes ≈ 2 minutes less (start-up, decoder, the final checkpoint).
# `timeout` ends the sweep only: its variant processes finish their chunk and checkpoint on the warm host.
timeout "${SECS:-560}" python3 tools/recipe_sweep.py --pack "${PACK:-.packs/tune}" --out "$SWEEP" --device cuda \
    --parallel "${PARALLEL:-7}" "$@" | tee -a "$SWEEP/summary.jsonl" || echo "sweep ended early ($?)"
# what comes back: summaries, evaluations and logs (the models stay on the host); the sheets of the variants
# named in SHEETS beside them (a call returns at most 8 files of ≤ 16 MiB)
tar czf "$OUT/sweep.tar.gz" -C "$SWEEP" --exclude='*/checkpoints' --exclude='*/model' --exclude='*/autoencoder' \
    --exclude='*/samples' --exclude='*/cache*' --exclude='*.png' . 2>/dev/null || true
for v in ${SHEETS:-}; do
  for f in "$SWEEP/$v"/sheet-g*.png; do [ -f "$f" ] && cp "$f" "$OUT/$v-$(basename "$f")"; done
done
ls -la "$OUT"
