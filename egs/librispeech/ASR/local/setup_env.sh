#!/usr/bin/env bash
# Sourced by prepare.sh and run.sh: makes sure icefall-kd is installed (tools/install.sh is
# idempotent and takes about a second when everything is there), activates its venv, and
# defines log (time, file:line:function, message, as icefall's scripts print).
# ICEFALL_KD_SKIP_INSTALL=1 skips both, for callers already inside the environment (tests).
export PYTHONUNBUFFERED=1
if [ -z "${ICEFALL_KD_SKIP_INSTALL:-}" ]; then
  repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)
  "$repo_root/tools/install.sh" || { echo "tools/install.sh failed; see above" >&2; exit 1; }
  # shellcheck disable=SC1091
  source "$repo_root/.venv/bin/activate"
fi

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
