#!/usr/bin/env bash
# Installs icefall-kd into a virtual environment inside the repository (.venv).
#
# Usage:
#   tools/install.sh            # idempotent; a second run takes seconds
#   FORCE=1 tools/install.sh    # reinstall the pinned packages and rebuild fast_rnnt
#   tools/install.sh --cuda     # .venv with the CUDA build of torch==2.13.0 (GPU training)
#   tools/install.sh --cpu      # back to the CPU build after --cuda
#   PYTHON=$(which python) tools/install.sh --use-existing-torch
#                               # into an environment that already has a CUDA torch
#   tools/install.sh --help
#
# What it does (default, the CPU variant):
#   1. checks for Python 3.11 to 3.14 (what the pinned wheels exist for; the CPU variant
#      is tested on 3.11, the version of this machine's CPU wheel of torch==2.13.0);
#   2. creates .venv and installs requirements.txt (exact pins: an unpinned torch
#      resolves to a multi-GB CUDA build);
#   3. builds fast_rnnt (the pruned RNN-T loss of the k2 project) from source, offline,
#      using tools/pybind11_shim instead of the pybind11 archive its CMake downloads;
#   4. installs icefall_kd itself with `pip install -e .`;
#   5. installs the apt packages of the embedded corpus (espeak-ng, bible-kjv) when
#      missing and apt can be used, or says what to run.
#
# --cuda: the same .venv with torch==2.13.0 built for CUDA, from $TORCH_INDEX_URL when set
#   (e.g. https://download.pytorch.org/whl/cu128), else from the configured index (PyPI's
#   Linux wheel of torch is the CUDA build); refused unless the installed torch reports a
#   CUDA version. The variant goes into the stamp, and later runs without an option (the
#   recipes' own call) keep it. fast_rnnt is not built (its build here is CPU-only); the
#   pruned loss runs on the GPU with the torch backend (icefall_kd/loss/rnnt_torch.py).
#   FAST_RNNT_CUDA=1 tries a build of fast_rnnt with CUDA (needs a complete CUDA toolkit).
# --use-existing-torch: no .venv; installs the pinned packages except torch into the
#   Python of $PYTHON (an activated conda or venv with its own torch, e.g. Python 3.12 and a
#   CUDA torch), with torch held at the version found there, then icefall_kd (-e, no deps).
#   Run the recipes there with ICEFALL_KD_SKIP_INSTALL=1 (they skip this script).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
python_bin=${PYTHON:-python3}
stamp="$venv/.icefall_kd_installed"

install_started=$(date +%s)
log() { echo "$(date '+%F %T') [install.sh] $*"; }
die() { echo "$(date '+%F %T') [install.sh] ERROR: $*" >&2; exit 1; }

variant=""
for arg in "$@"; do
  case "$arg" in
    --cuda) variant=cuda ;;
    --cpu) variant=cpu ;;
    --use-existing-torch) variant=existing ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$arg' (see tools/install.sh --help)" ;;
  esac
done
if [ -z "$variant" ]; then  # keep what is installed (the recipes call this without options)
  variant=cpu
  [ -f "$stamp" ] && [ "$(cut -d' ' -f2 -s "$stamp")" = cuda ] && variant=cuda
fi

# ---- 1. Python version -------------------------------------------------------------
if ! command -v "$python_bin" >/dev/null; then
  die "'$python_bin' not found. Install Python 3.11 or set PYTHON=/path/to/python3.11."
fi
py_version=$("$python_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$py_version" in
  3.11|3.12|3.13|3.14) ;;
  *) die "Python $py_version found at $(command -v "$python_bin"); the pinned packages \
(numpy==2.4.6, torch==2.13.0, ...) have wheels for Python 3.11 to 3.14. Set \
PYTHON=/path/to/python3.11 and re-run." ;;
esac
if [ "$variant" = cpu ] && [ "$py_version" != 3.11 ]; then
  echo "WARNING: the CPU variant is tested on Python 3.11 only; if the index has no CPU wheel of" >&2
  echo "         torch==2.13.0 for Python $py_version, pip installs the (larger) CUDA build." >&2
fi

# ---- 5 (first, it needs no venv). apt packages for the embedded corpus -----------------
need_apt=()
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
ldconfig -p 2>/dev/null | grep -q 'libespeak-ng\.so\.1' || need_apt+=(libespeak-ng1)
command -v bible >/dev/null || need_apt+=(bible-kjv)
[ -f /usr/lib/bible.data ] || need_apt+=(bible-kjv-text)
command -v flac >/dev/null || true  # soundfile writes FLAC itself; no flac binary needed
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing apt packages: ${need_apt[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null \
      || die "apt-get install ${need_apt[*]} failed; run it yourself and re-run this script."
  else
    echo "WARNING: the embedded corpus needs: ${need_apt[*]}" >&2
    echo "         run: sudo apt-get install -y ${need_apt[*]}" >&2
    echo "         (not needed with --corpus librispeech)" >&2
  fi
fi

# Some machines list local package folders that do not exist; pip's warnings about them
# are noise, everything else on stderr is kept.
pip_install() { "${pip[@]}" install "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
without_torch=$(mktemp); torch_pin=$(mktemp)
trap 'rm -f "$without_torch" "$torch_pin"' EXIT
grep -v '^torch==' "$repo/requirements.txt" > "$without_torch"

# ---- --use-existing-torch: another environment's torch, not replaced ---------------------
if [ "$variant" = existing ]; then
  pip=("$python_bin" -m pip --disable-pip-version-check --no-input)
  torch_version=$("$python_bin" -c 'import torch; print(torch.__version__)' 2>/dev/null) \
    || die "no torch in $(command -v "$python_bin"); install your CUDA torch there first, or \
use tools/install.sh --cuda (a new .venv)."
  log "installing into $("$python_bin" -c 'import sys; print(sys.prefix)') beside torch \
$torch_version (CUDA $("$python_bin" -c 'import torch; print(torch.version.cuda)'))"
  echo "torch==$torch_version" > "$torch_pin"
  pip_install -q -r "$without_torch" -c "$torch_pin" \
    || die "pip could not install the pinned packages beside torch $torch_version (see above)."
  pip_install -q --no-build-isolation --no-deps -e "$repo" || die "pip install -e . failed."
  "$python_bin" -c 'import torch, lhotse, icefall_kd' || die "icefall_kd does not import."
  [ "$("$python_bin" -c 'import torch; print(torch.__version__)')" = "$torch_version" ] \
    || die "torch changed during the install; this should not happen (a pin above needs another torch)."
  log "done. Run the recipes in this environment with ICEFALL_KD_SKIP_INSTALL=1; the pruned \
loss uses fast_rnnt only if you build it yourself, else the torch backend."
  exit 0
fi

# ---- fast path -------------------------------------------------------------------------
req_hash=$(cat "$repo/requirements.txt" "$repo/setup.py" "$repo/tools/pybind11_shim/CMakeLists.txt" \
  | sha256sum | cut -c1-16)
# The stamp: the hash, then " cuda" for the CUDA variant (the CPU one writes the hash alone).
stamp_text=$req_hash$([ "$variant" = cuda ] && echo " cuda" || true)
imports='import torch, lhotse, fast_rnnt, icefall_kd'
[ "$variant" = cuda ] && imports='import torch, lhotse, icefall_kd; assert torch.version.cuda'
if [ -z "${FORCE:-}" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ] \
   && "$venv/bin/python" -c "$imports" 2>/dev/null; then
  log "already installed in $venv (FORCE=1 to reinstall)"
  exit 0
fi

# ---- 2. venv and pinned packages -------------------------------------------------------
fresh_venv=""
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  "$python_bin" -m venv "$venv"
  fresh_venv=1
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
torch_has_cuda() { "$venv/bin/python" -c 'import torch, sys; sys.exit(not torch.version.cuda)' 2>/dev/null; }
if [ "$variant" = cuda ]; then
  if [ -n "${FORCE:-}" ] || ! torch_has_cuda; then
    log "installing torch==2.13.0 built for CUDA${TORCH_INDEX_URL:+ from $TORCH_INDEX_URL}"
    # --force-reinstall: a CPU build (2.13.0+cpu) satisfies "torch==2.13.0" as well.
    pip_install -q --force-reinstall --no-deps ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
      torch==2.13.0 || die "pip could not install torch==2.13.0 (see above)."
  fi
  installed=$("$venv/bin/python" -m pip show torch 2>/dev/null | sed -n 's/^Version: //p')
  # Its own dependencies (triton, nvidia-*, ...), from the same index.
  pip_install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==$installed" \
    || die "pip could not install the dependencies of torch $installed (see above)."
  torch_has_cuda || die "torch $installed has no CUDA: this index serves the CPU build. Set \
TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 (your CUDA version) and re-run \
tools/install.sh --cuda."
  echo "torch==$("$venv/bin/python" -c 'import torch; print(torch.__version__)')" > "$torch_pin"
  log "installing the other pinned packages from requirements.txt"
  pip_install -q -r "$without_torch" -c "$torch_pin" \
    || die "pip could not install requirements.txt (see the message above)."
else
  if torch_has_cuda; then  # --cpu after --cuda
    pip_install -q --force-reinstall --no-deps torch==2.13.0 || die "pip could not reinstall torch"
  fi
  log "installing pinned packages from requirements.txt"
  pip_install -q -r "$repo/requirements.txt" \
    || die "pip could not install requirements.txt (see the message above). Only PyPI is needed."
fi

# ---- 3. fast_rnnt ----------------------------------------------------------------------
ft_cuda=OFF
if [ "$variant" = cuda ]; then
  if [ -n "${FAST_RNNT_CUDA:-}" ] && command -v nvcc >/dev/null; then
    ft_cuda=ON
  else
    log "not building fast_rnnt (CPU-only here): the torch backend computes the pruned loss \
on GPUs (FAST_RNNT_CUDA=1 tries a CUDA build of fast_rnnt)"
  fi
fi
if { [ "$variant" = cpu ] || [ $ft_cuda = ON ]; } && { [ -n "${FORCE:-}" ] \
     || ! "$venv/bin/python" -c 'import fast_rnnt' 2>/dev/null; }; then
  log "building fast_rnnt 1.3 from source (about a minute on 2 cores)"
  pybind11_dir=$("$venv/bin/python" -m pybind11 --cmakedir)
  jobs=$(nproc 2>/dev/null || echo 2)
  # -DFT_WITH_CUDA=OFF: nvcc may be present even without a GPU; torch here is CPU-only.
  # -DCMAKE_CXX_STANDARD=17: torch 2.x headers need C++17.
  # --no-cache-dir: the built library's RUNPATH names this venv's torch/lib, so a wheel
  # cached by a build in another checkout would not import here.
  FT_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DFT_BUILD_TESTS=OFF -DFT_WITH_CUDA=$ft_cuda \
-DCMAKE_CXX_STANDARD=17 -DFETCHCONTENT_SOURCE_DIR_PYBIND11=$repo/tools/pybind11_shim \
-Dpybind11_DIR=$pybind11_dir" \
  FT_MAKE_ARGS="-j$jobs" \
  pip_install -q --no-cache-dir --no-build-isolation --force-reinstall --no-deps fast-rnnt==1.3 \
    || die "building fast_rnnt failed. It needs cmake >= 3.24 and a C++17 compiler \
(apt-get install cmake g++). The CMake log is above."
  "$venv/bin/python" -c 'import fast_rnnt' \
    || die "fast_rnnt built but does not import; re-run with FORCE=1."
fi

# ---- 4. the project itself -------------------------------------------------------------
log "installing icefall_kd (pip install -e .)"
pip_install -q --no-build-isolation --no-deps -e "$repo" \
  || die "pip install -e . failed (see above)."
"$venv/bin/python" -c 'import icefall_kd' || die "icefall_kd does not import after install."

echo "$stamp_text" > "$stamp"
if [ -n "$fresh_venv" ]; then
  # Wall time of an install from scratch, for tools/corpus_report.py.
  pip_cache=$([ -n "${PIP_NO_CACHE_DIR:-}" ] && echo off || echo on)
  printf '%d\t%s\n' $(( $(date +%s) - install_started )) "$pip_cache" > "$venv/.install-seconds"
fi
log "done. Activate with: source $venv/bin/activate"
