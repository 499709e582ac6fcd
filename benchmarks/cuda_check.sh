#!/usr/bin/env bash
# The CUDA path checked for real on a machine with an NVIDIA GPU, in one run (about 4.5 minutes on an H200):
#   1. onnxruntime-gpu from the parts benchmarks/gpu_wheel_parts.py wrote (PARTS), installed into SITE, which
#      shadows any CPU onnxruntime; the CUDA and cuDNN libraries come from the machine's nvidia-* Python packages;
#   2. the encoder by run size, TF32 off and on (benchmarks/cuda_batch_sweep.py), then pytest -m gpu
#      (tests/test_gpu.py) against the public data in SIAMESE_DATA;
#   3. the end-to-end comparison (benchmarks/cuda_e2e.py): the score command on CUDA and on the CPU cores;
#   4. `siamese-runtime bench` rows for CUDA fp32 and fp16 (batch sizes 1-4096, real and fixed lengths), a few
#      CPU rows beside them, and whether TensorRT starts.
# Everything lands in RESULTS as the JSON/Markdown the benchmarks write, packed after each step into PACK_TO.
#   PARTS=.whl SIAMESE_DATA=/path/to/data RESULTS=/tmp/cuda-results PACK_TO=results.tgz bash benchmarks/cuda_check.sh
# STEPS picks steps (default: sweep tests e2e bench tensorrt; `million`: one profiled CUDA job on a million pairs).
set -uo pipefail
cd "$(dirname "$0")/.."
PARTS=${PARTS:-.whl}
SITE=${SITE:-/tmp/onnxruntime-gpu-site}
RESULTS=${RESULTS:-$PWD/cuda-results}
PACK_TO=${PACK_TO:-$RESULTS.tgz}
PYTHON=${PYTHON:-python3}
STEPS=" ${STEPS:-sweep tests e2e bench tensorrt} "
export PYTHONUNBUFFERED=1 SIAMESE_DATA=${SIAMESE_DATA:-$PWD/../shared/data}
mkdir -p "$RESULTS"

pack() { tar -czf "$PACK_TO" -C "$(dirname "$RESULTS")" "$(basename "$RESULTS")"; }
step() { echo; echo "=== $1 ($(date -u +%T))"; }
wanted() { [[ "$STEPS" == *" $1 "* ]]; }

step "install onnxruntime-gpu into $SITE"
if [ ! -d "$SITE/onnxruntime" ]; then
    (cd "$PARTS" && sha256sum -c --ignore-missing SHA256SUMS) || exit 1
    mkdir -p "$SITE" && cat "$PARTS"/onnxruntime-gpu.tar.xz.part* | xz -d | tar -x -C "$SITE" || exit 1
fi
# onnxruntime's preload_dlls looks for nvidia/<package>/lib beside itself: link the machine's nvidia packages there
mkdir -p "$SITE/nvidia"
for folder in $("$PYTHON" -c 'import nvidia; print(" ".join(nvidia.__path__))' 2>/dev/null); do
    for package in "$folder"/*/; do ln -sfn "${package%/}" "$SITE/nvidia/$(basename "$package")"; done
done
# and on the loader's path too, for any library preload_dlls does not know by name
LD_LIBRARY_PATH=$(find -L "$SITE/nvidia" -mindepth 2 -maxdepth 2 -name lib -type d | tr '\n' ':')${LD_LIBRARY_PATH:-}
export PYTHONPATH="$SITE:$PWD" LD_LIBRARY_PATH
echo "nvidia packages: $(ls "$SITE/nvidia" | tr '\n' ' ')"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$RESULTS/gpu.csv"
"$PYTHON" - <<'EOF' 2>&1 | tee "$RESULTS/session.txt"
import onnxruntime as ort
from siamese_runtime import Scorer
print("onnxruntime", ort.__version__, ort.__file__, ort.get_available_providers())
scorer = Scorer(providers="cuda")
print("running on", scorer.providers, "precision", scorer.precision, scorer.score([("花呗怎么还款", "花呗如何还款")]))
EOF
status=$?
pack
[ "$status" = 0 ] || { echo "CUDA does not start: stopping here"; exit 1; }

if wanted sweep; then
    step "encoder on CUDA by run size, TF32 off and on"
    timeout 120 "$PYTHON" -m benchmarks.cuda_batch_sweep "$RESULTS/sweep" 2>&1 | tail -15
    pack
fi

if wanted tests; then
    step "pytest -m gpu"
    timeout 240 "$PYTHON" -m pytest -m gpu -p no:cacheprovider -rA -q tests/test_gpu.py tests/test_session.py 2>&1 \
        | tee "$RESULTS/pytest-gpu.txt"
    pack
fi

if wanted million; then
    step "one CUDA job on a million pairs, profiled"
    "$PYTHON" -c "import sys; from pathlib import Path; from benchmarks.cuda_e2e import million_pairs; \
from train.data_home import data_home; million_pairs(data_home(), 1_000_000, Path(sys.argv[1]))" /tmp/million.tsv
    timeout 120 "$PYTHON" -m siamese_runtime score /tmp/million.tsv -o /tmp/million-scores.tsv --provider cuda \
        --profile 2>&1 | tail -3 | tee "$RESULTS/million-cuda.txt"
    pack
fi

if wanted e2e; then
    step "end to end: the score command on CUDA and on the CPU"
    timeout 300 "$PYTHON" -m benchmarks.cuda_e2e "$RESULTS/e2e" --repeats 2 2>&1 | tail -20
    pack
fi

wanted bench && step "bench: CUDA fp32 and fp16, CPU beside them"
BENCH=("$PYTHON" -m siamese_runtime bench --pairs "$SIAMESE_DATA/bq/test.tsv" --warmup 2 --repeats 10 --no-plots)
wanted bench && timeout 150 "${BENCH[@]}" --providers CUDAExecutionProvider --precisions fp32 fp16 \
    --batch-sizes 1 8 32 128 512 1024 4096 --lengths 8 32 128 --out "$RESULTS/bench-cuda" 2>&1 | tail -5
wanted bench && timeout 60 "${BENCH[@]}" --providers CPUExecutionProvider --precisions fp32 \
    --batch-sizes 1 8 32 128 512 --lengths 8 32 --out "$RESULTS/bench-cpu" 2>&1 | tail -5
pack

wanted tensorrt && step "TensorRT" && "$PYTHON" - <<'EOF' 2>&1 | tee "$RESULTS/tensorrt.txt"
from siamese_runtime import Scorer, SiameseRuntimeError
try:
    scorer = Scorer(providers=["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
                    precision="fp32")
    print("TensorRT runs:", scorer.providers, scorer.score([("花呗怎么还款", "花呗如何还款")]))
except SiameseRuntimeError as error:
    print("TensorRT does not start:", error)
EOF
pack
step "done"
