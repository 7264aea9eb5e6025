#!/usr/bin/env bash
# Does one client's flood slow another's requests? Two API keys, a rate
# limit of 100/s per key; client B asks GET /v1/queues 300 times in a row,
# first alone, then while client A floods with wrk (16 connections, 10 s).
# Prints B's latencies and how A was answered. Bounded: wrk stops itself.
# Usage: bench/flood.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
. "$here/bench/lib.sh"
A=flooder-0123456789abcdef
B=patient-0123456789abcdef
JOBQ_API_KEYS="a:reader:$A,b:reader:$B" JOBQ_RATE_LIMIT=100 JOBQ_RATE_BURST=100 start_jobq --log-level warn
probe() {
  /usr/bin/python3 - "$1" "$B" <<'PY'
import statistics, sys, time, requests
url, key = sys.argv[1], sys.argv[2]
s = requests.Session()
lat, codes = [], {}
for _ in range(300):
    t0 = time.perf_counter()
    r = s.get(url + "/v1/queues", headers={"Authorization": "Bearer " + key}, timeout=10)
    lat.append((time.perf_counter() - t0) * 1e3)
    codes[r.status_code] = codes.get(r.status_code, 0) + 1
    time.sleep(0.02)  # 50/s: inside B's own limit
lat.sort()
print(f"B: p50 {lat[149]:.2f} ms  p99 {lat[296]:.2f} ms  max {lat[-1]:.2f} ms  statuses {codes}")
PY
}
echo "== B alone"
probe "$url"
echo "== B while A floods (wrk -t1 -c16 -d10s)"
wrk -t1 -c16 -d10s -H "Authorization: Bearer $A" "$url/v1/queues" > "$tmp/wrk" &
wrkpid=$!
sleep 1
probe "$url"
wait $wrkpid
grep -E "Requests/sec|Non-2xx" "$tmp/wrk" | sed 's/^/A: /'
