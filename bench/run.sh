#!/usr/bin/env bash
# Starts a fresh jobq on a free loopback port with its own data folder, runs
# the load generator against it for each scenario, and stops it.
# Usage: bench/run.sh [JOBS]   (JOBQ_DURABILITY=fsync|os|memory, default fsync)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
jobs=${1:-100000}
durability=${JOBQ_DURABILITY:-fsync}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
. "$here/bench/lib.sh"

run_scenario() {
  local name=$1; shift
  JOBQ_DURABILITY=$durability start_jobq --log-level "${BENCH_LOG_LEVEL:-info}"
  echo "== $name (durability=$durability)"
  "$here/build/bench/loadgen" --url "$url" --max-seconds 60 "$@"
  stop_jobq
  grep -h "store stopped" "$tmp/log" || true
}

run_scenario "one job per request, 4 producers + 4 consumers" --jobs "$jobs" --producers 4 --consumers 4 --batch 1
run_scenario "batched 100, 2 producers + 2 consumers" --jobs $((jobs * 5)) --producers 2 --consumers 2 --batch 100
