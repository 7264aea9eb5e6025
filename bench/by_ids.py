#!/usr/bin/python3
"""What one batch enqueue naming stored jobs costs in memory: N jobs of
~1 MB are enqueued and cancelled, the server restarts holding no finished
job in memory, and one batch of N small specs names them all (other
content: a clash, once read). Prints its status and the server's peak RSS
(VmHWM) before and after. The read by ids stops at 16 MiB of stored jobs
(store.h, STORE_GET_BYTES), so past ~16 such jobs the batch gets 413.

usage: bench/by_ids.py [--ab OTHER_JOBQ] N"""
import json
import re
import sys
import urllib.error
import urllib.request

import jobq_server

BIG = "x" * (1000 * 1024)


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def peak_mib(proc):
    with open(f"/proc/{proc.pid}/status") as f:
        return int(re.search(r"VmHWM:\s+(\d+)", f.read()).group(1)) // 1024


def run(n):
    settings = {"JOBQ_FINISHED_IN_MEMORY": "0"}
    q = jobq_server.Jobq(settings)
    data = q.data
    try:
        for i in range(n):
            assert post(q.url + "/v1/jobs", {"id": f"big-{i:04d}", "type": "t",
                                             "args": [BIG]}) == 201
            assert post(q.url + f"/v1/jobs/big-{i:04d}/cancel", None) == 200
    finally:
        q.own_data = False
        q.stop()
    q = jobq_server.Jobq(settings, data=data)
    q.own_data = True
    try:
        before = peak_mib(q.proc)
        status = post(q.url + "/v1/jobs/batch",
                      {"jobs": [{"id": f"big-{i:04d}", "type": "t"} for i in range(n)]})
        return status, before, peak_mib(q.proc)
    finally:
        q.stop()


def main():
    builds, args = jobq_server.builds(sys.argv[1:])
    n = int(args[0]) if args else 200
    for name, binary in builds:
        jobq_server.BIN = binary
        status, before, after = run(n)
        print(f"{name}: a batch naming {n} stored jobs of ~1 MB: {status}, "
              f"peak RSS {before} -> {after} MiB", flush=True)


if __name__ == "__main__":
    main()
