#!/usr/bin/env bash
# Prepare what a GPU lease needs that the device image lacks, in pieces that fit one call each.
#
#   scripts/gpu_carry.sh            # training photos (trainA, trainB) + the small pure-Python wheels
#   PYTHON=.venv/bin/python scripts/gpu_carry.sh   # a python3 with cv2 for the pixel check
#   WITH_ORT=1 scripts/gpu_carry.sh # + onnxruntime-gpu (255 MB: six calls, a second lease's job)
#   WITH_TRT_RTX=1 ...              # + TensorRT-RTX libs and bindings (96 MB: two more calls)
#   WITH_AV=1 ...                   # + PyAV (36 MB: one more call): the e2e row encodes H.264, as users get
#   NO_DATA=1 ...                   # without the photos (a lease that does not train)
#
# Uses ../shared/tools/device-carry, but with pieces small enough to travel next to this repository's own
# tracked files: a call carries at most 64 MiB in all, and device-carry's 60 MiB pieces plus our ~15 MiB tree
# would be refused. Prints the back-to-back calls and the unpack line (docs/GPU_RUNBOOK.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DC=${DEVICE_CARRY:-../shared/tools/device-carry}
DATA=${DATA:-../shared/datasets/summer2winter_yosemite}
[ -x "$DC" ] || { echo "error: $DC not found (run from the project checkout beside ../shared)" >&2; exit 2; }
if [ "${NO_DATA:-0}" != 1 ] && { [ ! -d "$DATA/trainA" ] || [ ! -d "$DATA/trainB" ]; }; then
    echo "error: $DATA has no trainA/trainB (NO_DATA=1 carries no photos)" >&2; exit 2
fi

"$DC" clean
# Lossless size cut: jpegtran -optimize -progressive -copy none re-codes the same DCT coefficients (10.6 %
# smaller for these photos, 107 → 96 MB: two calls instead of three). Every photo is then decoded both ways and
# must be pixel-identical, or the originals travel. jpegtran comes from PATH or Debian's libjpeg-turbo-progs.
src=$DATA
JT=${JPEGTRAN:-$(command -v jpegtran || true)}
if [ -z "$JT" ] && command -v apt-get >/dev/null; then
    mkdir -p .dw-cache/jt && (cd .dw-cache/jt && apt-get download -q libjpeg-turbo-progs >/dev/null 2>&1 \
        && dpkg -x libjpeg-turbo-progs_*.deb .) && JT=$PWD/.dw-cache/jt/usr/bin/jpegtran
fi
PY=${PYTHON:-python3}
if [ "${NO_DATA:-0}" = 1 ]; then
    :
elif [ -n "$JT" ] && [ -x "$JT" ] && "$PY" -c "import cv2, numpy" 2>/dev/null; then
    opt=.dw-cache/opt
    rm -rf "$opt" && mkdir -p "$opt/trainA" "$opt/trainB"
    for d in trainA trainB; do
        for f in "$DATA/$d"/*; do "$JT" -optimize -progressive -copy none "$f" > "$opt/$d/${f##*/}"; done
    done
    if "$PY" - "$DATA" "$opt" <<'EOF'
import pathlib, sys
import cv2, numpy as np
src, opt = map(pathlib.Path, sys.argv[1:3])
n = 0
for d in ("trainA", "trainB"):
    for f in sorted((src / d).iterdir()):
        a = cv2.imread(str(f), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(opt / d / f.name), cv2.IMREAD_UNCHANGED)
        if a is None or b is None or a.shape != b.shape or not np.array_equal(a, b):
            sys.exit(f"{f}: not pixel-identical after jpegtran")
        n += 1
print(f"{n} photos re-coded losslessly (pixel-identical)")
EOF
    then src=$opt; else echo "carrying the original photos"; fi
else
    echo "no jpegtran (or no python3 with cv2): carrying the original photos"
fi
[ "${NO_DATA:-0}" = 1 ] || "$DC" add "$src/trainA" "$src/trainB"
# FP16 ONNX export (onnxconverter-common, onnxslim) is needed only where ONNX Runtime CUDA or TensorRT-RTX runs
# it: a training/torch lease carries no wheels (a wheel that failed to install would stop the unpack line)
wheels=()
[ "${WITH_ORT:-0}" = 1 ] && wheels+=(onnxruntime-gpu==1.31.1)
[ "${WITH_TRT_RTX:-0}" = 1 ] && wheels+=(tensorrt-rtx-cu13-libs==1.7.1.116 tensorrt-rtx-cu13-bindings==1.7.1.116)
[ ${#wheels[@]} -gt 0 ] && wheels+=(onnxconverter-common onnxslim)
[ "${WITH_AV:-0}" = 1 ] && wheels+=(av==18.1.0)  # without it the device's runs write mp4v and copy no sound
[ ${#wheels[@]} -gt 0 ] && "$DC" wheels "${wheels[@]}"

# what travels with every call anyway: tracked files + untracked files git does not ignore
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r stat -c %s 2>/dev/null \
        | awk '{s += $1} END {print s + 0}')
limit=$((64 * 1024 * 1024))
# pieces (and calls) fill what the tree leaves, less 1 MiB: a 5 % margin made the photos' 99.5 MB three calls
# where two fit (2026-12-04 lease). Nothing may grow the tree between this and the calls (an adopted lease's
# sample grids did: move them aside until the calls are made).
chunk=$(( limit - tree - 1024 * 1024 ))
if [ "$chunk" -lt $((8 * 1024 * 1024)) ]; then
    echo "error: the working tree ($((tree / 1048576)) MiB) leaves no room to carry anything" >&2; exit 2
fi
echo "working tree $((tree / 1048576)) MiB travels with every call: pieces of $((chunk / 1048576)) MiB"
python3 - "$DC" "$chunk" <<'EOF'
import importlib.machinery, importlib.util, sys
loader = importlib.machinery.SourceFileLoader("device_carry", sys.argv[1])
spec = importlib.util.spec_from_loader("device_carry", loader)
mod = importlib.util.module_from_spec(spec)
loader.exec_module(mod)
mod.CHUNK = int(sys.argv[2])
mod.pack()
EOF
