#!/usr/bin/python3
"""jobq's cluster mode on PostgreSQL (issue 13): the full cycle over HTTP
and FWP and enqueue alone, `fsync`, each run on a new database of one
throwaway PostgreSQL started here (tests/integration/pg.py, with
pg_stat_statements loaded), for three set-ups side by side, alternating,
medians of 3:

  alone    one jobq in its default mode (the jobs in its memory)
  1 node   one jobq in cluster mode
  3 nodes  three jobqs in cluster mode on the database, the clients split
           across them (4 + 4 runs as 2 + 2, 1 + 1, 1 + 1)

and, where it applies, the issue's yardstick: a plain SKIP LOCKED queue
with a transaction per operation (bench/pgqueue.c). Besides jobs/s, per job:
jobq's CPU (every node), PostgreSQL's CPU (the postmaster and its
children), statements (pg_stat_statements' calls), transactions committed
and WAL bytes.

With --sweep, instead: the batch-size sweep, HTTP 4 + 4 on one node alone
and one cluster node with loadgen --batch B (producers enqueue B jobs a
request, consumers lease up to B a call and acknowledge them with
/v1/ack), B = 1, 10, 100: how the per-job cost on PostgreSQL falls as
claims and transactions carry more jobs.

With --limits, instead: HTTP 4 + 4 on one and three cluster nodes, with
and without a type's concurrency limit set (on a type the load does not
use): what carrying limits costs a claim (their advisory locks, the count
of the jobs held).

With --ab OTHER_JOBQ, instead: this build against another jobq binary
(built from another commit), HTTP 4 + 4 on one cluster node (FWP with
--fwp), alternating, medians of ROUNDS: how a change moves throughput and
the CPU PostgreSQL spends a job. --retain D sets JOBQ_RETAIN_COMPLETED to
D: retention at work during the run (steady state), not a day later.
--statements also prints each build's costliest statements in its last
round (pg_stat_statements: calls, total and mean execution time). --alone
runs one jobq alone (not in cluster mode) instead of a cluster node.

With --commit-wait, instead: HTTP 4 + 4 on one cluster node with its
commits synchronous (fsync) and not (memory), beside the yardstick: how
much of one job a call is the wait for the commit's flush.

Usage: bench/cluster.py [--sweep | --limits | --commit-wait | --ab OTHER_JOBQ [--fwp]
                        [--retain D] [--statements] [--alone]] [JOBS] [ROUNDS]
       (defaults 20000, 3)
Needs build/jobq, build/bench/{loadgen,fwpgen,pgqueue} and postgresql.
Every client is bounded by --max-seconds; servers are stopped by their own
pids; the PostgreSQL cluster is stopped at the end."""
import os
import re
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
import jobq_server  # noqa: E402
import postgres as postgres_bench  # noqa: E402  (bench/postgres.py: the yardstick)
from pg import Postgres  # noqa: E402

GEN = os.path.join(HERE, "..", "build", "bench")
TICK = os.sysconf("SC_CLK_TCK")

# (title, protocol, producers, consumers)
SCENARIOS = [
    ("HTTP cycle 4 + 4", "http", 4, 4),
    ("FWP cycle 4 + 4", "fwp", 4, 4),
    ("HTTP enqueue, 4 connections", "http", 4, 0),
]
SETUPS = ["alone", "1 node", "3 nodes"]


def split(total, parts):
    """4 over 3 nodes: 2, 1, 1."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def cpu_ticks(pids):
    t = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            t += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return t


def pg_pids(pgc):
    with open(os.path.join(pgc.data, "postmaster.pid")) as f:
        master = int(f.readline())
    pids = [master]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == master:
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def pg_counters(pgc):
    (calls, xacts, lsn), = pgc.psql(
        "SELECT (SELECT coalesce(sum(calls),0) FROM pg_stat_statements),"
        " (SELECT sum(xact_commit) FROM pg_stat_database),"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
    return float(calls), float(xacts), float(lsn)


def client(proto, node, producers, consumers, jobs, batch=1):
    if proto == "fwp":
        cmd = [os.path.join(GEN, "fwpgen"), "--port", str(node.fwp_port)]
    else:
        cmd = [os.path.join(GEN, "loadgen"), "--url", node.url, "--payload", "90",
               "--batch", str(batch)]
    cmd += ["--producers", str(producers), "--consumers", str(consumers), "--jobs", str(jobs),
            "--max-seconds", "120"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def done_count(out):
    m = re.search(r"(\d+) jobs in", out) or re.search(r"completed=(\d+)", out)
    if not m:
        raise RuntimeError(f"no figures from the client:\n{out}")
    return int(m.group(1))


def one_run(pgc, setup, proto, producers, consumers, jobs, batch=1, extra=None):
    url = pgc.new_database()
    n = 3 if setup == "3 nodes" else 1
    env = {"JOBQ_DATABASE_URL": url, "JOBQ_DURABILITY": "fsync", **(extra or {})}
    if setup != "alone":
        env.update({"JOBQ_CLUSTER": "true"})
    nodes = []
    try:
        for _ in range(n):
            port = jobq_server.free_port()
            node = jobq_server.Jobq({**env, "JOBQ_FAKTORY_LISTEN": f"127.0.0.1:{port}"})
            node.fwp_port = port
            nodes.append(node)
        pids = pg_pids(pgc)
        c0, pg0 = pg_counters(pgc), cpu_ticks(pids)
        j0 = cpu_ticks([x.proc.pid for x in nodes])
        ps, cs = split(producers, n), split(consumers, n)
        shares = [jobs * p // producers for p in ps]
        shares[0] += jobs - sum(shares)
        t0 = time.monotonic()
        procs = [client(proto, nodes[i], ps[i], cs[i], shares[i], batch) for i in range(n)]
        outs = [p.communicate(timeout=180)[0] for p in procs]
        secs = time.monotonic() - t0
        done = sum(done_count(o) for o in outs)
        pids = pg_pids(pgc)
        jq = (cpu_ticks([x.proc.pid for x in nodes]) - j0) / TICK
        pgcpu = (cpu_ticks(pids) - pg0) / TICK
    finally:
        for x in nodes:
            x.stop()
    time.sleep(0.6)  # sessions flush their statistics (commits) as they end
    c1 = pg_counters(pgc)
    per = max(1, done)
    return {"jobs/s": done / secs, "jobq us": jq / per * 1e6, "pg us": pgcpu / per * 1e6,
            "stmts": (c1[0] - c0[0]) / per, "xacts": (c1[1] - c0[1]) / per,
            "wal": (c1[2] - c0[2]) / per}


def yardstick(pgc, producers, consumers, jobs):
    url = pgc.new_database()
    c0 = pg_counters(pgc)
    rate = postgres_bench.yardstick(url, producers, consumers, jobs)
    c1 = pg_counters(pgc)
    return {"jobs/s": rate, "stmts": (c1[0] - c0[0]) / jobs,
            "xacts": (c1[1] - c0[1]) / jobs, "wal": (c1[2] - c0[2]) / jobs}


def sweep(pgc, jobs, rounds):
    print(f"batch-size sweep, HTTP 4 + 4, fsync, {jobs} jobs per run, median of {rounds}\n")
    print("| batch | set-up | jobs/s | jobq CPU us/job | PostgreSQL CPU us/job | "
          "statements/job | commits/job |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for batch in (1, 10, 100):
        res = {s: [] for s in ("alone", "1 node")}
        for _ in range(rounds):
            for s in res:
                res[s].append(one_run(pgc, s, "http", 4, 4, jobs, batch))
        for s, rs in res.items():
            med = lambda k: statistics.median(r[k] for r in rs)
            print(f"| {batch} | {s} | {med('jobs/s'):,.0f} | {med('jobq us'):.1f} | "
                  f"{med('pg us'):.1f} | {med('stmts'):.2f} | {med('xacts'):.2f} |", flush=True)


def limits(pgc, jobs, rounds):
    variants = {"no limits": {}, "a type limit": {"JOBQ_LIMITS": "type:unused concurrency=100"}}
    print(f"HTTP 4 + 4, cluster mode, fsync, {jobs} jobs per run, median of {rounds}\n")
    print("| set-up | limits | jobs/s | jobq CPU us/job | PostgreSQL CPU us/job |")
    print("| --- | --- | --- | --- | --- |")
    for setup in ("1 node", "3 nodes"):
        res = {k: [] for k in variants}
        for r in range(rounds):
            for k in (list(variants) if r % 2 == 0 else list(reversed(list(variants)))):
                res[k].append(one_run(pgc, setup, "http", 4, 4, jobs, extra=variants[k]))
        for k, rs in res.items():
            med = lambda key: statistics.median(x[key] for x in rs)  # noqa: E731
            print(f"| {setup} | {k} | {med('jobs/s'):,.0f} | {med('jobq us'):.0f} | "
                  f"{med('pg us'):.0f} |", flush=True)


def top_statements(pgc, n=8):
    return pgc.psql("SELECT calls, round(total_exec_time::numeric, 0),"
                    " round((total_exec_time / greatest(calls, 1) * 1000)::numeric, 1),"
                    " left(regexp_replace(query, '\\s+', ' ', 'g'), 100)"
                    " FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %d" % n)


def commit_wait(pgc, jobs, rounds):
    """What one job a call waits on: HTTP 4 + 4 on one cluster node with
    its commits synchronous (fsync) and not (memory: PostgreSQL's
    synchronous_commit off), alternating, beside the yardstick."""
    print(f"HTTP 4 + 4, one cluster node, {jobs} jobs per run, median of {rounds}\n")
    print("| commits | jobs/s | jobq CPU us/job | PostgreSQL CPU us/job | commits/job |"
          " runs (jobs/s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    res = {"fsync": [], "memory": [], "SKIP LOCKED queue": []}
    for _ in range(rounds):
        for d in ("fsync", "memory"):
            res[d].append(one_run(pgc, "1 node", "http", 4, 4, jobs,
                                  extra={"JOBQ_DURABILITY": d}))
        res["SKIP LOCKED queue"].append(yardstick(pgc, 4, 4, jobs))
    for k, rs in res.items():
        med = lambda key: statistics.median(x[key] for x in rs) if key in rs[0] else 0  # noqa
        runs = " / ".join(f"{x['jobs/s']:,.0f}" for x in rs)
        print(f"| {k} | {med('jobs/s'):,.0f} | {med('jobq us'):.0f} | {med('pg us'):.0f} |"
              f" {med('xacts'):.2f} | {runs} |")


def ab(pgc, other, jobs, rounds, proto="http", retain=None, statements=False, setup="1 node"):
    bins = {"this build": jobq_server.BIN, other: other}
    res = {k: [] for k in bins}
    top = {}
    for r in range(rounds):
        for k in (list(bins) if r % 2 == 0 else list(reversed(list(bins)))):
            jobq_server.BIN = bins[k]
            extra = {"JOBQ_RETAIN_COMPLETED": retain} if retain else None
            pgc.psql("SELECT pg_stat_statements_reset()")
            res[k].append(one_run(pgc, setup, proto, 4, 4, jobs, extra=extra))
            top[k] = top_statements(pgc) if statements else []
    who = "one cluster node" if setup == "1 node" else "one jobq alone"
    print(f"{proto.upper()} 4 + 4, {who}, fsync, {jobs} jobs per run, median of "
          f"{rounds}" + (f", JOBQ_RETAIN_COMPLETED={retain}" if retain else "") + "\n")
    print("| jobq | jobs/s | jobq CPU us/job | PostgreSQL CPU us/job | runs (jobs/s) |")
    print("| --- | --- | --- | --- | --- |")
    for k, rs in res.items():
        med = lambda key: statistics.median(x[key] for x in rs)  # noqa: E731
        runs = " / ".join(f"{x['jobs/s']:,.0f}" for x in rs)
        print(f"| {k} | {med('jobs/s'):,.0f} | {med('jobq us'):.0f} | {med('pg us'):.0f}"
              f" | {runs} |")
    for k, rows in top.items():
        if rows:
            print(f"\n{k}, last round: calls | total ms | mean us | statement")
            for row in rows:
                print(" | ".join(row))


def main():
    # A timeout's SIGTERM must still stop the servers and the cluster (the
    # finally blocks): as an exception, not Python's default exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    argv = sys.argv[1:]
    other, retain = None, None
    if "--retain" in argv:
        i = argv.index("--retain")
        retain = argv[i + 1]
        del argv[i:i + 2]
    if "--ab" in argv:
        i = argv.index("--ab")
        other = argv[i + 1]
        del argv[i:i + 2]
    args = [a for a in argv if a not in ("--sweep", "--limits", "--fwp", "--statements",
                                         "--alone", "--commit-wait")]
    jobs = int(args[0]) if args else 20000
    rounds = int(args[1]) if len(args) > 1 else 3
    pgc = Postgres("-c shared_preload_libraries=pg_stat_statements")
    try:
        pgc.psql("CREATE EXTENSION pg_stat_statements")
        if "--sweep" in sys.argv:
            return sweep(pgc, jobs, rounds)
        if other:
            return ab(pgc, other, jobs, rounds, "fwp" if "--fwp" in argv else "http", retain,
                      "--statements" in argv, "alone" if "--alone" in argv else "1 node")
        if "--limits" in sys.argv:
            return limits(pgc, jobs, rounds)
        if "--commit-wait" in sys.argv:
            return commit_wait(pgc, jobs, rounds)
        print(f"jobq cluster mode on PostgreSQL, fsync, {jobs} jobs per run, median of "
              f"{rounds}\n")
        print("| scenario | set-up | jobs/s | jobq CPU us/job | PostgreSQL CPU us/job | "
              "statements/job | commits/job | WAL bytes/job |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for title, proto, producers, consumers in SCENARIOS:
            res = {s: [] for s in SETUPS}
            plain = []
            for _ in range(rounds):
                for s in SETUPS:
                    res[s].append(one_run(pgc, s, proto, producers, consumers, jobs))
                if proto == "http":
                    plain.append(yardstick(pgc, producers, consumers, jobs))
            rows = list(res.items()) + ([("SKIP LOCKED queue", plain)] if plain else [])
            for s, rs in rows:
                med = lambda k: statistics.median(r[k] for r in rs) if k in rs[0] else None
                cells = [f"{med('jobs/s'):,.0f}"]
                cells += [f"{med(k):.1f}" if med(k) is not None else "" for k in
                          ("jobq us", "pg us", "stmts", "xacts")]
                cells.append(f"{med('wal'):,.0f}")
                print(f"| {title} | {s} | " + " | ".join(cells) + " |", flush=True)
    finally:
        pgc.stop()


if __name__ == "__main__":
    main()
