#!/bin/sh
# T-5 load test (runbook): run-load-test.sh [URL USERS DURATION] [daon loadtest flags…]
# Defaults as ops.md §0: http://localhost:3000, 1500 users, 20m. Everything else is `daon loadtest`.
set -eu
url=${1:-http://localhost:3000}
users=${2:-1500}
duration=${3:-20m}
if [ "$#" -ge 3 ]; then shift 3; else set --; fi
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ -f "$root/bin/daon.mjs" ]; then
  exec node -- "$root/bin/daon.mjs" loadtest "$url" "$users" "$duration" "$@"
fi
exec daon loadtest "$url" "$users" "$duration" "$@"
