#!/usr/bin/python3
"""What a cluster node's beats cost the writes beside them (issue 13): one
jobq in cluster mode on a new database of one throwaway PostgreSQL
(tests/integration/pg.py, with pg_stat_statements), JOBQ_NODE_TTL 3s (a
beat a second, in the same transaction as the writes queued with it),
one enqueue at a time every 20 ms for SECONDS over HTTP, `fsync`. Reported:
the enqueues' latency (median, p99, max) and the statements of the beats
(pg_stat_statements: calls and mean time) whose mean exceeds 1 ms.

With --ab OTHER_JOBQ, the same for another jobq binary, alternating,
ROUNDS each.

Usage: bench/pg_beat.py [--ab OTHER_JOBQ] [SECONDS] [ROUNDS]   (defaults 20, 2)
Needs build/jobq and postgresql. Each server is stopped by its own pid;
the PostgreSQL cluster is stopped at the end."""
import json
import os
import statistics
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import jobq_server  # noqa: E402
from pg import Postgres  # noqa: E402


def enqueue(url, i):
    req = urllib.request.Request(url + "/v1/jobs", method="POST",
                                 data=json.dumps({"type": "t", "args": {"i": i}}).encode(),
                                 headers={"Content-Type": "application/json"})
    t0 = time.monotonic()
    with urllib.request.urlopen(req, timeout=60) as r:
        r.read()
    return (time.monotonic() - t0) * 1e3


def run(pgc, binary, seconds):
    url = pgc.new_database()
    db = url.rsplit("/", 1)[1]
    pgc.psql("SELECT pg_stat_statements_reset()")
    jobq_server.BIN = binary
    srv = jobq_server.Jobq({"JOBQ_DATABASE_URL": url, "JOBQ_DURABILITY": "fsync",
                            "JOBQ_CLUSTER": "true", "JOBQ_NODE_TTL": "3s"})
    lat = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            lat.append(enqueue(srv.url, len(lat)))
            time.sleep(0.02)
    finally:
        srv.stop()
    slow = pgc.psql("SELECT calls, round((mean_exec_time)::numeric, 2), left(query, 70)"
                    " FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
                    f" WHERE d.datname = '{db}' AND mean_exec_time > 1"
                    " ORDER BY total_exec_time DESC LIMIT 5")
    lat.sort()
    return {"p50": statistics.median(lat), "p99": lat[int(len(lat) * 0.99)], "max": lat[-1],
            "n": len(lat), "slow": slow}


def main():
    builds, args = jobq_server.builds(sys.argv[1:])
    seconds = float(args[0]) if args else 20
    rounds = int(args[1]) if len(args) > 1 else 2
    pgc = Postgres("-c shared_preload_libraries=pg_stat_statements")
    try:
        pgc.psql("CREATE EXTENSION pg_stat_statements")
        print(f"one cluster node, TTL 3 s, an enqueue every 20 ms for {seconds:g} s, fsync\n")
        print("| jobq | round | enqueues | p50 ms | p99 ms | max ms |")
        print("| --- | --- | --- | --- | --- | --- |")
        slow = {}
        for r in range(rounds):
            for name, binary in builds:
                res = run(pgc, binary, seconds)
                slow[name] = res["slow"]
                print(f"| {name} | {r + 1} | {res['n']} | {res['p50']:.2f} | {res['p99']:.2f}"
                      f" | {res['max']:.2f} |", flush=True)
        for name, rows in slow.items():
            print(f"\n{name}, last round, statements over 1 ms on average:"
                  " calls | mean ms | statement")
            for row in rows or [["(none)"]]:
                print(" | ".join(row))
    finally:
        pgc.stop()


if __name__ == "__main__":
    main()
