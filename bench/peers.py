#!/usr/bin/python3
"""jobq against the servers a user would pick instead, in one run: full
cycle (enqueue -> take -> finish) with P producers and P consumers, one
command in flight per connection, 100-byte jobs, every system started
fresh with an empty data folder for each run. Systems alternate within a
round; three rounds; prints jobs/s (median of 3) and the server's CPU per
job (user + system time of its process over the run, divided by the jobs).

  jobq FWP / HTTP  in os and fsync durability (bench/fwpgen.c, loadgen.c)
  beanstalkd       -b (binlog, fsync at most every 50 ms: its default) and
                   -b -f0 (fsync every write) (bench/peergen.c)
  redis-server     AOF appendfsync everysec and always, LPUSH / BLMOVE /
                   LREM reliable queue (bench/peergen.c)

Usage: bench/peers.py [JOBS] [SUITE ...]   (default 20000, every suite:
cycle1 cycle4 enqueue32 batch100)
Needs beanstalkd and redis-server (make bench-peers installs them) and
build/jobq, build/bench/{fwpgen,loadgen,peergen}. Loopback only; every run
is bounded by --max-seconds and its server is stopped by its own pid."""
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jobq_server import ROOT, Jobq, free_port  # noqa: E402
from faktory import cpu_seconds  # noqa: E402

GEN = os.path.join(ROOT, "build", "bench")


class Peer:
    """A beanstalkd or redis-server on a free loopback port, own data folder."""

    def __init__(self, argv_fn):
        self.data = tempfile.mkdtemp()
        self.port = free_port()
        self.proc = subprocess.Popen(argv_fn(self.port, self.data), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{argv_fn(0, '')[0]} did not start")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


def beanstalkd(extra):
    return lambda port, d: ["beanstalkd", "-l", "127.0.0.1", "-p", str(port), "-b", d, *extra]


def redis(fsync):
    return lambda port, d: ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                            "--dir", d, "--save", "", "--appendonly", "yes",
                            "--appendfsync", fsync, "--protected-mode", "no"]


JOBQ = {
    "jobq FWP os": ("jobq", "fwp", "os"),
    "jobq FWP fsync": ("jobq", "fwp", "fsync"),
    "jobq HTTP os": ("jobq", "http", "os"),
    "jobq HTTP fsync": ("jobq", "http", "fsync"),
    # the same, with Prefer: return=minimal (ids and state back, not whole jobs)
    "jobq HTTP os minimal": ("jobq", "http", "os"),
    "jobq HTTP fsync minimal": ("jobq", "http", "fsync"),
}
PEERS = {
    "beanstalkd -b": ("peer", "beanstalk", beanstalkd([])),
    "beanstalkd -b -f0": ("peer", "beanstalk", beanstalkd(["-f0"])),
    "redis AOF everysec": ("peer", "redis", redis("everysec")),
    "redis AOF always": ("peer", "redis", redis("always")),
}
SYSTEMS = {**JOBQ, **PEERS}
FULL = [n for n in SYSTEMS if not n.endswith(" minimal")]  # the cycles: replies in full


def run(name, producers, consumers, jobs, batch=1, settings=None):
    """One run; batch: jobs per HTTP request for jobq, commands pipelined
    per write for the peers; settings: more JOBQ_* for jobq. Returns
    (jobs/s, server CPU us per job)."""
    kind, proto, how = SYSTEMS[name]
    if kind == "jobq":
        port = free_port()
        srv = Jobq({"JOBQ_DURABILITY": how, "JOBQ_FAKTORY_LISTEN": f"127.0.0.1:{port}",
                    **(settings or {})})
        if proto == "fwp":
            cmd = [os.path.join(GEN, "fwpgen"), "--port", str(port)]
        else:
            cmd = [os.path.join(GEN, "loadgen"), "--url", srv.url, "--payload", "90",
                   "--batch", str(batch)]
            if name.endswith(" minimal"):
                cmd += ["--prefer", "minimal"]
    else:
        srv = Peer(how)
        cmd = [os.path.join(GEN, "peergen"), "--proto", proto, "--port", str(srv.port),
               "--pipeline", str(batch)]
    cmd += ["--producers", str(producers), "--consumers", str(consumers), "--jobs", str(jobs),
            "--max-seconds", "120"]
    try:
        before = cpu_seconds(srv.proc.pid)
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=180).stdout
        used = cpu_seconds(srv.proc.pid) - before
    finally:
        srv.stop()
    m = (re.search(r"([\d.]+) jobs/s", out) or re.search(r"full_cycle_jobs_per_s=([\d.]+)", out))
    done = re.search(r"(\d+) jobs in", out) or re.search(r"completed=(\d+)", out)
    if not m or not done:
        raise RuntimeError(f"no figures from {' '.join(cmd)}:\n{out}")
    return float(m.group(1)), used / max(1, int(done.group(1))) * 1e6


# (title, systems, producers, consumers, batch)
SUITES = {
    "cycle1": ("full cycle, 1 + 1", list(FULL), 1, 1, 1),
    "cycle4": ("full cycle, 4 + 4", list(FULL), 4, 4, 1),
    "enqueue32": ("enqueue only, 32 producers",
                  ["jobq HTTP fsync", "jobq HTTP fsync minimal", "jobq HTTP os",
                   "jobq HTTP os minimal", "redis AOF always", "redis AOF everysec",
                   "beanstalkd -b -f0", "beanstalkd -b"], 32, 0, 1),
    "batch100": ("full cycle in batches of 100 (jobq: /v1/jobs/batch and lease max 100 + "
                 "/v1/ack; peers: 100 commands pipelined per write), 1 + 1",
                 ["jobq HTTP fsync", "jobq HTTP fsync minimal", "jobq HTTP os",
                  "jobq HTTP os minimal", "beanstalkd -b", "beanstalkd -b -f0",
                  "redis AOF always"], 1, 1, 100),
}


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    suites = sys.argv[2:] or list(SUITES)
    for key in suites:
        title, names, producers, consumers, batch = SUITES[key]
        results = {n: [] for n in names}
        for _ in range(3):
            for n in names:
                results[n].append(run(n, producers, consumers, jobs, batch))
        print(f"\n{title}, {jobs} jobs per run, median of 3")
        print("| system | jobs/s | server CPU us/job | runs (jobs/s) |")
        print("| --- | --- | --- | --- |")
        for n, r in results.items():
            rates = [x[0] for x in r]
            print(f"| {n} | {statistics.median(rates):,.0f} | "
                  f"{statistics.median([x[1] for x in r]):.1f} | "
                  f"{' / '.join(f'{x:,.0f}' for x in rates)} |", flush=True)


if __name__ == "__main__":
    main()
