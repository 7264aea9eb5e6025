#!/bin/bash
# Instructions per parse of a Faktory PUSH argument, per library (parse.c, jsonc.c).
# Needs valgrind and libyajl-dev, libjson-c-dev, libcjson-dev (not build
# dependencies of jobq: this is how the choice was made).
set -eu
d=$(mktemp -d); trap 'rm -rf "$d"' EXIT
src=$(dirname "$0")/../../src
cc -O2 -I"$src" -o "$d/parse" "$(dirname "$0")/parse.c" "$(dirname "$0")/jsonc.c" \
   "$src/util/jsonb_parse.c" -ljansson -lyajl -ljson-c -lcjson
ir() { valgrind --tool=callgrind --callgrind-out-file="$d/cg" "$d/parse" "$1" "$2" 2>&1 |
       sed -n 's/.*Collected : //p'; }
for lib in jansson yajl-tree yajl-sax json-c cjson jobq; do
    base=$(ir "$lib" 0); many=$(ir "$lib" 10000)
    echo "$lib: $(( (many - base) / 10000 )) instructions per parse"
done
