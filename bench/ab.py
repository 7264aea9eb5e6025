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
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobq_server  # noqa: E402
import peers  # noqa: E402


def run(binary, proto, p, jobs):
    """One run of peers.py's jobq system for proto, on this binary."""
    jobq_server.BIN = binary
    return peers.run(f"jobq {proto.upper()} os", p, p, jobs)


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
