#!/usr/bin/python3
"""Full cycle over the Faktory protocol against the same over HTTP, in one
run: PUSH -> FETCH -> ACK (bench/fwpgen.c) and enqueue -> lease -> complete
(bench/loadgen.c), 1+1 and 4+4 producers/consumers, ~100-byte args, for
each durability given. Scenarios alternate, three rounds, a fresh server
each time; prints jobs/s (median of 3) and the server's CPU per job (user +
system time of its process over the run, divided by the jobs).

Usage: bench/faktory.py [JOBS] [DURABILITY ...]   (default 10000, os fsync)
Needs build/jobq, build/bench/fwpgen and build/bench/loadgen (make bench-faktory)."""
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jobq_server import ROOT, Jobq, free_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def run(proto, pc, jobs, durability):
    port = free_port()
    srv = Jobq({"JOBQ_DURABILITY": durability, "JOBQ_FAKTORY_LISTEN": f"127.0.0.1:{port}"})
    try:
        before = cpu_seconds(srv.proc.pid)
        if proto == "fwp":
            cmd = [os.path.join(ROOT, "build/bench/fwpgen"), "--port", str(port)]
        else:
            cmd = [os.path.join(ROOT, "build/bench/loadgen"), "--url", srv.url, "--payload", "90",
                   "--batch", "1"]
        cmd += ["--producers", str(pc), "--consumers", str(pc), "--jobs", str(jobs),
                "--max-seconds", "120"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
        used = cpu_seconds(srv.proc.pid) - before
    finally:
        srv.stop()
    m = re.search(r"([\d.]+) jobs/s", out) or re.search(r"full_cycle_jobs_per_s=([\d.]+)", out)
    done = re.search(r"(\d+) jobs in", out) or re.search(r"completed=(\d+)", out)
    if not m or not done:
        raise RuntimeError(f"no figures from {cmd[0]}:\n{out}")
    return float(m.group(1)), used / max(1, int(done.group(1))) * 1e6


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    durabilities = sys.argv[2:] or ["os", "fsync"]
    scenarios = [(p, n) for n in (1, 4) for p in ("fwp", "http")]
    for d in durabilities:
        results = {s: [] for s in scenarios}
        for _ in range(3):
            for s in scenarios:
                results[s].append(run(s[0], s[1], jobs, d))
        print(f"== durability={d}, {jobs} jobs per run, median of 3")
        for (proto, n), rs in results.items():
            rate = statistics.median(r[0] for r in rs)
            cpu = statistics.median(r[1] for r in rs)
            print(f"{proto:4} {n}+{n}: {rate:8.0f} jobs/s   server CPU {cpu:6.1f} us/job   "
                  f"(runs: {', '.join(f'{r[0]:.0f}' for r in rs)})")


if __name__ == "__main__":
    main()
