#!/usr/bin/env bash
# Starts a fresh jobq on a free loopback port with its own data folder, runs
# the load generator against it for each scenario, and stops it.
# Usage: bench/run.sh [JOBS]   (JOBQ_DURABILITY=fsync|os|memory, default fsync)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
jobs=${1:-100000}
durability=${JOBQ_DURABILITY:-fsync}
tmp=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$tmp"' EXIT

run_scenario() {
  local name=$1; shift
  rm -rf "$tmp/data"
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  JOBQ_DURABILITY=$durability "$here/build/jobq" serve \
    --listen "127.0.0.1:$port" --data-dir "$tmp/data" --log-level "${BENCH_LOG_LEVEL:-info}" \
    2>"$tmp/log" >/dev/null &
  pid=$!
  for _ in $(seq 100); do
    "$here/build/jobq" stats --server "http://127.0.0.1:$port" >/dev/null 2>&1 && break
    sleep 0.05
  done
  echo "== $name (durability=$durability)"
  "$here/build/bench/loadgen" --url "http://127.0.0.1:$port" --max-seconds 60 "$@"
  kill $pid; wait $pid 2>/dev/null || true
  grep -h "store stopped" "$tmp/log" || true
}

run_scenario "one job per request, 4 producers + 4 consumers" --jobs "$jobs" --producers 4 --consumers 4 --batch 1
run_scenario "batched 100, 2 producers + 2 consumers" --jobs $((jobs * 5)) --producers 2 --consumers 2 --batch 100
