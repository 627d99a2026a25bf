#!/usr/bin/env bash
# The whole recipe, stage by stage, on the embedded corpus by default.
#
# Usage:
#   ./run.sh                      # everything, embedded corpus, default profile
#   ./run.sh --profile tiny       # every stage on a few minutes of audio
#   ./run.sh --corpus librispeech --dl-dir /data
#
# Options are passed on to prepare.sh (see ./prepare.sh --help).
#
# Stages so far:
#   data  prepare.sh: corpus, manifests, fbank, BPE, validation
# Training (teacher, streaming baseline, two-stage distillation), decoding and export
# are not implemented yet; this script stops after data preparation and says so.
set -eou pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
  sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0
fi
./prepare.sh "$@"
echo
echo "run.sh: data preparation finished. Training, decoding and export stages are not"
echo "implemented yet (teacher, streaming baseline and distillation come next); nothing more to run."
