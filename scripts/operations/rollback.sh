#!/bin/sh
# Rollback within 1 hour of launch (runbook "Rollback Procedures"): everything is `daon rollback` (ops.md §7).
# Restores the newest pre-wipe backup; asks ROLLBACK-PRODUCTION and the current chain ID.
# Flags pass through: --from DIR --yes-rollback --confirm-chain ID --max-age 1h --force-late --dry-run --json.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -f "$root/bin/daon.mjs" ]; then
  exec node -- "$root/bin/daon.mjs" --env-file "${DAON_ENV_FILE:-$PWD/.env}" rollback "$@"
fi
exec daon rollback "$@"
