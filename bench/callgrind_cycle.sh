#!/bin/bash
# Instructions the whole server process executes for a 1+1 full cycle,
# counted by callgrind (repeatable to the instruction, whatever else the
# machine does). durability os, ~100-byte args, fixed loopback ports.
# usage: bench/callgrind_cycle.sh NAME idle|fwp|fwpwork|http|http100 JOBS
#   http100: HTTP in batches of 100 (loadgen --batch 100)
#   fwpwork: FWP as workers use it: pushes paced at 200 a second, 100
#     consumers that hold each job 300 ms before the ACK (JOBS/200 seconds
#     of run, whose timers the idle run does not subtract)
#   per job = (summary of the run - summary of an idle run) / JOBS
#   JOBQ_CG_BIN=PATH counts another build (default build/jobq)
#   JOBQ_CG_ENV="K=V ..." adds settings to the server's environment
# Needs build/jobq, build/bench/fwpgen, build/bench/loadgen and valgrind.
set -u
name=$1; mode=$2; jobs=$3
d=${TMPDIR:-/tmp}/jobq-callgrind/$name; rm -rf "$d"; mkdir -p "$d"
JOBQ_ENV_FILE=/nonexistent JOBQ_DATA_DIR=$d/data JOBQ_DURABILITY=os JOBQ_LOG_LEVEL=warn JOBQ_LISTEN=127.0.0.1:18720 JOBQ_FAKTORY_LISTEN=127.0.0.1:18719 \
  env ${JOBQ_CG_ENV:-} valgrind --tool=callgrind --callgrind-out-file=$d/cg.out ${JOBQ_CG_BIN:-$(dirname "$0")/../build/jobq} serve 2>$d/vg.log &
pid=$!
for i in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/18719) 2>/dev/null && break; sleep 0.1; done
case $mode in
  fwp) $(dirname "$0")/../build/bench/fwpgen --port 18719 --producers 1 --consumers 1 --jobs $jobs --max-seconds 300 ;;
  fwpwork) $(dirname "$0")/../build/bench/fwpgen --port 18719 --producers 1 --consumers 100 --jobs $jobs --rate 200 --work-ms 300 --max-seconds 300 ;;
  http|http100) $(dirname "$0")/../build/bench/loadgen --url http://127.0.0.1:18720 --producers 1 --consumers 1 --jobs $jobs --payload 90 --max-seconds 300 --batch $([ $mode = http ] && echo 1 || echo 100) | head -2 ;;
esac
kill -TERM $pid; wait $pid
grep -E "^summary|^totals" $d/cg.out
