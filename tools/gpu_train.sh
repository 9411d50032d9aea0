#!/usr/bin/env bash
# Train the shipped default model (and the ablation arms) on a lent GPU host, in chunks of < 10 minutes.
# The host has torch but no registry: diffusers and friends travel as wheels in .whl/, the text encoder and the
# emoji font in .gpu/ (tools/gpu_bundle.py pack). Everything resumable lives in runs/ (kept on a warm host);
# what must survive a lost host is copied to $OUT (the EMA model in fp16, ≤ 15 MB shards).
#
#   bash tools/gpu_train.sh default-1   # autoencoder (≈4 min) + first DFGN chunk
#   bash tools/gpu_train.sh default-2   # resume DFGN, export the model to $OUT
#   bash tools/gpu_train.sh ablations   # the paper's Table 3/4 arms at 64 px, equal steps, then eval
set -euo pipefail
stage=${1:?stage}
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
# The whole log also lands in $OUT (it comes back even when the call is killed at its limit).
exec > >(tee -a "$OUT/train.log") 2>&1
# BUDGET_S>0: wall-clock budget of this call in seconds (data prep included); the DFGN chunk gets SIGTERM
# (a cooperative stop that still checkpoints) early enough to leave time for the export.
T0=$(date +%s); BUDGET_S=${BUDGET_S:-0}
dfgn() {  # run a train command under the remaining budget
  if [ "$BUDGET_S" -gt 0 ]; then
    local left=$(( BUDGET_S - ($(date +%s) - T0) - 40 ))
    echo "[gpu_train] $(( $(date +%s) - T0 )) s elapsed; DFGN gets at most $left s"
    [ "$left" -gt 30 ] || { echo "[gpu_train] no time left for the DFGN"; return 0; }
    timeout -s TERM -k 45 "$left" "$@" || true
  else
    "$@" || true
  fi
}
if [ ! -d /tmp/site/diffusers ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH=/tmp/site:$PWD
if ! python3 -c "import diffusers.models.modeling_utils" 2>/tmp/imp.err; then
  echo "diffusers import failed with the host's hub/transformers; adding .whl/extra"; tail -3 /tmp/imp.err
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/extra/*.whl
fi
[ -f /tmp/minilm/model.safetensors ] || python3 tools/gpu_bundle.py expand --src .gpu --dst /tmp/minilm
export RDTF_TEXT_MODEL=/tmp/minilm RDTF_EMOJI_FONT=$PWD/.gpu/font/NotoColorEmoji.ttf RDTF_HOME=$PWD/runs/home
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)"

RUN=runs/default
DEF="--data builtin:emoji --out $RUN --preset small --size 256 --batch-size 32 --lr 3e-4 --max-clips ${MAX_CLIPS:-16000} --checkpoint-every 500 --sample-every 1000"
export_model() {
  python3 - "$RUN" "$OUT" <<'EOF'
import sys, shutil, torch
from pathlib import Path
from rdtf_engine.model_store import load_model_folder, save_model_folder
run, out = Path(sys.argv[1]), Path(sys.argv[2])
unet, vae, card = load_model_folder(run / "model")
save_model_folder(out / "default", unet, vae, card, dtype=torch.float16)
for f in sorted((run / "samples").glob("*.png"))[-1:]:
    shutil.copy(f, out / "default" / "samples.png")
shutil.copy(run / "metrics.jsonl", out / "default" / "metrics.jsonl")
print("exported", sorted(p.name for p in (out / "default").rglob("*")))
EOF
  # $OUT returns at most 8 files of ≤ 16 MiB: ship the folder as a split tar (reassemble with cat | tar x).
  tar cf - -C "$OUT" default | split -b 15m - "$OUT/default.tar.part-"
  cp $RUN/metrics.jsonl "$OUT/" && rm -rf "$OUT/default" && ls -la "$OUT"
}

case "$stage" in
  default-1)
    if [ ! -f $RUN/autoencoder/config.json ]; then
      python3 -m rdtf_engine train-autoencoder --data builtin:emoji --out $RUN/autoencoder --preset small --size 256 \
        --steps 3000 --batch-size 32 --lr 4e-4 --max-frames 24000 --max-minutes 3.5 --max-clips 16000
    fi
    echo "[gpu_train] autoencoder done at $(( $(date +%s) - T0 )) s"
    dfgn python3 -m rdtf_engine train $DEF --steps ${STEPS:-12000} --max-minutes ${MINUTES:-4}
    export_model ;;
  default-2)
    dfgn python3 -m rdtf_engine train --out $RUN --resume --steps ${STEPS:-12000} --max-minutes ${MINUTES:-8.5}
    export_model ;;
  *) echo "unknown stage $stage"; exit 2 ;;
esac
