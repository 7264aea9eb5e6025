#!/usr/bin/python3
"""jobq on PostgreSQL, one node: the peers.py scenarios (full cycle 4 + 4
and 1 + 1, enqueue with 32 connections, batches of 100) over HTTP and FWP
in `fsync` durability, each run on a new database of a throwaway cluster
started here (tests/integration/pg.py: Debian's PostgreSQL, a temporary
folder, a free loopback port), three rounds, medians of 3. With a second
binary, the two alternate run by run (as bench/ab.py). Beside them, the
issue's yardstick where it applies: a plain SKIP LOCKED queue with one
transaction per operation (bench/pgqueue.c), same clients and jobs.

Usage: bench/postgres.py [JOBS] [BINARY_B]     (default 20000)
Needs build/jobq, build/bench/{loadgen,fwpgen,pgqueue} and postgresql installed
(make test installs it). Every run is bounded by --max-seconds and its
server stopped by its own pid; the cluster is stopped at the end."""
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import jobq_server  # noqa: E402
import peers  # noqa: E402
from pg import Postgres  # noqa: E402

# (title, peers.py system, producers, consumers, batch)
SCENARIOS = [
    ("HTTP cycle 4 + 4", "jobq HTTP fsync", 4, 4, 1),
    ("HTTP cycle 1 + 1", "jobq HTTP fsync", 1, 1, 1),
    ("FWP cycle 4 + 4", "jobq FWP fsync", 4, 4, 1),
    ("HTTP enqueue, 4 connections", "jobq HTTP fsync", 4, 0, 1),
    ("HTTP enqueue, 32 connections", "jobq HTTP fsync", 32, 0, 1),
    ("HTTP batches of 100, 1 + 1", "jobq HTTP fsync", 1, 1, 100),
]


def yardstick(url, producers, consumers, jobs):
    """One run of bench/pgqueue.c; jobs/s."""
    out = subprocess.run([os.path.join(peers.GEN, "pgqueue"), "--url", url, "--producers",
                          str(producers), "--consumers", str(consumers), "--jobs", str(jobs),
                          "--max-seconds", "120"], capture_output=True, text=True,
                         timeout=180).stdout
    m = re.search(r"full_cycle_jobs_per_s=([\d.]+)", out)
    if not m:
        raise RuntimeError(f"no figures from pgqueue:\n{out}")
    return float(m.group(1))


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    binaries = [jobq_server.BIN] + sys.argv[2:3]
    cluster = Postgres()
    try:
        print(f"jobq on PostgreSQL (one node), fsync, {jobs} jobs per run, median of 3\n")
        print("| scenario | " + " | ".join(f"{os.path.basename(b)} jobs/s (CPU us/job)"
                                          for b in binaries) + " | SKIP LOCKED queue jobs/s |")
        print("| --- |" + " --- |" * (len(binaries) + 1))
        for title, system, producers, consumers, batch in SCENARIOS:
            results = {b: [] for b in binaries}
            plain = []
            for _ in range(3):
                for b in binaries:
                    jobq_server.BIN = b
                    url = cluster.new_database()
                    results[b].append(peers.run(system, producers, consumers, jobs, batch,
                                                {"JOBQ_DATABASE_URL": url}))
                if batch == 1:
                    plain.append(yardstick(cluster.new_database(), producers, consumers, jobs))
            cells = [f"{statistics.median(r for r, _ in rs):,.0f} "
                     f"({statistics.median(c for _, c in rs):.1f})" for rs in results.values()]
            cells.append(f"{statistics.median(plain):,.0f}" if plain else "")
            print(f"| {title} | " + " | ".join(cells) + " |", flush=True)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
