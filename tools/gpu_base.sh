#!/usr/bin/env bash
# The 256 px base model on a lent GPU host (device tool, one GPU), in chunks that resume across leases:
# the autoencoder's decoder fine-tuned at 256 px on Noto + Fluent (the encoder, so the latent space, stays),
# the DFGN fine-tuned at 256 px on builtin:mixed, one step in three at its 128 px draft size (`rdtf train
# --init-from MODEL --size 256 --draft-size 128 --draft-every 3 --continue-curriculum`; a lease with every other
# step at 128 px kept the layout but left 256 px undertrained) side by side on the one card; then the new
# model exported in fp16 and evaluated beside the shipped one on the same card; everything comes back in $OUT, the
# model in ≤ 15 MB parts.
#
# The job runs in its own process session (setsid) under /tmp, so it outlives the call that starts it while
# the host stays warm: chain the calls (each within 30 s of the last) and the data is prepared once.
#
#   here:   bash tools/gpu_carry.sh     (.fluent ≈ 25 MB: one call's carry; .gpu, .whl: the start call's)
#   A tree past ≈ 50 MiB leaves room for none of them beside it: then
#   `bash tools/gpu_parts.sh pack` here, `bash tools/gpu_parts.sh stage` once per part (carry .carry/manifest
#   and .carry/part-NN), then `stage` and `start` below carrying nothing: they link the unpacked folders.
#   call 1: bash tools/gpu_base.sh stage            (carry .fluent-a; copied to /tmp, which the warm host keeps)
#   call 1b: bash tools/gpu_base.sh stage           (carry .fluent-b .whl — the start call then carries .gpu alone:
#                                                    beside the ≈ 49 MB tree .gpu and .whl exceed 64 MiB together;
#                                                    the ≈ 41 MB tree and the whole 26 MB cache
#                                                    are over one call's 64 MiB since 2026-12-04; start checks
#                                                    that every shard of the index arrived)
#   [call:  bash tools/gpu_base.sh stage-init       (carry .base-init: a model folder brought back by an
#                                                    earlier lease, without its vae/, to continue from;
#                                                    default: the shipped model)
#    call:  bash tools/gpu_base.sh stage-init       (carry .base-vae: that model's vae/, which fits beside
#                                                    neither .base-init nor .gpu in one transfer; carried
#                                                    alone, it goes with the shipped DFGN)]
#   here:   bash tools/gpu_slim.sh hide             (before the start call: the ≈ 51 MB tree and .gpu exceed 64 MiB
#                                                    together; `bash tools/gpu_slim.sh restore` after the lease)
#   call 2: bash tools/gpu_base.sh start 590        (carry .gpu; TRAIN_MIN=… minutes, EVAL_OLD=0 skips
#                                                    the shipped model's evaluations when they are known,
#                                                    AE_MIN=0 the decoder's tuning when a tuned one is carried,
#                                                    EVAL_NEW=0 the new model's evaluations: ≈ 3 more minutes
#                                                    of training; run them here afterwards: tools/eval_base.sh;
#                                                    ANCHOR=default ANCHOR_W=3 holds the 128 px draft steps to the
#                                                    shipped model's predictions on the emoji clips: training/anchor.py;
#                                                    MOTION_W=W fits the frame-to-frame differences too, with weight W;
#                                                    EVAL_INIT=1 evaluates the carried model beside the new one;
#                                                    IMAGE_G=G saves G as the new model's own image guidance;
#                                                    DELTA_RANK=R trains rank-R size deltas alone, the base frozen:
#                                                    its 128 px draft stays the shipped model's exactly, every step
#                                                    runs at 256 px, no anchor needed: model/size_deltas.py;
#                                                    STYLE_RANK=R DATA=builtin:fluent trains rank-R style deltas
#                                                    alone, every step at the 128 px draft size, captions ending
#                                                    ", in 3d style" (STYLE_TAG); EVAL_EMOJI=0 then skips the
#                                                    emoji sets, which such a model draws as its base does;
#                                                    FEW_RANK=R distils the carried model into rank-R few-step
#                                                    deltas, its network frozen (training/consistency.py);
#                                                    EVAL_FEW=1 evaluates them with the few-step sampler, 4 steps)
#    call:  bash tools/gpu_base.sh stage-init       (carry .base-deltas: a size-delta model as its deltas and
#                                                    decoder, tools/delta_carry.py split; ≈ 15 MB, joined with
#                                                    the shipped DFGN on the host)]
#   call 3: bash tools/gpu_base.sh wait 590         (as often as needed; returns when the job is done)
#   call:   bash tools/gpu_base.sh resume 590       (a finished job's run continued on the still-warm host for
#                                                    TRAIN_MIN more minutes: no data to prepare, nothing carried;
#                                                    EVAL_NEW=1 / EVAL_OLD=1 evaluate after it (default none);
#                                                    exit 3 at once if the host went cold)
#   call 4: bash tools/gpu_base.sh collect          (→ $OUT: base.tar.part-*, results.tar.gz, sheets.tar.part-*)
#   A start/wait call that ends before the job brings back the logs so far (SNAP=1: the newest model too, which
#   the run checkpoints every CKPT=500 steps — but its 31 MB copy back counts towards the host's 30 s idle and has
#   twice let the host go cold before the next call); the call that sees the job done brings back the model.
#   A call that finds the host cold says so at once (exit 3): a lease whose host went cold between two calls once
#   lost 20 minutes of training and 13 more minutes of waiting on a bare host. Issue each call the moment the
#   last returns: the host is given back 30 s after a call. Safest: one start call that ends with the job
#   (data ≈ 2.2 min + TRAIN_MIN + export within its 530 s: TRAIN_MIN=5 with EVAL_NEW=0).
#   A size-delta model (DELTA_RANK) comes back as deltas.tar (≈ 15 MB: base-deltas/, its deltas and decoder):
#   tar xf deltas.tar; python tools/delta_carry.py join base-deltas MODEL --vae base-deltas; for the next lease
#   it is .base-deltas as it is.
#   back here: cat base.tar.part-* | tar x  → base256/ (the model folder; for the next lease its vae/ becomes
#              .base-vae and the rest .base-init: 24 + 8 MB, each beside the 39 MB tree within one transfer);
#              cat sheets.tar.part-* | tar x → the sample sheets (*.png)
#
# Measured (NVIDIA H200, 2026-12-02): data for 12,000 clips at 256 px prepared in ≈ 130 s, then 2.1 DFGN steps/s
# at batch 128 (bf16) alone; with the decoder's 4,000 steps running beside it (≈ 6 min) 1.6 steps/s
# (2026-12-03: 1,577 steps in TRAIN_MIN=16). With the draft (one step in three at 128 px) and the decoder beside
# it: 1,809 steps in TRAIN_MIN=15; a lease of stage, two stage-inits, start and two waits held the host 24 min.
# AE_MIN=0 (the DFGN alone, 2.4 steps/s): 2,400 steps in 16.8 min, where STEPS=2400 ended a TRAIN_MIN=17 run
# 12 s early (raise STEPS for longer runs); stage, two stage-inits, start and two waits held the host 25.3 min.
# 2026-12-03, a lease whose host went cold after the start call (the next call came too late): the 500-step
# snapshot that call brought back was staged again and continued, TRAIN_MIN=11: 1,539 steps (2.33 steps/s).
# 2026-12-04, ANCHOR=default ANCHOR_W=3: 2.2-2.37 steps/s; the host went cold again after a start call that brought
# back a snapshot (hence SNAP); restaged, one start call with TRAIN_MIN=5 and EVAL_NEW=0 ran 710 steps and ended
# with the job in 487 s. 2026-12-04, + MOTION_W=0.5, EVAL_INIT=1 EVAL_NEW=1: 2,182 steps in TRAIN_MIN=15 (2.42 steps/s),
# the four evaluations in parallel 2.9 min; stage, two stage-inits, start and two waits: 24.7 device-minutes.
# 2026-12-04, DELTA_RANK=32 LR=5e-4: 0.95 steps/s beside the decoder's tune (it slows the delta steps twice as much
# as full ones), 1.83 alone; the host went cold after a 521 s start call once more, so the lease was restaged and
# ran one start call ending with its job (CLIPS=8000 TRAIN_MIN=5.6 AE_MIN=0 EVAL_NEW=0: data 95 s, 573 steps,
# 460 s in all). Since: resume continues such a finished run on the warm host, each call ending with its job.
# 2026-12-04, STYLE_RANK=32 DATA=builtin:fluent LR=5e-4 CLIPS=12000 AE_MIN=0: 12,000 windows at 128 px encoded
# in 72 s (168 clips/s); 930 steps in TRAIN_MIN=6 (2.4 steps/s at batch 128), then resume 7 min (1,110 more)
# and 2.5 min (415 more) with EVAL_NEW=1 EVAL_OLD=1 EVAL_EMOJI=0 (both models' Fluent evaluations after the
# export, on the card); 26.6 device-minutes.
# 2026-12-05, FEW_RANK=16 LR=3e-4 BATCH=64 DRAFT_EVERY=2 AE_MIN=0 CLIPS=8000 EVAL_NEW=0 EVAL_OLD=0 on an H100 (the
# tree slimmed for the start call): start TRAIN_MIN=6.5, 703 steps in a 523 s call; resume TRAIN_MIN=6 (700 more,
# 403 s) and 4 (446 more, 282 s): 1.8-1.9 steps/s; the three exports' deltas came back, evaluated on the CPU.
set -euo pipefail
cmd=${1:?stage, stage-init, start, wait, resume, collect, check or job-env}; SECS=${2:-590}
T0=$(date +%s)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
STAGE=${STAGE:-/tmp/rdtf-stage}  # outside the checkout: each call's fresh copy of the tree drops ignored folders
R=$STAGE/base                    # the job's folder: run, autoencoder, exported model, logs, evaluations
# .fluent, .gpu and .whl staged in parts by earlier calls (tools/gpu_parts.sh), where this call carries none
[ ! -f tools/gpu_parts.sh ] || bash tools/gpu_parts.sh link

check_staged() {  # every shard of the staged Fluent index arrived (exit 3 if the host went cold or one is missing)
  [ -f $STAGE/fluent/index.json ] || { echo "[base] no staged Fluent data (host cold?): run stage again"; exit 3; }
  python3 - $STAGE/fluent <<'PYEOF' || { echo "[base] staged Fluent data incomplete: stage .fluent-b too"; exit 3; }
import json, sys
from pathlib import Path
d = Path(sys.argv[1]); index = json.loads((d / "index.json").read_text())
names = [s["name"] if isinstance(s, dict) else s for s in index.get("shards", [])]
missing = [n for n in names if not (d / n).is_file()]
sys.exit(f"missing shards: {missing}" if missing else 0)
PYEOF
}

job_env() {  # the environment of a job script whose folder is $1: staged packages, text model, font and clips
  cat <<ENV
export PYTHONPATH=$STAGE/site:$1/src RDTF_TEXT_MODEL=$STAGE/minilm RDTF_EMOJI_FONT=$1/src/NotoColorEmoji.ttf
export RDTF_FLUENT_CACHE=$STAGE/fluent RDTF_HOME=$1/home OMP_NUM_THREADS=4 PYTHONUNBUFFERED=1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ENV
}

install_wheels() {  # the carried .whl → $STAGE/site (kept on the warm host for later calls)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target $STAGE/site .whl/*.whl
}
export_model() {  # the run's newest model (+ the tuned decoder once written) → $R/base256 in fp16
  # one export at a time: a wait call's snapshot and the job's final export may meet
  ( cd $R && PYTHONPATH=$STAGE/site:$R/src flock .export.lock python3 -P - <<'PYEOF' ) || echo "export failed" >> $R/errors.txt
import shutil, torch
from pathlib import Path
from rdtf_engine.model.store import load_model_folder, save_model_folder
from rdtf_engine.training.autoencoder import load_autoencoder
if Path("run/model/config.json").is_file():
    unet, vae, card = load_model_folder(Path("run/model"))
    if Path("ae256/config.json").is_file():
        vae = load_autoencoder(Path("ae256"), torch.device("cpu"))[0]
    shutil.rmtree("base256.tmp", ignore_errors=True)
    save_model_folder(Path("base256.tmp"), unet, vae, card, dtype=torch.float16)
    shutil.rmtree("base256", ignore_errors=True)
    Path("base256.tmp").rename("base256")
    print("exported", card.steps, "steps")
PYEOF
}

bring_back() {  # → $OUT: the newest model in ≤ 15 MB parts (a later lease continues from it), the logs so far
  if [ -d $R/base256 ] && grep -Eq '"(size|style)_delta_rank": *[1-9]' $R/base256/unet/config.json; then
    # a size-delta model: its deltas (≈ 7 MB) and decoder, one part that copies back inside the host's 30 s;
    # here: tools/delta_carry.py join base-deltas MODEL --vae base-deltas (the shipped DFGN + these)
    # (the decoder only when it is not the shipped one: a style run's size and style deltas are ≈ 15 MB alone)
    ( cd $R && rm -rf base-deltas && PYTHONPATH=$STAGE/site:$R/src python3 -P src/delta_carry.py split base256 base-deltas \
      && { [ ! -d ae256 ] && [ ! -f $STAGE/init-vae/config.json ] || cp -r base256/vae base-deltas/vae; } \
      && tar cf "$OUT/deltas.tar" base-deltas ) || echo "split failed" >> $R/errors.txt
  elif [ -d $R/base256 ]; then tar cf - -C $R base256 | split -b 15m - "$OUT/base.tar.part-"; fi
  # the sample sheets as one tar in ≤ 15 MB parts: the device brings back at most 8 files, and a lease whose
  # five sheets beside the model's three parts pushed results.tar.gz (the evaluations) out lost its numbers
  ( cd $R && ls *.png >/dev/null 2>&1 && tar cf - *.png | split -b 15m - "$OUT/sheets.tar.part-" ) || true
  bring_back_logs
}

bring_back_logs() {  # → $OUT/results.tar.gz: the logs, metrics and evaluations (tens of kB)
  cp $R/run/metrics.jsonl $R/metrics.jsonl 2>/dev/null || true
  tar czf "$OUT/results.tar.gz" --exclude='*.png' --exclude=run --exclude=ae256 --exclude='base256*' \
      --exclude=home --exclude=src --exclude=base-deltas -C $STAGE base
  ls -la "$OUT"; cat $R/errors.txt 2>/dev/null || true
}

eval_env() {  # the evaluation settings of this call, for the job script to pass to `gpu_base.sh evaluate`
  echo "STAGE=$STAGE INIT=${INIT:-default} EVAL_NEW=${EVAL_NEW:-1} EVAL_OLD=${EVAL_OLD:-1} EVAL_INIT=${EVAL_INIT:-0}" \
       "EVAL_EMOJI=${EVAL_EMOJI:-1} EVAL_CLIPS=${EVAL_CLIPS:-48} EVAL_FEW=${EVAL_FEW:-0}"
}

evaluate() {  # in the job's folder, after the export: the new model (and the shipped / carried one) on the card
  # EVAL_EMOJI=0 leaves the emoji sets out (a style-delta model draws every untagged prompt as its base does)
  cd $R
  local CLF=src/resources/eval/motion-classifier-builtin-emoji PIDS=""
  ev() {  # tag model data: the emoji evaluation (the no-regression bar) and the real Fluent clips held out
    timeout 400 python3 -P -m rdtf_engine eval --model "$2" --data $3 --clips $EVAL_CLIPS \
      --steps 20 --seed 1 --classifier $CLF --json --grid $1-grid.png ${4:-} > $1.eval.json 2> $1.eval.log \
      || echo "eval $1 failed" >> errors.txt
  }
  sets() {  # name model: its evaluations in the background (with EV_ARGS: another sampler)
    if [ "$EVAL_EMOJI" = 1 ]; then ev $1 $2 builtin:emoji-holdout "${EV_ARGS:-}" & PIDS="$PIDS $!"; fi
    ev $1-fluent $2 builtin:fluent-holdout "${EV_ARGS:-}" & PIDS="$PIDS $!"
  }
  if [ -d base256 ] && [ "$EVAL_NEW" = 1 ]; then sets new base256; fi  # EVAL_NEW=0: evaluate it here on the CPU
  if [ -d base256 ] && [ "$EVAL_FEW" = 1 ]; then  # a distilled model: its few-step sampler too, same clips and seeds
    EV_ARGS="--scheduler lcm --steps 4"; sets few base256; EV_ARGS=""
  fi
  if [ "$EVAL_INIT" = 1 ] && [ "$INIT" != default ]; then sets init $INIT; fi  # the carried model, same seeds
  if [ "$EVAL_OLD" = 1 ]; then sets old default; fi
  if [ -d ae256 ]; then
    timeout 200 python3 -P -m rdtf_engine eval-autoencoder default ae256 --data builtin:fluent-holdout \
      --clips $EVAL_CLIPS --json --sheet ae-sheet.png > ae.eval.json 2> ae.eval.err & PIDS="$PIDS $!"
  fi
  [ -z "$PIDS" ] || wait $PIDS || true
}

wait_job() {  # until the job writes done, or this call's time is nearly up; then bring back what there is
  # A host that went cold between calls has no job: say so at once instead of waiting out the call.
  [ -f $R/job.sh ] || { echo "[base] no job on this host: it went cold between calls (each call must follow the
last within 30 s); stage again, stage-init the model last brought back, start again"; exit 3; }
  local last=0
  while [ ! -f $R/done ] && [ $(( $(date +%s) - T0 )) -lt $(( SECS - 60 )) ]; do
    sleep 5  # short ticks: never overshoot the call's own limit (a killed call loses its output)
    [ $(( $(date +%s) - last )) -ge 60 ] || continue; last=$(date +%s)
    grep '"kind":"progress"' $R/train.jsonl 2>/dev/null | tail -n1 | cut -c1-160 || true
    tail -n1 $R/ae.log 2>/dev/null | tr '\r' '\n' | tail -n1 | cut -c1-120 || true
  done
  if [ -f $R/done ]; then echo "[base] job done"; bring_back; return; fi
  echo "[base] job still running: call wait again within 30 s"
  # A call's files are copied back before its reply, and that copy counts towards the host's 30 s: twice (2026-12-03
  # and -04) the 31 MB snapshot of a still-running job took long enough that the next call found the host cold and
  # the job gone. So a running job's calls bring back the logs only, unless SNAP=1 asks for the newest model too.
  if [ "${SNAP:-0}" = 1 ]; then [ -f $R/trained ] || export_model; bring_back; else bring_back_logs; fi
}

case "$cmd" in
  stage)  # the Fluent shards → $STAGE (kept on the warm host while the next call carries more): the whole
    # .fluent where it fits beside the tree, else .fluent-a in one call and .fluent-b in the next (gpu_carry.sh)
    [ -d .fluent-b ] && [ ! -d .fluent-a ] || { rm -rf $STAGE && mkdir -p $STAGE/fluent; }
    for d in .fluent .fluent-a .fluent-b; do [ -d $d ] && cp $d/* $STAGE/fluent/; done
    # the wheels may come with the second part: since the 256 px default shipped (≈ 47 MiB tree), .gpu and .whl
    # together no longer fit beside the tree in the start call
    if ls .whl/*.whl >/dev/null 2>&1; then install_wheels; fi
    du -sh $STAGE/fluent; ls $STAGE/fluent; exit 0 ;;
  stage-init)  # whichever of the two this call carried (a folder a call does not carry may linger there)
    if [ -f .base-init/config.json ]; then rm -rf $STAGE/init && cp -r .base-init $STAGE/init; fi
    if [ -f .base-vae/config.json ]; then rm -rf $STAGE/init-vae && cp -r .base-vae $STAGE/init-vae; fi
    # a size-delta model's deltas (tools/delta_carry.py split; with its vae/ inside when it has its own decoder)
    if [ -f .base-deltas/deltas.safetensors ]; then rm -rf $STAGE/init-deltas && cp -r .base-deltas $STAGE/init-deltas; fi
    du -sh $STAGE/init $STAGE/init-vae $STAGE/init-deltas 2>/dev/null || true; exit 0 ;;
  wait) wait_job; exit 0 ;;
  resume)  # the finished job's run, continued on the same warm host: no data to prepare, no model to carry
    [ -f $R/done ] && [ -d $R/run/checkpoints ] || { echo "[base] no finished run on this host (it went cold?)"; exit 3; }
    rm -f $R/done $R/trained; cat > $R/resume.sh <<EOF
set -u
$(job_env $R)
cd $R
echo "[base] \$(date +%T) resumed for ${TRAIN_MIN:-7} min"
python3 -P -m rdtf_engine --events jsonl train --out run --resume --steps ${STEPS:-100000} --max-minutes ${TRAIN_MIN:-7} \
    >> train.jsonl 2>> train.log || echo "resume failed" >> errors.txt
STAGE=$STAGE bash $R/gpu_base.sh export; touch trained
$(EVAL_NEW=${EVAL_NEW:-0} EVAL_OLD=${EVAL_OLD:-0} eval_env) bash $R/gpu_base.sh evaluate
echo "[base] \$(date +%T) done"; touch done
EOF
    setsid nohup bash $R/resume.sh >> $R/job.log 2>&1 < /dev/null &
    sleep 5; tail -n 2 $R/job.log; wait_job; exit 0 ;;
  check) check_staged; exit 0 ;;  # (tools/gpu_preset.sh's start)
  job-env) job_env "${2:?the job folder}"; exit 0 ;;  # (tools/gpu_preset.sh's job script)
  export) export_model; exit 0 ;;  # (the job's own call)
  evaluate) evaluate; exit 0 ;;    # (the job's own call, with eval_env's settings)
  collect) [ -d $R ] || { echo "[base] no job on this host"; exit 3; }; bring_back; exit 0 ;;
  start) ;;
  *) echo "unknown command $cmd"; exit 2 ;;
esac

check_staged
rm -rf $R && mkdir -p $R
if ls .whl/*.whl >/dev/null 2>&1; then  # (a later start on the same warm host may leave .whl out of its carry)
  install_wheels
else [ -d $STAGE/site ] || { echo "[base] carry .whl"; exit 2; }; fi
if [ -d .gpu ]; then  # (a later start on the same warm host may leave .gpu out: its text model and font stay)
  python3 tools/gpu_bundle.py expand --src .gpu --dst $STAGE/minilm >/dev/null && cp .gpu/font/NotoColorEmoji.ttf $STAGE/
else [ -f $STAGE/NotoColorEmoji.ttf ] || { echo "[base] carry .gpu"; exit 2; }; fi
mkdir -p $R/src && cp -r rdtf_engine resources tools/delta_carry.py $R/src/ && cp "$0" $R/gpu_base.sh
cp $STAGE/NotoColorEmoji.ttf $R/src/
INIT=default
if [ -f $STAGE/init-deltas/deltas.safetensors ]; then  # carried deltas: the shipped DFGN + them, their decoder
  VAE=$STAGE/init-deltas; [ -f $VAE/vae/config.json ] || VAE=$STAGE/init-vae
  [ -f $VAE/config.json ] || [ -f $VAE/vae/config.json ] || VAE=""
  rm -rf $STAGE/init && PYTHONPATH=$STAGE/site:$PWD python3 -P tools/delta_carry.py join $STAGE/init-deltas $STAGE/init \
      ${VAE:+--vae $VAE} || { echo "[base] joining the carried deltas failed"; exit 2; }
elif [ ! -f $STAGE/init/config.json ] && [ -f $STAGE/init-vae/config.json ]; then
  # a tuned decoder alone (stage-init with .base-vae only): the shipped DFGN with it, e.g. for DELTA_RANK runs
  mkdir -p $STAGE/init && cp -r resources/models/default/. $STAGE/init/
fi
if [ -f $STAGE/init-deltas/deltas.safetensors ]; then INIT=$STAGE/init  # (joined with its decoder above)
elif [ -f $STAGE/init/config.json ]; then  # a carried model: its own decoder if it came, else the shipped one
  INIT=$STAGE/init; rm -rf $INIT/vae
  if [ -f $STAGE/init-vae/config.json ]; then cp -r $STAGE/init-vae $INIT/vae
  else cp -r resources/models/default/vae $INIT/vae; fi
fi
# The data seed: a continued model's step count unless SEED is set, so each lease draws a fresh sample of the
# procedural clips. Leases five to eight all drew seed 21's same 12,000 clips (≈ 87 passes over each by the eighth)
# while text → video of the held-out emoji got worse lease by lease: a fresh draw rules the repetition out.
SEED=${SEED:-$(python3 -c "import json,sys; c=json.load(open(sys.argv[1])); print(21 + int(c.get('base_steps', 0)) + int(c.get('steps', 0)))" $INIT/config.json 2>/dev/null || echo 21)}
echo "[base] data seed $SEED"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $R/gpu.txt || true

cat > $R/job.sh <<EOF
set -u
$(job_env $R)
cd $R
PY="python3 -P"
STYLE=()  # STYLE_RANK=R: rank-R style deltas alone (a quoted word inside \${…:+…} loses its quotes here)
[ -z "${STYLE_RANK:-}" ] || STYLE=(--style-delta-rank ${STYLE_RANK:-0} --trainable style --style-tag "${STYLE_TAG:-in 3d style}")
( while sleep 20; do nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader >> gpu_util.log; done ) &
UTIL=\$!
echo "[base] \$(date +%T) DFGN from $INIT for ${TRAIN_MIN:-15} min"
\$PY -m rdtf_engine --events jsonl train --data ${DATA:-builtin:mixed} --out run --init-from $INIT --size 256 \
    --draft-size ${DRAFT:-128} --draft-every ${DRAFT_EVERY:-3} --continue-curriculum --max-clips ${CLIPS:-12000} --batch-size ${BATCH:-128} --lr ${LR:-2e-4} \
    --steps ${STEPS:-2400} --max-minutes ${TRAIN_MIN:-15} --checkpoint-every ${CKPT:-500} --sample-every 0 \
    --seed $SEED ${ANCHOR:+--anchor $ANCHOR --anchor-weight ${ANCHOR_W:-1}} ${MOTION_W:+--motion-weight $MOTION_W} \
    ${IMAGE_G:+--image-guidance $IMAGE_G} ${DELTA_RANK:+--size-delta-rank $DELTA_RANK --trainable deltas} \
    ${FEW_RANK:+--objective consistency --few-step-rank $FEW_RANK} \
    "\${STYLE[@]}" > train.jsonl 2> train.log || echo "train failed" >> errors.txt &
DFGN=\$!
# the decoder starts once the DFGN's data is prepared (both would fight over the host's cores before)
while kill -0 \$DFGN 2>/dev/null && ! grep -q '"stage": *"train"' train.jsonl; do sleep 5; done
if [ "${AE_MIN:-6}" != 0 ]; then  # AE_MIN=0: keep the carried decoder; the DFGN alone ran 2.4 steps/s, 2.0 beside it
  echo "[base] \$(date +%T) decoder for ${AE_MIN:-6} min"
  \$PY -m rdtf_engine train-autoencoder --init-from $INIT --decoder-only --data builtin:mixed --size 256 \
      --draft-size ${DRAFT:-128} \
      --steps ${AE_STEPS:-4000} --batch-size 32 --lr ${AE_LR:-2e-4} --max-frames 16000 --max-clips 3000 \
      --max-minutes ${AE_MIN:-6} --out ae256 > ae.log 2>&1 || echo "autoencoder failed" >> errors.txt
fi
wait \$DFGN
echo "[base] \$(date +%T) export"; tail -3 train.log
STAGE=$STAGE bash $R/gpu_base.sh export; touch trained
$(eval_env) bash $R/gpu_base.sh evaluate
echo "[base] \$(date +%T) done"; touch done
kill \$UTIL 2>/dev/null || true
EOF
setsid nohup bash $R/job.sh > $R/job.log 2>&1 < /dev/null &
sleep 5; cat $R/job.log
wait_job
