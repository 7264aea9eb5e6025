#!/usr/bin/python3
"""What a job's payload costs PostgreSQL's WAL over the job's life (issue
13, "payloads written once"): for args of several sizes, on one jobq alone
and one cluster node, each on a new database of one throwaway PostgreSQL
(tests/integration/pg.py): JOBS jobs enqueued, each leased, given
HEARTBEATS heartbeats and completed, one at a time over HTTP. Reported per
job: WAL bytes of the whole life, WAL bytes a heartbeat, and the bytes the
tables (`jobs`, `history`, `payloads`, with their TOAST) hold at the end;
and of all the updates of `jobs`, how many were HOT (no index touched:
every heartbeat should be). Args are random base64 text, which compresses
little, as real payloads often do.

With --ab OTHER_JOBQ, the same for another jobq binary (built from another
commit), alternating build by build; WAL bytes repeat closely run to run
(they count what was written, not how fast), so one round is enough.

Usage: bench/pg_payload.py [--ab OTHER_JOBQ] [JOBS] [HEARTBEATS]
       (defaults 20, 10)
Needs build/jobq and postgresql. Each server is stopped by its own pid;
the PostgreSQL cluster is stopped at the end."""
import base64
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import jobq_server  # noqa: E402
from jobq_server import call  # noqa: E402
from pg import Postgres  # noqa: E402

SIZES = [100, 2 * 1024, 64 * 1024, 512 * 1024]
SETUPS = {"alone": {}, "1 node": {"JOBQ_CLUSTER": "true", "JOBQ_CLAIM_POLL": "100ms"}}


def wal(pgc, db):
    return int(pgc.psql("SELECT pg_current_wal_lsn() - '0/0'", db=db)[0][0])


def table_bytes(pgc, db):
    return int(pgc.psql("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                        " WHERE c.relkind = 'r' AND (c.relname IN ('jobs', 'payloads')"
                        " OR c.relname LIKE 'history%')", db=db)[0][0])


def run(pgc, binary, setup, size, jobs, beats):
    """One database, one server: (WAL a job, WAL a heartbeat, table bytes a job)."""
    url = pgc.new_database()
    db = url.rsplit("/", 1)[1]
    jobq_server.BIN = binary
    srv = jobq_server.Jobq({"JOBQ_DATABASE_URL": url, "JOBQ_DURABILITY": "fsync",
                            **SETUPS[setup]})
    try:
        blob = base64.b64encode(os.urandom(size * 3 // 4)).decode()
        t0, beat_wal = wal(pgc, db), 0
        for i in range(jobs):
            call(srv.url, "/v1/jobs", {"id": f"j{i}", "type": "t", "args": {"b": blob}})
            got = call(srv.url, "/v1/lease", {"worker": "w", "max": 1})["jobs"]
            assert got and got[0]["args"]["b"] == blob, "the args did not come back whole"
            lease = got[0]["lease_id"]
            b0 = wal(pgc, db)
            for k in range(beats):
                call(srv.url, f"/v1/jobs/j{i}/heartbeat", {"lease_id": lease,
                                                           "progress": {"k": k}})
            beat_wal += wal(pgc, db) - b0
            call(srv.url, f"/v1/jobs/j{i}/complete", {"lease_id": lease})
        total = wal(pgc, db) - t0
        size_end = table_bytes(pgc, db)
    finally:
        srv.stop()
    return total / jobs, beat_wal / (jobs * max(beats, 1)), size_end / jobs, hot_updates(pgc, db)


def hot_updates(pgc, db):
    """'HOT/all' updates of jobs: a HOT one adds no index entry (no indexed
    column changed). Read once jobq's sessions ended, which is when a
    backend's statistics are surely flushed."""
    last = None
    for _ in range(20):
        now = pgc.psql("SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables"
                       " WHERE relname = 'jobs'", db=db)[0]
        if now == last:
            break
        last = now
        time.sleep(0.25)
    return f"{last[0]}/{last[1]}"


def main():
    builds, args = jobq_server.builds(sys.argv[1:])
    jobs = int(args[0]) if args else 20
    beats = int(args[1]) if len(args) > 1 else 10
    pgc = Postgres()
    try:
        print(f"{jobs} jobs, {beats} heartbeats each, fsync; WAL and table bytes per job\n")
        print("| args | set-up | build | WAL a job | WAL a heartbeat | table bytes a job"
              " | HOT updates of jobs |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for size in SIZES:
            for setup in SETUPS:
                for name, binary in builds:
                    w, b, t, hot = run(pgc, binary, setup, size, jobs, beats)
                    print(f"| {size:,} | {setup} | {name} | {w:,.0f} | {b:,.0f} | {t:,.0f}"
                          f" | {hot} |", flush=True)
    finally:
        pgc.stop()


if __name__ == "__main__":
    main()
