#!/usr/bin/env bash
# Installs icefall-kd into a virtual environment inside the repository (.venv).
#
# Usage:
#   tools/install.sh            # idempotent; a second run takes seconds
#   FORCE=1 tools/install.sh    # reinstall the pinned packages and rebuild fast_rnnt
#
# What it does:
#   1. checks for Python 3.11 (the version torch==2.13.0's CPU wheel here is built for);
#   2. creates .venv and installs requirements.txt (exact pins: an unpinned torch
#      resolves to a multi-GB CUDA build);
#   3. builds fast_rnnt (the pruned RNN-T loss of the k2 project) from source, offline,
#      using tools/pybind11_shim instead of the pybind11 archive its CMake downloads;
#   4. installs icefall_kd itself with `pip install -e .`;
#   5. installs the apt packages of the embedded corpus (espeak-ng, bible-kjv) when
#      missing and apt can be used, or says what to run.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$repo/.venv"
python_bin=${PYTHON:-python3}
stamp="$venv/.icefall_kd_installed"

install_started=$(date +%s)
log() { echo "$(date '+%F %T') [install.sh] $*"; }
die() { echo "$(date '+%F %T') [install.sh] ERROR: $*" >&2; exit 1; }

# ---- 1. Python version -------------------------------------------------------------
if ! command -v "$python_bin" >/dev/null; then
  die "'$python_bin' not found. Install Python 3.11 or set PYTHON=/path/to/python3.11."
fi
py_version=$("$python_bin" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$py_version" != "3.11" ]; then
  die "Python $py_version found at $(command -v "$python_bin"); icefall-kd pins torch==2.13.0, \
whose CPU wheel needs Python 3.11. Set PYTHON=/path/to/python3.11 and re-run."
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

# ---- fast path -------------------------------------------------------------------------
req_hash=$(cat "$repo/requirements.txt" "$repo/setup.py" "$repo/tools/pybind11_shim/CMakeLists.txt" \
  | sha256sum | cut -c1-16)
if [ -z "${FORCE:-}" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$req_hash" ] \
   && "$venv/bin/python" -c 'import torch, lhotse, fast_rnnt, icefall_kd' 2>/dev/null; then
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
# Some machines list local package folders that do not exist; pip's warnings about them
# are noise, everything else on stderr is kept.
pip_install() { "${pip[@]}" install "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
log "installing pinned packages from requirements.txt"
pip_install -q -r "$repo/requirements.txt" \
  || die "pip could not install requirements.txt (see the message above). Only PyPI is needed."

# ---- 3. fast_rnnt ----------------------------------------------------------------------
if [ -n "${FORCE:-}" ] || ! "$venv/bin/python" -c 'import fast_rnnt' 2>/dev/null; then
  log "building fast_rnnt 1.3 from source (about a minute on 2 cores)"
  pybind11_dir=$("$venv/bin/python" -m pybind11 --cmakedir)
  jobs=$(nproc 2>/dev/null || echo 2)
  # -DFT_WITH_CUDA=OFF: nvcc may be present even without a GPU; torch here is CPU-only.
  # -DCMAKE_CXX_STANDARD=17: torch 2.x headers need C++17.
  FT_CMAKE_ARGS="-DCMAKE_BUILD_TYPE=Release -DFT_BUILD_TESTS=OFF -DFT_WITH_CUDA=OFF \
-DCMAKE_CXX_STANDARD=17 -DFETCHCONTENT_SOURCE_DIR_PYBIND11=$repo/tools/pybind11_shim \
-Dpybind11_DIR=$pybind11_dir" \
  FT_MAKE_ARGS="-j$jobs" \
  pip_install -q --no-build-isolation --force-reinstall --no-deps fast-rnnt==1.3 \
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

echo "$req_hash" > "$stamp"
if [ -n "$fresh_venv" ]; then
  # Wall time of an install from scratch, for tools/corpus_report.py.
  pip_cache=$([ -n "${PIP_NO_CACHE_DIR:-}" ] && echo off || echo on)
  printf '%d\t%s\n' $(( $(date +%s) - install_started )) "$pip_cache" > "$venv/.install-seconds"
fi
log "done. Activate with: source $venv/bin/activate"
