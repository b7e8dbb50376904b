#!/bin/sh
# Launch day, T-4h (runbook "Run Complete Wipe and Reset"): everything is `daon wipe-and-reset` (ops.md §6).
# Asks, in the runbook's order: WIPE-PRODUCTION, the current chain ID, the new chain (1 = daon-mainnet-1).
# Flags pass through: --yes-wipe-production --confirm-chain ID --new-chain mainnet|test|ID --allow-mainnet-wipe --dry-run --with-backup --json.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -f "$root/bin/daon.mjs" ]; then
  exec node -- "$root/bin/daon.mjs" --env-file "${DAON_ENV_FILE:-$PWD/.env}" wipe-and-reset "$@"
fi
exec daon wipe-and-reset "$@"
