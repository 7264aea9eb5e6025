#!/usr/bin/python3
"""Two jobq binaries against each other in one run: the full cycle with
P producers and P consumers over FWP (fwpgen) or HTTP (loadgen), 100-byte
jobs, `os` durability, the binaries alternating run by run, three rounds.
Prints each run's server CPU per job (user + system of the server process)
and the medians of jobs/s. For a change whose effect is below the noise of
one run; instructions are better counted with bench/callgrind_cycle.sh.

Usage: bench/ab.py BINARY_A BINARY_B [fwp|http] [P] [JOBS]
       (default fwp 4 20000)
Loopback only; every run is bounded by --max-seconds and its server is
stopped by its own pid."""
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobq_server  # noqa: E402
from jobq_server import ROOT, Jobq, free_port  # noqa: E402

GEN = os.path.join(ROOT, "build", "bench")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(binary, proto, p, jobs):
    jobq_server.BIN = binary
    port = free_port()
    srv = Jobq({"JOBQ_DURABILITY": "os", "JOBQ_FAKTORY_LISTEN": f"127.0.0.1:{port}"})
    if proto == "fwp":
        cmd = [os.path.join(GEN, "fwpgen"), "--port", str(port)]
    else:
        cmd = [os.path.join(GEN, "loadgen"), "--url", srv.url, "--payload", "90"]
    cmd += ["--producers", str(p), "--consumers", str(p), "--jobs", str(jobs), "--max-seconds", "120"]
    try:
        before = cpu_seconds(srv.proc.pid)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
        used = cpu_seconds(srv.proc.pid) - before
    finally:
        srv.stop()
    m = re.search(r"= ([0-9.]+) jobs/s", out) or re.search(r"full_cycle_jobs_per_s=([0-9.]+)", out)
    return float(m.group(1)), used / jobs * 1e6


def main():
    a, b = sys.argv[1], sys.argv[2]
    proto = sys.argv[3] if len(sys.argv) > 3 else "fwp"
    p = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    jobs = int(sys.argv[5]) if len(sys.argv) > 5 else 20000
    results = {a: [], b: []}
    for _ in range(3):
        for binary in (a, b):
            rate, cpu = run(binary, proto, p, jobs)
            results[binary].append((rate, cpu))
            print(f"{binary}: {rate:,.0f} jobs/s, {cpu:.1f} us/job", flush=True)
    for binary, rs in results.items():
        print(f"median {binary}: {statistics.median(r for r, _ in rs):,.0f} jobs/s, "
              f"{statistics.median(c for _, c in rs):.1f} us/job")


if __name__ == "__main__":
    main()
