#!/bin/bash
# Instructions SQLite spends per job row as jobq's writer applies it
# (bench/sqlite_row.c), for each way of keeping the job counts: callgrind
# totals of 10,000 rows minus those of none, per row. Repeatable to the
# instruction. nostats: none, with SQLite's memory statistics off, as jobq
# runs it. Needs gcc, libsqlite3-dev and valgrind.
set -eu
cd "$(dirname "$0")/.."
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
gcc -O2 -std=c17 -Isrc bench/sqlite_row.c src/store/sqlite_schema.c -o "$d/sqlite_row" -lsqlite3
count() { valgrind --tool=callgrind --callgrind-out-file="$d/cg" "$d/sqlite_row" "$1" "$2" "$d/t.db" 2>&1 |
          sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
for mode in triggers select none nostats; do
  a=$(count 0 "$mode"); b=$(count 10000 "$mode")
  echo "$mode: $(( (b - a) / 10000 )) instructions per row"
done
