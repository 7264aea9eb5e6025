#!/usr/bin/python3
"""The query cache: the same list and stats queries, cached and uncached.

Fills a fresh store with JOBS jobs (batched enqueues), then asks GET
/v1/stats and GET /v1/jobs?limit=100 ROUNDS times each, one after another,
with JOBQ_CACHE_TTL_MS=60000 and with the cache off (0), against the same
data. Reports the client-side mean and p50 per request. No writes happen
during the rounds: this is the cache's best case (a dashboard polling a
quiet or read-heavy server); any job change invalidates the entries.

Usage: bench/cache.py [JOBS] [ROUNDS]   (defaults 100000 200)
"""
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "build", "jobq")


def start(data, ttl):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBQ_")}
    env.update({"JOBQ_ENV_FILE": "/nonexistent", "JOBQ_LOG_LEVEL": "warn",
                "JOBQ_CACHE_TTL_MS": str(ttl), "JOBQ_DURABILITY": "os",
                "JOBQ_MEMORY_LIMIT": "0"})
    proc = subprocess.Popen([BIN, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                            env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            requests.get(url + "/health/live", timeout=1)
            return proc, url
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("jobq did not start")


def stop(proc):
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()


def timed(session, url, rounds):
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        r = session.get(url, timeout=30)
        out.append((time.perf_counter() - t0) * 1e3)
        assert r.status_code == 200, r.text
    return statistics.mean(out), statistics.median(out)


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    data = tempfile.mkdtemp()
    proc, url = start(data, 0)
    s = requests.Session()
    for i in range(0, jobs, 1000):
        batch = [{"type": "t", "queue": f"q{(i // 1000) % 10}", "args": {"n": i + k}}
                 for k in range(min(1000, jobs - i))]
        assert s.post(url + "/v1/jobs/batch", json={"jobs": batch}, timeout=60).status_code == 201
    stop(proc)
    print(f"{jobs} jobs in 10 queues; {rounds} sequential requests each")
    for ttl in (60000, 0):
        proc, url = start(data, ttl)
        s = requests.Session()
        for path in ("/v1/stats", "/v1/jobs?queue=q3&limit=100"):
            mean, p50 = timed(s, url + path, rounds)
            print(f"cache={'on ' if ttl else 'off'} {path:32s} mean {mean:8.2f} ms  p50 {p50:8.2f} ms")
        if ttl:
            print("  ", s.get(url + "/v1/cache").json())
        stop(proc)


if __name__ == "__main__":
    main()
