#!/usr/bin/env bash
# The GPU checks of the torch backend and the trainer, in one run of a few minutes on a CUDA
# machine (not run yet: no GPU was available where this was written).
#
# Usage (from the repository root, after tools/install.sh --cuda, or with PYTHON set to the
# interpreter of an environment made with tools/install.sh --use-existing-torch):
#   benchmarks/gpu_check.sh [--output-dir benchmarks/results] [--skip-recipe]
#   (--skip-recipe: no step 2; step 3 then needs the tiny data of an earlier step 2)
#
# What it does, each step's output in <output-dir>/gpu_check.md with the GPU named:
#   1. tests/test_rnnt_torch_backend.py with CUDA: the torch backend on the GPU against
#      fast_rnnt on the CPU (built here, CPU only, if missing and possible) and against
#      itself on the CPU; same tolerances as on the CPU;
#   2. ICEFALL_KD_RNNT_BACKEND=torch ./run.sh --profile tiny --stop-stage 3 on CUDA (data,
#      teacher and streaming baseline training, decoding), checking that training ran on
#      cuda with the torch backend;
#   3. benchmarks/bench_training_gpu.py for the small and paper presets (seconds of audio
#      per second, peak GPU memory, share of the step in the loss) -> training_gpu.md.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
out_dir=benchmarks/results
skip_recipe=""
while [ $# -gt 0 ]; do
  case "$1" in
    --output-dir) out_dir=$2; shift 2 ;;
    --skip-recipe) skip_recipe=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 1 ;;
  esac
done
py=${PYTHON:-$repo/.venv/bin/python}
log() { echo "$(date '+%F %T') [gpu_check.sh] $*"; }
"$py" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())' || {
  echo "torch sees no CUDA GPU ($("$py" -c 'import torch; print(torch.__version__)')); run" \
    "tools/install.sh --cuda on a machine with one" >&2; exit 1; }
mkdir -p "$out_dir"
report="$out_dir/gpu_check.md"
gpu=$("$py" -c 'import torch; print(torch.cuda.get_device_name(0))')
{
  echo "# GPU checks ($gpu)"
  echo
  echo "\`benchmarks/gpu_check.sh\` at $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u '+%F %H:%M UTC');"
  echo "torch $("$py" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)'), $(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 | sed 's/^/driver /')."
  echo
} > "$report"
started=$(date +%s)

# ---- 1. values and gradients on CUDA ------------------------------------------------------
if ! "$py" -c 'import fast_rnnt' 2>/dev/null; then
  log "fast_rnnt missing: trying its CPU build as the reference (about a minute)"
  pybind11_dir=$("$py" -m pybind11 --cmakedir)
  FT_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DFT_BUILD_TESTS=OFF -DFT_WITH_CUDA=OFF \
-DCMAKE_CXX_STANDARD=17 -DFETCHCONTENT_SOURCE_DIR_PYBIND11=$repo/tools/pybind11_shim \
-Dpybind11_DIR=$pybind11_dir" FT_MAKE_ARGS="-j$(nproc)" \
    "$py" -m pip install -q --no-build-isolation --no-deps fast-rnnt==1.3 \
    || log "could not build fast_rnnt; only the GPU-against-CPU comparison of the torch backend runs"
fi
log "1. torch backend on CUDA against fast_rnnt (CPU) and against itself on the CPU"
test_log=$(mktemp)
"$py" -m pytest tests/test_rnnt_torch_backend.py -q -s -rs -p no:cacheprovider 2>&1 | tee "$test_log"
test_status=${PIPESTATUS[0]}
{
  echo "## 1. Torch backend on CUDA: \`pytest tests/test_rnnt_torch_backend.py -q -s -rs\`"
  echo
  echo '```'
  grep -E "^max |passed|failed|SKIPPED|Error" "$test_log" || true
  echo '```'
  echo
} >> "$report"
[ "$test_status" = 0 ] || { log "the tests failed; see $report"; exit 1; }

# ---- 2. the tiny recipe on CUDA with the torch backend --------------------------------------
if [ -z "$skip_recipe" ]; then
  log "2. ICEFALL_KD_RNNT_BACKEND=torch ./run.sh --profile tiny --stop-stage 3 (CUDA)"
  recipe=egs/librispeech/ASR
  rm -rf "$recipe"/transducer_teacher/exp "$recipe"/transducer_streaming/exp
  recipe_started=$(date +%s)
  (cd "$recipe" && PATH="$(dirname "$py"):$PATH" ICEFALL_KD_SKIP_INSTALL=1 \
     ICEFALL_KD_RNNT_BACKEND=torch ./run.sh --profile tiny --stop-stage 3) > "$out_dir/gpu_check_recipe.log" 2>&1 \
    || { log "run.sh failed; see $out_dir/gpu_check_recipe.log"; exit 1; }
  seconds=$(( $(date +%s) - recipe_started ))
  for part in transducer_teacher transducer_streaming; do
    grep -q "training on cuda" "$recipe/$part/exp/train.log" \
      || { log "$part did not train on cuda; see its train.log"; exit 1; }
  done
  {
    echo "## 2. \`ICEFALL_KD_RNNT_BACKEND=torch ./run.sh --profile tiny --stop-stage 3\` on CUDA"
    echo
    echo "Passed in $seconds s (stages 0-3, data preparation included). Training:"
    echo
    echo '```'
    grep -h "training on\|pruned RNN-T loss on\|epoch 2 done" "$recipe"/transducer_*/exp/train.log
    echo '```'
    echo
    echo "Decoding (stage 3):"
    echo
    echo '```'
    grep -h "%WER" "$out_dir/gpu_check_recipe.log" | sed 's/.*\] //' | head -12
    echo '```'
    echo
  } >> "$report"
fi

# ---- 3. training throughput ------------------------------------------------------------------
log "3. bench_training_gpu.py --presets small paper"
ICEFALL_KD_RNNT_BACKEND=torch "$py" benchmarks/bench_training_gpu.py \
  --recipe-dir egs/librispeech/ASR --lang-dir data/lang_bpe_200 --presets small paper \
  --output "$out_dir/training_gpu.md"
{
  echo "## 3. \`ICEFALL_KD_RNNT_BACKEND=torch benchmarks/bench_training_gpu.py --presets small paper\`"
  echo
  cat "$out_dir/training_gpu.md"
  echo
  echo "All checks passed in $(( $(date +%s) - started )) s."
} >> "$report"
log "done: $report"
