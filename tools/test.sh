#!/usr/bin/env bash
# Runs the test suite (installing everything first; tools/install.sh is idempotent).
#
# Usage:
#   tools/test.sh                 # the default run (about a minute or two on 2 cores)
#   tools/test.sh -k bad_input    # extra arguments go to pytest
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$repo/tools/install.sh"
cd "$repo"
exec "$repo/.venv/bin/python" -m pytest tests/ "$@"
