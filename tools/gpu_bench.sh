#!/usr/bin/env bash
# One call on a lent GPU host (device tool): the performance benchmarks, their JSON back in $OUT.
#   call:  bash tools/gpu_bench.sh 560      (carry .gpu/minilm-pruned .whl: the pruned text encoder and the
#                                             diffusers wheel; the emoji font is not needed)
# benchmarks/gpu_profile.py (the sticker's phases, the top kernels of a denoiser step), benchmarks/gpu.py (B1, B2,
# B3 against the AnimateDiff-sized peer, in one process), then benchmarks/attention.py at 128 and 256 px (the
# masked attention three ways; ATTENTION=0 leaves it out). Each stage has its own time limit so the call returns
# with every finished stage's numbers whatever a later one does.
set -uo pipefail
SECS=${1:-560}; T0=$(date +%s)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD
[ -f /tmp/minilm/model.safetensors ] || python3 tools/gpu_bundle.py expand --src .gpu --dst /tmp/minilm >/dev/null
export RDTF_TEXT_MODEL=/tmp/minilm RDTF_HOME=$PWD/runs/home
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
left() { echo $(( SECS - ($(date +%s) - T0) - ${1:-0} )); }
stage() {  # name reserve_s command…: runs with what is left minus the later stages' reserve
  local name=$1 reserve=$2; shift 2; local t=$(date +%s)
  timeout "$(left "$reserve")" "$@" > "$OUT/$name.json" 2> "$OUT/$name.log"
  echo "$name rc=$? wall_s=$(( $(date +%s) - t ))" | tee -a "$OUT/times.txt"
}
ATTENTION=${ATTENTION:-1}
stage profile $(( 100 + 140 * ATTENTION )) python3 benchmarks/gpu_profile.py --iters "${ITERS:-5}"
# COMPILE=1: B2's compiled arms too (ours and the peer's, ≈ 3.5 more minutes: give the call ATTENTION=0)
[ "${COMPILE:-0}" = 1 ] && NOCOMPILE=() || NOCOMPILE=(--no-compile)
stage gpu $(( 10 + 140 * ATTENTION )) python3 benchmarks/gpu.py --iters "${ITERS:-5}" "${NOCOMPILE[@]}"
if [ "$ATTENTION" = 1 ]; then
  stage attention128 75 python3 benchmarks/attention.py --size 128
  stage attention256 10 python3 benchmarks/attention.py --size 256
fi
tail -c 3000 "$OUT/gpu.log"
