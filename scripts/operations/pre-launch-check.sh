#!/bin/sh
# Pre-launch check (runbook T-7, T-3, T-1, T-2h): everything is `daon preflight` (ops.md §3).
# Flags pass through: --strict --quick --smoke --only IDS --skip IDS --expect-chain ID --public-host HOST --json.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -f "$root/bin/daon.mjs" ]; then
  exec node -- "$root/bin/daon.mjs" --env-file "${DAON_ENV_FILE:-$PWD/.env}" preflight "$@"
fi
exec daon preflight "$@"
