# Sourced by the shell benchmarks (needs $here, the project root, and $tmp,
# a scratch folder). start_jobq [FLAG ...] starts build/jobq on a free
# loopback port with an empty data folder $tmp/data and its log in $tmp/log,
# sets $pid and $url and returns once it accepts connections; JOBQ_*
# variables given before the call reach it. stop_jobq stops it.
start_jobq() {
  local port
  port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -rf "$tmp/data"
  "$here/build/jobq" serve --listen "127.0.0.1:$port" --data-dir "$tmp/data" "$@" \
    2>"$tmp/log" >/dev/null &
  pid=$!
  url="http://127.0.0.1:$port"
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "jobq did not start:" >&2; cat "$tmp/log" >&2; return 1
}

stop_jobq() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=
}
