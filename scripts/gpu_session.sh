#!/usr/bin/env bash
# One device call that does a GPU lease's work in the brief's order: train the embedded pair, benchmark, GPU
# tests. Runs ON the GPU machine, from the repository root, after the carry calls (scripts/gpu_carry.sh):
#
#   <unpack line printed by gpu_carry.sh>; bash scripts/gpu_session.sh
#
# Every stage has its own time limit, writes its results to $OUT as soon as it ends (a later stage that fails
# or runs out of time loses nothing earlier), and the whole stays under CALL_S seconds (one call may run 600).
# What comes back (at most 8 files): session.log, pair.tar, bench-gpu.json, bench-gpu.png, history.jsonl,
# profile-eager.json, profile-compiled.json, gpu-tests.log.
#
# Knobs (environment): STAGES="train bench profile tests" (add "photos" for photo mode on DATA_A: PHOTOS_S=30,
# PHOTOS_N=300, PHOTOS_BACKEND=torch; its summary goes into session.log), CALL_S=560 (lower it, and the call's timeout_s, when the
# lease has less left: training takes what the other stages leave), BENCH_S=170, PROFILE_S=40, TESTS_S=80, TRAIN_S, DATA_A/DATA_B,
# INIT_FROM (pair to fine-tune; default the embedded summer2winter; empty: from scratch),
# TRAIN_EXTRA (more cgan-train options; they win over the defaults), BENCH_BACKENDS, BENCH_SIZES, BENCH_DEVICE,
# BENCH_PRECISION, E2E_BACKEND, E2E_SIZE, BENCH_EXTRA, PROFILE_SIZE, PROFILE_EXTRA, PROBE_SIZE/NGF/BLOCKS/BATCH/
# STEPS/WARMUP (the training probe), PROBE_COMPILE_MIN_S=400 (its compile row), MIN_TRAIN_S=60, PROBE_MIN_S=120,
# SKIP_INSTALL=1 (for a CPU rehearsal: tests/test_gpu_session_script.py runs it so in CI).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
exec > >(tee -a "$OUT/session.log") 2>&1
T0=$(date +%s)
CALL_S=${CALL_S:-560}
STAGES=${STAGES:-train bench profile tests}
BENCH_S=${BENCH_S:-170}
TESTS_S=${TESTS_S:-80}
PROFILE_S=${PROFILE_S:-40}
PHOTOS_S=${PHOTOS_S:-30}
case " $STAGES " in *" photos "*) photos_s=$PHOTOS_S;; *) photos_s=0;; esac  # photos' time is taken from training
# training takes what the other stages named in STAGES leave (STAGES=train alone gets the whole call)
others=0
for s in $STAGES; do case $s in bench) others=$((others + BENCH_S));; profile) others=$((others + PROFILE_S));;
  tests) others=$((others + TESTS_S));; esac; done
TRAIN_S=${TRAIN_S:-$((CALL_S - others - photos_s - 10))}
DATA_A=${DATA_A:-/tmp/carry/trainA}
DATA_B=${DATA_B:-/tmp/carry/trainB}
WORK=${WORK:-/tmp/cgan_session}  # run folder and pair; a re-run of this script starts training afresh
INIT_FROM=${INIT_FROM-summer2winter}  # fine-tune the embedded pair (INIT_FROM= trains from scratch)
export PYTHONUNBUFFERED=1 CGAN_HOME=${CGAN_HOME:-/tmp/cgan_home} PYTHONDONTWRITEBYTECODE=1
left() { echo $(( CALL_S - ($(date +%s) - T0) )); }
stage() { echo; echo "=== $1 (t=$(( $(date +%s) - T0 )) s, $(left) s left) ==="; }
# seconds a step may take: what it wants, at most what the call has left less 10 s, never below 0. Callers skip
# a step whose cap is under their minimum: `timeout 0` would mean no limit at all, and a negative one fails.
cap() { local want=$1 l; l=$(( $(left) - 10 )); [ "$want" -lt "$l" ] && l=$want; [ "$l" -gt 0 ] && echo "$l" || echo 0; }
# pytest-timeout is in the device image; a CPU rehearsal without it runs without per-test limits
PYTEST_TO=$(python3 -c "import pytest_timeout" 2>/dev/null && echo "--timeout=45" || true)

stage setup
# the package without its dependencies (the image has them); editable, so package data (the pair) is found
if [ "${SKIP_INSTALL:-0}" != 1 ]; then
  python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . 2>&1 | tail -2 \
    || export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
{ nvidia-smi; python3 -c "import torch, onnx, onnxruntime as o; print('torch', torch.__version__, 'cuda', torch.version.cuda,
  torch.cuda.get_device_name(0)); print('onnx', onnx.__version__, 'onnxruntime', o.__version__, o.get_available_providers())";
  git rev-parse HEAD 2>/dev/null || true; } 2>&1  # into session.log

for s in $STAGES; do case $s in
train)
  stage "train (budget ${TRAIN_S} s)"
  t_train=$(date +%s)
  if [ "$TRAIN_S" -lt "${MIN_TRAIN_S:-60}" ]; then echo "TRAIN_S=$TRAIN_S is under ${MIN_TRAIN_S:-60} s: training skipped"; continue; fi
  if [ ! -d "$DATA_A" ] || [ ! -d "$DATA_B" ]; then echo "no training data at $DATA_A / $DATA_B: skipped"; continue; fi
  rm -rf "$WORK/runs" "$WORK/pair_fp16" && mkdir -p "$WORK/pair_fp16"
  # ~15 s probe: eager FP32 (the official way) vs bf16 vs bf16 + channels_last for this very run's networks and
  # batch (H200, 2026-12-04, 9 blocks ngf 32 batch 4 at 256²: FP32 16.7 it/s, bf16 14.9, bf16 + channels_last 13.4
  # -- at this size a step is bound by the CPU's kernel launches, not the tensor cores), and with TRAIN_S >=
  # PROBE_COMPILE_MIN_S (400) bf16 + torch.compile too, whose compilation counts against it: the setting that
  # trains the most steps in what is left of the stage trains (cgan.benchmarks.train_speed.fastest_settings).
  layout="--precision fp32"  # without a probe: the fastest measured on the H200 (2026-12-04)
  compile_row=0; [ "$TRAIN_S" -ge "${PROBE_COMPILE_MIN_S:-400}" ] && compile_row=1
  if [ "$TRAIN_S" -lt "${PROBE_MIN_S:-120}" ]; then echo "TRAIN_S=$TRAIN_S is under ${PROBE_MIN_S:-120} s: no probe"
  elif probed=$(STAGE_END=$((t_train + TRAIN_S)) COMPILE_ROW=$compile_row timeout $((compile_row ? 240 : 90)) \
      python3 - "$WORK/pair_fp16/train-speed.json" <<'EOF'
import os, sys, time
from cgan._files import write_json_atomic
from cgan.benchmarks.train_speed import fastest_settings, run_train_bench, settings_flags
e = os.environ.get
rows = [("official-eager-fp32", "fp32", False, False), ("bf16", "bf16", False, False),
        ("bf16+channels_last", "bf16", True, False)]
if e("COMPILE_ROW") == "1":
    rows.append(("bf16+compile", "bf16", False, True))
r = run_train_bench(size=int(e("PROBE_SIZE", "256")), ngf=int(e("PROBE_NGF", "32")), blocks=int(e("PROBE_BLOCKS", "9")),
                    batch=int(e("PROBE_BATCH", "4")), device=e("BENCH_DEVICE", "cuda"), steps=int(e("PROBE_STEPS", "10")),
                    warmup=int(e("PROBE_WARMUP", "4" if e("COMPILE_ROW") == "1" else "3")), rows=rows)
write_json_atomic(sys.argv[1], r)
for row in r["rows"]:
    print(f"  {row['name']:<22} " + (f"error: {row['error']}" if "error" in row else
          f"{row['it_per_s']:8.2f} it/s  x{row['speedup_vs_baseline']}  warm-up {row['warmup_s']:.1f} s"),
          file=sys.stderr)
left = int(e("STAGE_END")) - time.time() - 30  # the training's start and its export
best, steps = fastest_settings(r["rows"], left)
print(f"  ~{steps:.0f} steps in the ~{left:.0f} s left with the fastest", file=sys.stderr)
print(settings_flags(best))
EOF
); then layout=$probed; else echo "the probe failed (exit $?): FP32, NCHW"; fi
  echo "training settings: $layout"
  budget=$(cap $(( TRAIN_S - ($(date +%s) - t_train) )))  # what the probe left of the stage (>= 0)
  if [ "$budget" -lt 10 ]; then echo "only $budget s left for training: skipped"; continue; fi
  # 9 blocks, ngf 32 (both generators stored FP16 ≈ 11.4 MB: the embedded-pair size limit), the probed precision
  # and layout, batch 4 with the learning rate scaled by sqrt(4) (2e-4 → 4e-4), the paper's 1:1
  # constant:decay schedule fitted into the budget (--time-budget; the margin covers start-up and export)
  # (SIGTERM first: the trainer finishes its step and saves; SIGKILL 20 s later if that shutdown hangs)
  timeout -k 20 --foreground $((budget + 30)) python3 -m cgan.trainer.cli --data-a "$DATA_A" --data-b "$DATA_B" \
    --domains summer,winter --out "$WORK/runs" --name s2w --ngf 32 --blocks 9 $layout \
    --batch-size 4 --lr 4e-4 --workers 12 --time-budget "$(( budget > 60 ? budget - 15 : budget * 3 / 4 ))" \
    --save-every-steps 1000 ${INIT_FROM:+--init-from "$INIT_FROM"} \
    --log-every 100 --no-tensorboard -q ${TRAIN_EXTRA:-}
  echo "cgan-train exit $?"
  python3 -m cgan.trainer.cli export-pair "$WORK/runs/s2w" --out "$WORK/pair_fp16" --dtype float16 \
    && cp "$WORK/runs/s2w/log.csv" "$WORK/runs/s2w/config.json" "$WORK/pair_fp16/" \
    && (cd "$WORK/runs/s2w/samples" && ls | tail -3 | xargs -I{} cp {} "$WORK/pair_fp16/") \
    && tar -cf "$OUT/pair.tar" -C "$WORK" pair_fp16 && ls -la "$WORK/pair_fp16" && tail -3 "$WORK/runs/s2w/log.csv"
  ;;
bench)
  stage "bench (budget ${BENCH_S} s)"
  budget=$(cap "$BENCH_S")
  if [ "$budget" -lt 60 ]; then echo "only $budget s left for the bench: skipped"; continue; fi
  # the eager FP32 baseline (the official way, always added) + the torch ladder: eager → CUDA graph →
  # channels_last + graph (checks the NCHW-in-eager choice) → torch.compile (default mode: max-autotune's
  # ~1 min per size does not fit a lease) → compile + graph; then both with the transposed convolutions as
  # sub-pixel convolutions (+subpixel: the profile's next target); a 720p clip end to end on compile + graph.
  # --budget stops starting rows in time; --json is rewritten after every row, so nothing finished is lost.
  LADDER=torch-cuda,torch-cuda+graph,torch-cuda+cl+graph,torch-cuda+fastcompile,torch-cuda+fastcompile+graph
  LADDER=$LADDER,torch-cuda+graph+subpixel,torch-cuda+fastcompile+graph+subpixel
  timeout -k 10 "$budget" python3 -m cgan.benchmarks.cli --device "${BENCH_DEVICE:-cuda}" --budget "$((budget - 45))" \
    --backends "${BENCH_BACKENDS:-$LADDER}" \
    --sizes "${BENCH_SIZES:-256x256,720p,1080p}" --precision "${BENCH_PRECISION:-fp16}" --batch 1 --warmup 3 --iters 30 \
    --e2e --e2e-backend "${E2E_BACKEND:-torch-cuda+fastcompile+graph}" --e2e-size "${E2E_SIZE:-720p}" --e2e-frames 48 ${BENCH_EXTRA:-} \
    --note "H200 lease, scripts/gpu_session.sh" \
    --json "$OUT/bench-gpu.json" --history "$OUT/history.jsonl" --plot "$OUT/bench-gpu.png"
  echo "cgan-bench exit $?"
  ;;
profile)
  stage "profile (budget ${PROFILE_S} s)"
  # where the time goes at 720p (issue 6): eager FP16, then compiled (torch.compile's caches are warm from the
  # bench's +fastcompile rows); no CUDA graph (it hides the kernels)
  t0=$(date +%s)
  c=$(cap "$PROFILE_S")
  if [ "$c" -lt 5 ]; then echo "only $c s left for the profile: skipped"; continue; fi
  timeout -k 10 "$c" python3 -m cgan.benchmarks.cli profile --device "${BENCH_DEVICE:-cuda}" \
    --size "${PROFILE_SIZE:-720p}" ${PROFILE_EXTRA:-} --json "$OUT/profile-eager.json"
  c=$(cap $(( PROFILE_S - ($(date +%s) - t0) )))
  [ "$c" -gt 10 ] && timeout -k 10 "$c" python3 -m cgan.benchmarks.cli profile \
    --device "${BENCH_DEVICE:-cuda}" --size "${PROFILE_SIZE:-720p}" --compile --compile-mode default \
    ${PROFILE_EXTRA:-} --json "$OUT/profile-compiled.json"
  ;;
tests)
  stage "GPU tests"
  # the parity of the embedded pair first (what this lease must show), then the other GPU tests; -v names each
  # test as it ends, so a stage cut off by its time limit still says which passed (2026-12-04: "FF" and no names)
  t0=$(date +%s)
  c=$(cap "$TESTS_S")
  if [ "$c" -lt 15 ]; then echo "only $c s left for the GPU tests: skipped"; continue; fi
  timeout -k 10 "$c" python3 -m pytest -v -rs -m gpu tests/test_gpu_parity.py -p no:cacheprovider $PYTEST_TO \
    2>&1 | tee "$OUT/gpu-tests.log"
  c=$(cap $(( TESTS_S - ($(date +%s) - t0) )))
  [ "$c" -gt 15 ] && timeout -k 10 "$c" python3 -m pytest -v -s -rs -m gpu tests/ -p no:cacheprovider $PYTEST_TO \
    --ignore=tests/test_gpu_parity.py --durations=5 2>&1 | tee -a "$OUT/gpu-tests.log"
  ;;
photos)
  stage "photos (budget ${PHOTOS_S} s)"
  # cgan-video's photo mode (the official test.py job) on the GPU: read -> translate -> write overlap; how close
  # it runs to the translation stage is the figure to take home. The summary (JSON) stays in session.log.
  c=$(cap "$PHOTOS_S")
  if [ "$c" -lt 10 ]; then echo "only $c s left for photos: skipped"; continue; fi
  if [ ! -d "$DATA_A" ]; then echo "no photos at $DATA_A: skipped"; continue; fi
  rm -rf "$WORK/photos_out"
  timeout -k 10 "$c" python3 -m cgan.runtime.cli --input "$DATA_A" --output "$WORK/photos_out" \
    --max-frames "${PHOTOS_N:-300}" --backend "${PHOTOS_BACKEND:-torch}" --no-progress --json
  echo "cgan-video photos exit $?"
  ;;
*) echo "unknown stage $s (use train, bench, profile, tests, photos)";;
esac; done
stage done
ls -la "$OUT"
sleep 1  # let tee finish session.log
