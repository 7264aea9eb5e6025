#!/usr/bin/python3
"""What a claim costs by the number of queues a lease names (issue 13):
one jobq in cluster mode on a new database of one throwaway PostgreSQL
(tests/integration/pg.py), `fsync`, 1,000 jobs queued in the last of the
queues. A worker leases from 1, 10 and 100 queues, one job at a time over
HTTP, LEASES times each (the first call prepares the claim's statement),
completing what it gets. Reported: the first lease's time and the median
and p99 of the rest.

With --ab OTHER_JOBQ, the same for another jobq binary, alternating.

Usage: bench/pg_queues.py [--ab OTHER_JOBQ] [LEASES]   (default 200)
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
from jobq_server import call  # noqa: E402
from pg import Postgres  # noqa: E402


def run(pgc, binary, nqueues, leases):
    jobq_server.BIN = binary
    srv = jobq_server.Jobq({"JOBQ_DATABASE_URL": pgc.new_database(), "JOBQ_DURABILITY": "fsync",
                            "JOBQ_CLUSTER": "true"})
    queues = [f"q{i}" for i in range(nqueues)]
    lat = []
    try:
        call(srv.url, "/v1/jobs/batch",
             {"jobs": [{"type": "t", "queue": queues[-1]} for _ in range(1000)]})
        for _ in range(leases):
            t0 = time.monotonic()
            got = call(srv.url, "/v1/lease", {"worker": "w", "queues": queues, "max": 1,
                                              "wait_ms": 0})
            lat.append((time.monotonic() - t0) * 1e3)
            for job in got["jobs"]:
                call(srv.url, f"/v1/jobs/{job['id']}/complete", {"lease_id": job["lease_id"]})
    finally:
        srv.stop()
    rest = sorted(lat[1:])
    return lat[0], statistics.median(rest), rest[int(len(rest) * 0.99)]


def main():
    builds, args = jobq_server.builds(sys.argv[1:])
    leases = int(args[0]) if args else 200
    pgc = Postgres()
    try:
        print(f"one cluster node, fsync, {leases} leases of one job each, 1,000 jobs queued\n")
        print("| queues | jobq | first ms | median ms | p99 ms |")
        print("| --- | --- | --- | --- | --- |")
        for n in (1, 10, 100):
            for name, binary in builds:
                first, mid, p99 = run(pgc, binary, n, leases)
                print(f"| {n} | {name} | {first:.1f} | {mid:.2f} | {p99:.2f} |", flush=True)
    finally:
        pgc.stop()


if __name__ == "__main__":
    main()
