#!/bin/bash
# Instructions SQLite spends per new job row with 1, 8 and 32 rows to an
# INSERT (bench/sqlite_rows.c): callgrind totals of 10,240 rows minus those
# of none, per row. Repeatable to the instruction. Needs gcc,
# libsqlite3-dev and valgrind.
set -eu
cd "$(dirname "$0")/.."
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
gcc -O2 -std=c17 -Wall -Wextra -Werror -Isrc bench/sqlite_rows.c src/store/sqlite_schema.c -o "$d/rows" -lsqlite3
count() { valgrind --tool=callgrind --callgrind-out-file="$d/cg" "$d/rows" "$1" "$2" "$d/t.db" 2>&1 |
          sed -n 's/.*Collected : \([0-9]*\).*/\1/p'; }
for k in 1 8 32; do
  a=$(count 0 "$k"); b=$(count 10240 "$k")
  echo "$k rows a statement: $(( (b - a) / 10240 )) instructions per row"
done
