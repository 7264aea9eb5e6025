#!/usr/bin/python3
"""A deep queue: N queued 100-byte jobs (default 1,000,000), enqueued over
HTTP in batches of 1000. Reports the server's resident memory, the bytes per
job its data folder holds, the time to ready after a SIGKILL and after a
graceful restart, and lease latency at that depth against a queue of 1000.

Usage: bench/million.py [N] [DURABILITY] [BINARY]   (default 1000000 os build/jobq) Loopback only; bounded by N; every server it starts is
stopped by its own pid, and its data folder removed."""
import http.client
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jobq_server  # noqa: E402
from jobq_server import Jobq  # noqa: E402

ARGS = "x" * 88  # with the surrounding JSON, ~100 bytes of args


def settings(durability):
    return {"JOBQ_DURABILITY": durability, "JOBQ_MEMORY_LIMIT": "0",
            "JOBQ_FAKTORY_LISTEN": "off", "JOBQ_RETAIN_COMPLETED": "0"}


def start(data, durability):
    return Jobq(settings(durability), data=data, start_timeout=600)


def conn(srv):
    return http.client.HTTPConnection("127.0.0.1", int(srv.url.rsplit(":", 1)[1]), timeout=120)


def post(c, path, body):
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status >= 300:
        raise RuntimeError(f"{path}: {r.status} {data[:300]!r}")
    return json.loads(data) if data else None


def enqueue(srv, n, queue):
    c = conn(srv)
    for start in range(0, n, 1000):
        jobs = [{"type": "deep", "queue": queue, "args": {"n": start + i, "pad": ARGS}}
                for i in range(min(1000, n - start))]
        post(c, "/v1/jobs/batch", {"jobs": jobs})
    c.close()


def lease_latency_ms(srv, queue, count=200):
    c = conn(srv)
    out = []
    for _ in range(count):
        t = time.perf_counter()
        jobs = post(c, "/v1/lease", {"worker": "bench", "queues": [queue], "max": 1})["jobs"]
        out.append((time.perf_counter() - t) * 1e3)
        for j in jobs:
            post(c, f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
    c.close()
    out.sort()
    return statistics.median(out), out[int(len(out) * 0.99) - 1]


def disk_bytes(data):
    return sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data))


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000000
    durability = sys.argv[2] if len(sys.argv) > 2 else "os"
    if len(sys.argv) > 3:
        jobq_server.BIN = sys.argv[3]
    data, shallow = tempfile.mkdtemp(), tempfile.mkdtemp()
    srv = None
    try:
        srv = start(shallow, durability)
        enqueue(srv, 1000, "deep")
        base = lease_latency_ms(srv, "deep")
        srv.stop()

        srv = start(data, durability)
        rss0 = srv.rss_bytes()
        t = time.monotonic()
        enqueue(srv, n, "deep")
        secs = time.monotonic() - t
        time.sleep(1)  # the last compaction
        rss = srv.rss_bytes()
        deep = lease_latency_ms(srv, "deep")
        print(f"{n} jobs enqueued in {secs:.1f} s ({n / secs:,.0f} jobs/s, batches of 1000, {durability})")
        print(f"RSS {rss / 2**20:,.0f} MiB ({(rss - rss0) / n:,.0f} bytes/job over the idle {rss0 / 2**20:.0f} MiB)")
        print(f"lease p50/p99: {deep[0]:.2f}/{deep[1]:.2f} ms at {n} queued, "
              f"{base[0]:.2f}/{base[1]:.2f} ms at 1000")
        srv.stop(signal.SIGKILL)
        print(f"data folder after SIGKILL: {disk_bytes(data) / n:,.0f} bytes/job "
              f"({disk_bytes(data) / 2**20:,.0f} MiB)")
        srv = start(data, durability)
        print(f"ready {srv.ready_s:.2f} s after SIGKILL")
        srv.stop()
        print(f"data folder after a graceful stop: {disk_bytes(data) / n:,.0f} bytes/job")
        srv = start(data, durability)
        print(f"ready {srv.ready_s:.2f} s after a graceful stop; RSS then {srv.rss_bytes() / 2**20:,.0f} MiB")
        srv.stop()
    finally:
        if srv and srv.proc.poll() is None:
            srv.stop(signal.SIGKILL)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(shallow, ignore_errors=True)


if __name__ == "__main__":
    main()
