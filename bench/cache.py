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
import statistics
import sys
import tempfile
import time

import requests

from jobq_server import Jobq



def start(data, ttl):
    return Jobq({"JOBQ_CACHE_TTL_MS": str(ttl), "JOBQ_DURABILITY": "os",
                 "JOBQ_MEMORY_LIMIT": "0"}, data=data)


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
    jobq = start(data, 0)
    url = jobq.url
    s = requests.Session()
    for i in range(0, jobs, 1000):
        batch = [{"type": "t", "queue": f"q{(i // 1000) % 10}", "args": {"n": i + k}}
                 for k in range(min(1000, jobs - i))]
        assert s.post(url + "/v1/jobs/batch", json={"jobs": batch}, timeout=60).status_code == 201
    jobq.stop()
    print(f"{jobs} jobs in 10 queues; {rounds} sequential requests each")
    for ttl in (60000, 0):
        jobq = start(data, ttl)
        url = jobq.url
        s = requests.Session()
        for path in ("/v1/stats", "/v1/jobs?queue=q3&limit=100"):
            mean, p50 = timed(s, url + path, rounds)
            print(f"cache={'on ' if ttl else 'off'} {path:32s} mean {mean:8.2f} ms  p50 {p50:8.2f} ms")
        if ttl:
            print("  ", s.get(url + "/v1/cache").json())
        jobq.stop()


if __name__ == "__main__":
    main()
