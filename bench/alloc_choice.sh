#!/bin/bash
# jobq's allocator, chosen by measurement (docs/architecture.md, "Why
# jemalloc"): the same release objects with glibc's malloc
# (build/bench/jobq-glibc), jemalloc (build/jobq, linked with it) and
# mimalloc (preloaded into the glibc build), compared in one run each:
# bench/ab.py full cycles 4 + 4 over FWP and HTTP (alternating, medians of
# 3), then bench/million.py at N jobs (default 1000000).
# Needs libmimalloc2.0 for the third (apt-get install libmimalloc2.0).
set -eu
cd "$(dirname "$0")/.."
n=${1:-1000000}
make -s build/jobq build/bench/jobq-glibc build/bench/fwpgen build/bench/loadgen
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
mi=$(ls /usr/lib/x86_64-linux-gnu/libmimalloc.so.2 2>/dev/null || true)
printf '#!/bin/sh\nLD_PRELOAD=%s exec %s "$@"\n' "$mi" "$PWD/build/bench/jobq-glibc" > "$d/jobq-mimalloc"
chmod +x "$d/jobq-mimalloc"
glibc=build/bench/jobq-glibc; je=build/jobq
for proto in fwp http; do
    echo "== $proto 4 + 4: glibc vs jemalloc"; /usr/bin/python3 bench/ab.py $glibc $je $proto 4 20000 | tail -2
    [ -n "$mi" ] && { echo "== $proto 4 + 4: jemalloc vs mimalloc"; /usr/bin/python3 bench/ab.py $je "$d/jobq-mimalloc" $proto 4 20000 | tail -2; }
done
for b in $glibc $je ${mi:+$d/jobq-mimalloc}; do
    echo "== million.py $n: $b"; /usr/bin/python3 bench/million.py "$n" os "$b" | tail -7
done
