#!/usr/bin/env bash
# One lease of a lent GPU host (device tool; best a 4-GPU kind): trains the shipped default model on GPU 0 and
# runs the paper's ablations (tools/gpu_ablations.sh) on the other GPUs, side by side, as detached jobs (setsid)
# that outlive each ≤ 10-minute call. Every call ends by copying what exists so far to $OUT, so a lost host
# still leaves the latest default model behind.
#
#   bash tools/gpu_lease.sh start 570    # set up, launch both jobs, watch 570 s, collect
#   DDP=1 ABLATIONS=0 AE_FROM=.gpu/ae256 bash tools/gpu_lease.sh start 570   # every GPU on the default model
#   DDP=1 ABLATIONS=0 INIT_FROM=.gpu/init bash tools/gpu_lease.sh start 555  # continue a model (rdtf train --init-from)
#   DSIZE=128 DDP=1 ABLATIONS=0 EVAL_CLIPS=0 SEED=3 INIT_FROM=resources/models/default \
#     CLF_FROM=resources/eval/motion-classifier-builtin-emoji \
#     bash tools/gpu_lease.sh start 562   # round 4's calls: on a warm host it resumes runs/default (optimizer
#                                         # kept), on a fresh one it continues the carried model; no eval on GPU
#   PROFILE=1 BATCH=256 …              # round 5 (2 × H200): time one step eager vs torch.compile'd on the
#                                        # last GPU during data prep (runs/profile*.json; compile failed there)
#   bash tools/gpu_lease.sh watch 570    # watch, collect (twice in round 3 the host was gone by this call:
#                                        # plan every call to be useful on its own)
#   bash tools/gpu_lease.sh finish 400   # wait (≤ 400 s) for both jobs, collect
#   bash tools/gpu_lease.sh solo 525     # one GPU, one call: autoencoder + DFGN for 525 s, export, collect
#   EVALS="dev-s7|--data builtin:emoji-dev --clips 32 --tasks it2v --strength 0.7;…" P=4 \
#     bash tools/gpu_lease.sh evals 540   # round 10: a sampling sweep, P evals at a time → $OUT/evals.tar.gz
#
# Jobs end by DEADLINE = start + LEASE_S (default 1500 s): the default DFGN and the arms train until
# DEADLINE − EVAL_S, then export and evaluate. The host has torch but no registry: diffusers travels as a wheel
# in .whl/, the pruned text encoder and the emoji font in .gpu/ (tools/gpu_bundle.py pack); carry both.
# Back in the checkout: cat default.tar.part-* | tar x -C resources/models  (and results.tar.gz: logs, evals).
set -euo pipefail
cmd=${1:?command}; SECS=${2:-560}
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=2
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT" runs
T_CALL=$(date +%s)
# Dry run on a CPU box: PY=.venv/bin/python SKIP_SETUP=1 DPRESET=tiny DSIZE=32 … with a fake nvidia-smi on PATH
PY=${PY:-python3}; DPRESET=${DPRESET:-small}; DSIZE=${DSIZE:-256}

setup_env() {
  if [ ! -d /tmp/site/diffusers ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  fi
  export PYTHONPATH=/tmp/site:$PWD
  if python3 -c "import diffusers.models.modeling_utils" 2>/tmp/imp.err; then
    echo "[lease] diffusers imports with the host's transformers / huggingface_hub"
  else  # .whl/extra (transformers, tokenizers, hub: 17 MB) is kept out of the carry to stay under 64 MiB
    tail -2 /tmp/imp.err
    ls .whl/extra/*.whl >/dev/null 2>&1 || { echo "[lease] diffusers needs newer hub/transformers: carry .whl/extra"; exit 3; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/extra/*.whl
  fi
  [ -f /tmp/minilm/model.safetensors ] || python3 tools/gpu_bundle.py expand --src .gpu --dst /tmp/minilm >/dev/null
  export RDTF_TEXT_MODEL=/tmp/minilm RDTF_EMOJI_FONT=$PWD/.gpu/font/NotoColorEmoji.ttf RDTF_HOME=$PWD/runs/home
}

RUN=runs/default
# Batch 128: at batch 32 the small DFGN is launch-bound on an H100-class GPU (≈15 k aten ops per step whatever
# the batch), so a 4× batch costs little extra wall time per step (metrics.jsonl "ms" shows the split).
DEF="--data builtin:emoji --out $RUN --preset $DPRESET --size $DSIZE --batch-size ${BATCH:-128} --lr ${LR:-4e-4}
     --max-clips ${MAX_CLIPS:-6000} --checkpoint-every ${CKPT_EVERY:-500} --sample-every 1000 --seed ${SEED:-0}
     ${REF_ATTN:+--reference-attention $REF_ATTN} ${CONT_CURR:+--continue-curriculum}"
# REF_ATTN=on|off|all: the DFGN's reference attention (default: --init-from's, else off; all = also a block at the
# levels without attention, zero-initialised, which --init-from grows from a model without them)
# CONT_CURR=1: an --init-from continuation takes up the base model's curriculum (rdtf train --continue-curriculum)
# SEED: a continuation call with a new seed renders 6,000 new clips (the held-out split is fixed by code point)

steps_for() {  # step target so that run $1 (rate from its metrics) ends $2 s from now
  $PY - "$1" "$2" <<'EOF'
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1] + "/metrics.jsonl")) if "steps_per_s" in r]
rate = rows[-1]["steps_per_s"]  # since its process started (start-up and first steps drag it down): take the
run = [r for r in rows if "elapsed_s" in r]  # steady rate of the last process's last logged rows instead
cut = max([i for i in range(1, len(run)) if run[i]["elapsed_s"] < run[i - 1]["elapsed_s"]], default=0)
run = run[cut:][-12:]
if len(run) >= 3 and run[-1]["elapsed_s"] - run[1]["elapsed_s"] > 5:
    rate = (run[-1]["step"] - run[1]["step"]) / (run[-1]["elapsed_s"] - run[1]["elapsed_s"])
print(rows[-1]["step"] + max(50, int(rate * float(sys.argv[2]) * 0.92)))
EOF
}

job_default() {  # autoencoder → DFGN (probe, then the step count that fits) → export → eval
  local deadline=$1 eval_s=${EVAL_S:-300} n train
  n=$(nvidia-smi -L | wc -l)
  if [ "${DDP:-0}" = 1 ]; then  # every GPU trains the default model (DDP; global batch = n × BATCH)
    train="$PY -m torch.distributed.run --standalone --nproc_per_node $n -m rdtf_engine train"
  else
    export CUDA_VISIBLE_DEVICES=0; train="$PY -m rdtf_engine train"
  fi
  if [ -n "${CLF_FROM:-}" ]; then  # a motion classifier carried from an earlier lease (1.2 MB)
    mkdir -p runs/abl/clf && cp "$CLF_FROM"/motion_classifier.* runs/abl/clf/
  fi
  if [ "${PROFILE:-0}" = 1 ] && [ "$n" -gt 1 ]; then  # the last GPU idles while the main process renders and
    # encodes the clips: time one step eager vs compiled there (benchmark ratio, tools/profile_step.py)
    ( for c in "" --compile; do CUDA_VISIBLE_DEVICES=$(( n - 1 )) timeout 240 $PY tools/profile_step.py --preset $DPRESET \
        --batch "${BATCH:-128}" --size $(( DSIZE / 8 )) --top 8 $c > runs/profile${c:+-compiled}.json 2>> runs/profile.log; done ) &
  fi
  if [ "${ABLATIONS:-1}" = 0 ] && [ -z "${INIT_FROM:-}" ]; then
    # while the autoencoder trains on GPU 0 the last GPU is idle: profile a step there, then train the classifier
    ( CUDA_VISIBLE_DEVICES=$(( n - 1 )) $PY tools/profile_step.py --preset $DPRESET --batch "${BATCH:-128}" --size $(( DSIZE / 8 )) > runs/profile.json 2> runs/profile.log
      [ -f runs/abl/clf/motion_classifier.safetensors ] || \
        CUDA_VISIBLE_DEVICES=$(( n - 1 )) bash tools/gpu_ablations.sh clf > runs/clf.log 2>&1 ) &
  fi
  local ae="--autoencoder $RUN/autoencoder"
  if [ -n "${INIT_FROM:-}" ]; then
    ae="--init-from $INIT_FROM"  # continue a model that came back from an earlier lease (its own autoencoder)
  elif [ -n "${AE_FROM:-}" ]; then
    ae="--autoencoder $AE_FROM"  # an autoencoder carried from an earlier lease (saves its minutes)
  elif [ ! -f $RUN/autoencoder/config.json ]; then
    CUDA_VISIBLE_DEVICES=0 $PY -m rdtf_engine train-autoencoder --data builtin:emoji --out $RUN/autoencoder \
      --preset $DPRESET --size $DSIZE --steps 3000 --batch-size 32 --lr 4e-4 --max-frames 24000 \
      --max-minutes ${AE_MINUTES:-3.5} --max-clips 16000
  fi
  echo "[lease] autoencoder ready at $(( $(date +%s) - deadline + LEASE_S )) s"
  # probe: learn the real step rate (data prep included before it), then fix the curriculum horizon to match.
  # Its --steps is a guess of the final count (PROBE_RATE steps/s over the lease), not 1e6: the curriculum's
  # horizon comes from --steps, and with CONT_CURR a huge one put the probe's steps at the start weights.
  local guess=$(( ${PROBE_RATE:-2} * (deadline - eval_s - $(date +%s)) ))
  [ "$guess" -ge 100 ] || guess=100
  [ -d $RUN/checkpoints ] || $train $DEF $ae --steps $guess --max-minutes 1.5 || true
  if [ "${DDP:-0}" = 1 ] && ! grep -q steps_per_s $RUN/metrics.jsonl 2>/dev/null; then
    echo "[lease] the DDP probe made no step: falling back to one GPU"  # never lose the lease to NCCL
    export CUDA_VISIBLE_DEVICES=0; train="$PY -m rdtf_engine train"
    rm -rf $RUN/checkpoints; $train $DEF $ae --steps $guess --max-minutes 1.5 || true
  fi
  # what the data really held on this host (round 6: a cut-down font silently emptied the extra emoji pool)
  $PY -c "import json; print('[lease] data splits', json.load(open('$RUN/model/config.json'))['data_summary'].get('splits'))" \
    2>/dev/null || true
  local left=$(( deadline - eval_s - $(date +%s) ))
  local steps; steps=$(steps_for $RUN $left || echo 20000)
  echo "[lease] DFGN: $left s left, training to step $steps"
  $train --out $RUN --resume --steps "$steps" --max-minutes "$(awk "BEGIN {print $left / 60}")" || true
  export_default runs/export && touch runs/default.exported
  # EVAL_CLIPS=0: no eval here (every second goes to training; evaluate the returned model on the CPU box)
  [ "${EVAL_CLIPS:-64}" = 0 ] && { echo "[lease] default job finished at $(date +%T)"; touch runs/default.done; return; }
  while [ ! -f runs/abl/clf/motion_classifier.safetensors ]; do sleep 5; done
  CUDA_VISIBLE_DEVICES=0 timeout $(( deadline - $(date +%s) + 60 )) $PY -m rdtf_engine eval --model $RUN \
    --data builtin:emoji-holdout --clips ${EVAL_CLIPS:-64} --steps 20 --classifier runs/abl/clf --json \
    --grid runs/default-grid.png > runs/default.eval.json 2> runs/default.eval.log || true
  echo "[lease] default job finished at $(date +%T)"; touch runs/default.done
}

export_default() {  # the EMA model in fp16 (the shipped form) → $1/default
  $PY - "$RUN" "$1" <<'EOF'
import shutil, sys, torch
from pathlib import Path
from rdtf_engine.model.store import load_model_folder, save_model_folder
run, out = Path(sys.argv[1]), Path(sys.argv[2])
unet, vae, card = load_model_folder(run / "model")
shutil.rmtree(out / "default", ignore_errors=True)
save_model_folder(out / "default", unet, vae, card, dtype=torch.float16)
print("exported step", card.steps, sorted(p.name for p in (out / "default").rglob("*")))
EOF
}

job_ablations() {  # GPUs 1…n−1: shared autoencoder + classifier, 10 arms to equal steps, eval
  local deadline=$1 n
  n=$(nvidia-smi -L | wc -l)
  export GPUS; GPUS=$(seq -s ' ' $(( n > 1 ? 1 : 0 )) $(( n - 1 )))
  UNTIL=$(( deadline - ${EVAL_S:-300} )) bash tools/gpu_ablations.sh train
  bash tools/gpu_ablations.sh eval
  echo "[lease] ablation job finished at $(date +%T)"; touch runs/abl.done
}

collect() {  # whatever exists now → $OUT (≤ 8 files of ≤ 16 MiB)
  local src=runs/export  # the job's final export, else a snapshot of the latest checkpoint's EMA model
  if [ ! -f runs/default.exported ]; then src=runs/snap; export_default $src > /dev/null 2>&1 || true; fi
  if [ -d $src/default ]; then
    tar cf - -C $src default | split -b 15m - "$OUT/default.tar.part-"
  elif [ -f $RUN/autoencoder/config.json ]; then  # no DFGN yet: at least the autoencoder's minutes come back
    tar cf "$OUT/autoencoder.tar" -C $RUN autoencoder
  fi
  local files=()
  for f in runs/*.log runs/*.json runs/*.png runs/default/metrics.jsonl runs/default/train_config.json \
           runs/abl/*.log runs/abl/*.json runs/abl/*/metrics.jsonl runs/abl/clf/* runs/gpu_util.log \
           runs/profile*.json runs/profile.log runs/clf.log; do
    [ -e "$f" ] && files+=("$f")
  done
  ls runs/default/samples/*.png >/dev/null 2>&1 && files+=("$(ls runs/default/samples/*.png | tail -1)")
  tar czf "$OUT/results.tar.gz" "${files[@]}" 2>/dev/null || true
  ls -la "$OUT"
}

watch_jobs() {  # print progress every 60 s until $1 s have passed since this call began, or both jobs are done
  local last=$T_CALL
  while [ $(( $(date +%s) - T_CALL )) -lt "$1" ]; do
    [ -f runs/default.done ] && [ -f runs/abl.done ] && break
    sleep 5  # short ticks: never overshoot the call's own limit
    [ $(( $(date +%s) - last )) -lt 60 ] && continue
    last=$(date +%s)
    echo "== $(date +%T) ($(( $(date +%s) - $(cat runs/start) )) s into the lease)"
    grep -hE "^step|encoded|DFGN|lease|error|Error" runs/default.log 2>/dev/null | tail -3 || true
    for f in runs/abl/*-s*.log; do [ -e "$f" ] && echo "$(basename "$f"): $(grep -E '^step [0-9]+:' "$f" | tail -1)"; done
    tail -1 runs/gpu_util.log 2>/dev/null || true
  done
}

[ -n "${SKIP_SETUP:-}" ] || setup_env
case "$cmd" in
  start)
    LEASE_S=${LEASE_S:-1500}; echo "$T_CALL" > runs/start
    rm -f runs/default.done runs/default.exported runs/abl.done  # a warm host from the last call: go on
    [ -d $RUN/checkpoints ] && echo "[lease] warm host: resuming $RUN (optimizer state kept; INIT_FROM unused)"
    deadline=$(( T_CALL + LEASE_S ))
    nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader
    $PY -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__)"
    setsid nohup nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader -l 30 \
      > runs/gpu_util.log 2>&1 < /dev/null &
    export LEASE_S
    setsid nohup bash "$0" job-default "$deadline" > runs/default.log 2>&1 < /dev/null &
    if [ "${ABLATIONS:-1}" = 1 ]; then
      setsid nohup bash "$0" job-ablations "$deadline" > runs/ablations.log 2>&1 < /dev/null &
    else
      touch runs/abl.done
    fi
    watch_jobs "$SECS"; collect ;;
  watch) watch_jobs "$SECS"; collect ;;
  finish) watch_jobs "$SECS"; collect ;;
  solo)  # one GPU, one call: autoencoder, then DFGN until SECS after the call began, export, collect
    export CUDA_VISIBLE_DEVICES=0
    [ -f $RUN/autoencoder/config.json ] || $PY -m rdtf_engine train-autoencoder --data builtin:emoji \
      --out $RUN/autoencoder --preset $DPRESET --size $DSIZE --steps 3000 --batch-size 32 --lr 4e-4 \
      --max-frames 16000 --max-minutes "${AE_MINUTES:-2.5}" --max-clips 16000 2>&1 | grep -E "^step|trained|error" | tail -3
    $PY -m rdtf_engine train $DEF --steps "${STEPS:-800}" --max-minutes 30 > runs/default.log 2>&1 &
    pid=$!
    while kill -0 $pid 2>/dev/null && [ $(( $(date +%s) - T_CALL )) -lt "$SECS" ]; do sleep 5; done
    kill -TERM $pid 2>/dev/null && { wait $pid || true; }  # a cooperative stop: the trainer checkpoints first
    grep -E "^step|encoded|error|Error" runs/default.log | tail -12
    export_default runs/export && touch runs/default.exported
    collect ;;
  evals)  # EVALS="name|rdtf eval args;…" run P at a time on GPU 0 (a sampling-settings sweep), JSONs → $OUT
    mkdir -p runs/evals; IFS=';' read -ra specs <<< "${EVALS:?EVALS=name|args;...}"
    for spec in "${specs[@]}"; do
      name=${spec%%|*}; args=${spec#*|}
      [ -s runs/evals/$name.json ] && continue  # a warm host keeps the ones done
      while [ "$(jobs -rp | wc -l)" -ge "${P:-4}" ]; do sleep 1; done
      [ $(( $(date +%s) - T_CALL )) -ge "$SECS" ] && { echo "[evals] out of time before $name"; break; }
      # shellcheck disable=SC2086
      ( $PY -m rdtf_engine eval --json $args > runs/evals/$name.tmp 2> runs/evals/$name.err \
          && mv runs/evals/$name.tmp runs/evals/$name.json; echo "[evals] $name rc=$? $(date +%T)" ) &
    done
    wait; tar czf "$OUT/evals.tar.gz" runs/evals; ls -la "$OUT" ;;
  job-default) job_default "$SECS" ;;
  job-ablations) job_ablations "$SECS" ;;
  *) echo "unknown command $cmd"; exit 2 ;;
esac
