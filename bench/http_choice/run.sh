#!/usr/bin/env bash
# Why jobq uses libmicrohttpd: the same 50-byte JSON reply from libmicrohttpd
# and from libevent's evhttp, one thread and two, measured with wrk on
# loopback (wrk -t2 -c50 -d${SECS:-5}s, keep-alive). Bounded: each run stops
# by itself. Usage: bench/http_choice/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
flags="-std=c17 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror"
cc $flags -o "$out/mhd" "$here/mhd_hello.c" $(pkg-config --cflags --libs libmicrohttpd)
cc $flags -o "$out/evhttp" "$here/evhttp_hello.c" $(pkg-config --cflags --libs libevent) -lpthread
port=7811
for server in mhd evhttp; do
  for threads in 1 2; do
    "$out/$server" $port $threads & pid=$!
    sleep 0.3
    rps=$(wrk -t2 -c50 -d"${SECS:-5}"s "http://127.0.0.1:$port/" | awk '/Requests\/sec/ {print $2}')
    echo "$server threads=$threads requests_per_s=$rps"
    kill $pid; wait $pid 2>/dev/null || true
    port=$((port + 1))
  done
done
