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
# Lint gate first: unused imports, undefined names and syntax errors fail the run (ruff.toml).
"$repo/.venv/bin/ruff" check --quiet . || {
  echo "tools/test.sh: ruff found the problems above; fix them (or run .venv/bin/ruff check --fix .)" >&2
  exit 1
}
exec "$repo/.venv/bin/python" -m pytest tests/ "$@"
