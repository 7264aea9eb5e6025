#!/usr/bin/python3
"""Two jobq binaries against each other in one run: the full cycle with
P producers and P consumers over FWP (fwpgen) or HTTP (loadgen), 100-byte
jobs, `os` durability, the binaries alternating run by run, three rounds.
Prints each run's server CPU per job (user + system of the server process)
and the medians of jobs/s. For a change whose effect is below the noise of
one run; instructions are better counted with bench/callgrind_cycle.sh.

Usage: bench/ab.py BINARY_A BINARY_B [fwp|http] [P] [JOBS]
       (default fwp 4 20000)
   or: bench/ab.py BINARY_A BINARY_B SUITE SYSTEM [JOBS]
       a suite of peers.py (cycle1, cycle4, enqueue32, batch100) for one of
       its jobq systems, e.g. enqueue32 "jobq HTTP fsync" 60000
Loopback only; every run is bounded by --max-seconds and its server is
stopped by its own pid."""
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobq_server  # noqa: E402
import peers  # noqa: E402


def scenario(args):
    """(system, producers, consumers, batch, jobs) from the arguments."""
    if args and args[0] in peers.SUITES:
        _, _, producers, consumers, batch = peers.SUITES[args[0]]
        jobs = int(args[2]) if len(args) > 2 else 20000
        return args[1], producers, consumers, batch, jobs
    proto = args[0] if args else "fwp"
    p = int(args[1]) if len(args) > 1 else 4
    jobs = int(args[2]) if len(args) > 2 else 20000
    return f"jobq {proto.upper()} os", p, p, 1, jobs


def main():
    a, b = sys.argv[1], sys.argv[2]
    system, producers, consumers, batch, jobs = scenario(sys.argv[3:])
    results = {a: [], b: []}
    for _ in range(3):
        for binary in (a, b):
            jobq_server.BIN = binary
            rate, cpu = peers.run(system, producers, consumers, jobs, batch)
            results[binary].append((rate, cpu))
            print(f"{binary}: {rate:,.0f} jobs/s, {cpu:.1f} us/job", flush=True)
    for binary, rs in results.items():
        print(f"median {binary}: {statistics.median(r for r, _ in rs):,.0f} jobs/s, "
              f"{statistics.median(c for _, c in rs):.1f} us/job")


if __name__ == "__main__":
    main()
