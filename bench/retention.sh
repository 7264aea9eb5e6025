#!/usr/bin/env bash
# Does the database stop growing under steady load once retention deletes
# finished jobs? Runs the full-cycle load generator (1 producer + 3
# consumers, batches of 100, so no backlog builds up) for SECONDS against jobq with
# JOBQ_RETAIN_COMPLETED=5s and again with retention off, printing the size of
# jobq.db + WAL every 5 s. Bounded: the load stops itself after SECONDS.
# Usage: bench/retention.sh [SECONDS]   (default 60)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
. "$here/bench/lib.sh"

size() { du -cb "$tmp/data"/jobq.db* 2>/dev/null | tail -1 | cut -f1; }
counts() {
  /usr/bin/python3 -c 'import json,sys,urllib.request; c=json.load(urllib.request.urlopen(sys.argv[1]+"/v1/stats",timeout=30))["counts"]; print("queued=%d completed=%d" % (c["queued"], c["completed"]))' "$1" 2>/dev/null || echo "counts=?"
}

run() {
  local retain=$1
  JOBQ_DURABILITY=os JOBQ_RETAIN_COMPLETED=$retain start_jobq --log-level warn
  echo "== JOBQ_RETAIN_COMPLETED=$retain"
  "$here/build/bench/loadgen" --url "$url" --max-seconds "$seconds" \
    --jobs 100000000 --producers 1 --consumers 3 --batch 100 > "$tmp/load" &
  local load=$!
  for t in $(seq 5 5 "$seconds"); do
    sleep 5
    echo "t=${t}s db+wal=$(( $(size) / 1024 )) KiB (wal $(( $(stat -c %s "$tmp/data/jobq.db-wal" 2>/dev/null || echo 0) / 1024 )) KiB) $(counts "$url")"
  done
  wait $load || true
  grep full_cycle "$tmp/load" || true
  stop_jobq
}

run 5s
run 0
