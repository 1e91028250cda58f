#!/usr/bin/env bash
# Prepare what a GPU lease needs that the device image lacks, in pieces that fit one call each.
#
#   scripts/gpu_carry.sh            # training photos (trainA, trainB) + the small pure-Python wheels
#   WITH_ORT=1 scripts/gpu_carry.sh # + onnxruntime-gpu (255 MB: five more calls, a second lease's job)
#   WITH_TRT_RTX=1 ...              # + TensorRT-RTX libs and bindings
#
# Uses ../shared/tools/device-carry, but with pieces small enough to travel next to this repository's own
# tracked files: a call carries at most 64 MiB in all, and device-carry's 60 MiB pieces plus our ~13 MiB tree
# would be refused. Prints the back-to-back calls and the unpack line (docs/GPU_RUNBOOK.md).
set -euo pipefail
cd "$(dirname "$0")/.."
DC=${DEVICE_CARRY:-../shared/tools/device-carry}
DATA=${DATA:-../shared/datasets/summer2winter_yosemite}
[ -x "$DC" ] || { echo "error: $DC not found (run from the project checkout beside ../shared)" >&2; exit 2; }
[ -d "$DATA/trainA" ] && [ -d "$DATA/trainB" ] || { echo "error: $DATA has no trainA/trainB" >&2; exit 2; }

"$DC" clean
"$DC" add "$DATA/trainA" "$DATA/trainB"
wheels=(onnxconverter-common onnxslim)
[ "${WITH_ORT:-0}" = 1 ] && wheels+=(onnxruntime-gpu==1.31.1)
[ "${WITH_TRT_RTX:-0}" = 1 ] && wheels+=(tensorrt-rtx-cu13-libs==1.7.1.116 tensorrt-rtx-cu13-bindings==1.7.1.116)
"$DC" wheels "${wheels[@]}"

# what travels with every call anyway: tracked files + untracked files git does not ignore
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r stat -c %s 2>/dev/null \
        | awk '{s += $1} END {print s + 0}')
limit=$((64 * 1024 * 1024))
chunk=$(( (limit - tree) * 95 / 100 ))
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
