#!/usr/bin/python3
"""What a client that invents queue names costs the server: ROUNDS rounds,
each enqueueing N jobs to N new queues (batches of 1000) and leasing and
acknowledging all of them, so no job is held at the end of a round; after
each, the server's RSS and the size of a /metrics scrape. A server that
keeps something per queue name for good grows with every round. Then, with
all those queues counted in the store: the size and time of /v1/queues
and /v1/stats, and /health/live's latency while two clients read
/v1/queues back to back (each its own cache entry): the work a call does
per queue is the loop's.

usage: bench/queue_names.py [--ab OTHER_JOBQ] [N] [ROUNDS]   (20000, 3)"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

import jobq_server


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def one_round(q, rnd, n):
    for b in range(n // 1000):
        names = [f"r{rnd}q{b}-{i}" for i in range(1000)]
        st, body = post(q.url + "/v1/jobs/batch",
                        {"jobs": [{"type": "t", "queue": name} for name in names]})
        assert st == 201, body[:300]
        for s in range(0, len(names), 100):
            st, body = post(q.url + "/v1/lease",
                            {"worker": "w", "max": 100, "queues": names[s:s + 100]})
            assert st == 200, body[:300]
            results = [{"id": j["id"], "lease_id": j["lease_id"]}
                       for j in json.loads(body)["jobs"]]
            st, body = post(q.url + "/v1/ack", {"results": results})
            assert st == 200, body[:300]


def timed_get(url):
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=120) as r:
        size = len(r.read())
    return size, (time.monotonic() - t0) * 1000


def readers(q, name):
    for path in ("/v1/queues", "/v1/stats"):
        size, ms = timed_get(q.url + path)
        print(f"{name}: {path} {size >> 10} KiB in {ms:.0f} ms", flush=True)
    stop = threading.Event()

    def read_queues(k):
        i = 0
        while not stop.is_set():
            i += 1
            timed_get(f"{q.url}/v1/queues?reader={k}&n={i}")
    threads = [threading.Thread(target=read_queues, args=(k,)) for k in range(2)]
    for th in threads:
        th.start()
    lat, end = [], time.monotonic() + 10
    try:
        while time.monotonic() < end:
            lat.append(timed_get(q.url + "/health/live")[1])
            time.sleep(0.05)
    finally:
        stop.set()
        for th in threads:
            th.join()
    lat.sort()
    print(f"{name}: /health/live while two clients read /v1/queues: p50 "
          f"{lat[len(lat) // 2]:.0f} ms, max {lat[-1]:.0f} ms", flush=True)


def run(name, n, rounds):
    q = jobq_server.Jobq({"JOBQ_FINISHED_IN_MEMORY": "0"})
    try:
        start = q.rss_bytes()
        for rnd in range(rounds):
            one_round(q, rnd, n)
            time.sleep(1)
            with urllib.request.urlopen(q.url + "/metrics", timeout=60) as r:
                scrape = len(r.read())
            print(f"{name}: after {(rnd + 1) * n} queue names: RSS {start >> 20} -> "
                  f"{q.rss_bytes() >> 20} MiB, /metrics {scrape >> 10} KiB", flush=True)
        readers(q, name)
    finally:
        q.stop()


def main():
    builds, args = jobq_server.builds(sys.argv[1:])
    n = int(args[0]) if args else 20000
    rounds = int(args[1]) if len(args) > 1 else 3
    for name, binary in builds:
        jobq_server.BIN = binary
        run(name, n, rounds)


if __name__ == "__main__":
    main()
