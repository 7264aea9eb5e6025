#!/usr/bin/python3
"""What a statistics read costs a cluster node as history grows (issue 13):
one jobq in cluster mode on a new database of one throwaway PostgreSQL
(tests/integration/pg.py), its query cache off (JOBQ_CACHE_TTL_MS=0), 100
jobs run through it (enqueued, leased, completed over HTTP) and 10 left
waiting, then ROWS more finished jobs put into `history` with one `INSERT
... SELECT` (as a day of a busy cluster's retention would hold them).
That insert passes over schema 7's triggers (the session sets
jobq.counted, as the writer's does) and history_counts is then counted
anew, as migration 7 does: a shortcut to a deep history, whose rows a
cluster would have counted one move at a time. Reported: the time of
`GET /v1/stats` (median and max of 5), with the counts it answered.

With --ab OTHER_JOBQ, the same for another jobq binary, one after the
other.

Usage: bench/pg_stats.py [--ab OTHER_JOBQ] [ROWS]   (default 500000)
Needs build/jobq and postgresql. Each server is stopped by its own pid;
the PostgreSQL cluster is stopped at the end."""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import jobq_server  # noqa: E402
from pg import Postgres  # noqa: E402


def call(url, path, body=None):
    return jobq_server.call(url, path, body, timeout=300)  # a batch into a deep history


def run(pgc, binary, rows):
    url = pgc.new_database()
    db = url.rsplit("/", 1)[1]
    jobq_server.BIN = binary
    srv = jobq_server.Jobq({"JOBQ_DATABASE_URL": url, "JOBQ_CLUSTER": "true",
                            "JOBQ_CACHE_TTL_MS": "0", "JOBQ_CLAIM_POLL": "100ms"})
    try:
        call(srv.url, "/v1/jobs/batch", {"jobs": [{"type": "t", "args": {"i": i}}
                                                 for i in range(110)]})
        done = 0
        while done < 100:
            got = call(srv.url, "/v1/lease", {"worker": "w", "max": 100 - done,
                                              "wait_ms": 2000})["jobs"]
            for j in got:
                call(srv.url, f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
            done += len(got)
        pgc.psql("SET jobq.counted = on; INSERT INTO history SELECT h.id || '-' || g, queue,"
                 " type, state, priority, created_at, updated_at, run_at, doc, bkey, token,"
                 " origin, failed FROM (SELECT * FROM history LIMIT 1) h,"
                 " generate_series(1, %d) g;"
                 " DO $$ BEGIN IF to_regclass('history_counts') IS NOT NULL THEN"
                 " DELETE FROM history_counts; INSERT INTO history_counts SELECT tableoid,"
                 " queue, state, 0, count(*) FROM history GROUP BY 1, 2, 3; END IF; END $$"
                 % rows, db=db)
        pgc.psql("VACUUM ANALYZE history", db=db)
        times, counts = [], None
        for _ in range(5):
            t0 = time.monotonic()
            counts = call(srv.url, "/v1/stats")["counts"]
            times.append((time.monotonic() - t0) * 1e3)
    finally:
        srv.stop()
    return statistics.median(times), max(times), counts


def main():
    builds, args = jobq_server.builds(sys.argv[1:])
    rows = int(args[0]) if args else 500000
    pgc = Postgres()
    try:
        print(f"one cluster node, 100 jobs run and 10 waiting, then {rows:,} finished rows"
              " put into history\n")
        print("| jobq | /v1/stats p50 ms | max ms | completed | queued |")
        print("| --- | --- | --- | --- | --- |")
        for name, binary in builds:
            p50, top, c = run(pgc, binary, rows)
            print(f"| {name} | {p50:.1f} | {top:.1f} | {c['completed']:,}"
                  f" | {c['queued']:,} |", flush=True)
    finally:
        pgc.stop()


if __name__ == "__main__":
    main()
