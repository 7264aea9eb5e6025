"""A real write failure: the process's file size limit (RLIMIT_FSIZE, set
from outside with prlimit) makes SQLite's writes fail the way a full disk
does. jobq must refuse new work with 503, keep every acknowledged job, and
recover by itself once writes succeed again."""
import os
import resource
import time

import requests

from conftest import assert_problem


def file_sizes(data):
    return max(os.path.getsize(p) for p in data.iterdir() if p.is_file())


def test_full_disk_refuses_work_keeps_everything_and_recovers(make_server):
    srv = make_server()
    blob = "x" * 4000
    acked = set()
    for i in range(20):
        srv.enqueue(id=f"before{i}", args={"blob": blob})
        acked.add(f"before{i}")
    limit = max(file_sizes(srv.data), os.path.getsize(srv.log_path)) + 64 * 1024
    resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    try:
        refused = None
        for i in range(3000):
            try:
                r = requests.post(srv.url + "/v1/jobs",
                                  json={"id": f"during{i}", "type": "t", "args": {"blob": blob}},
                                  timeout=3)
            except requests.Timeout:
                break  # its commit is failing: it waits, unacknowledged
            if r.status_code == 201:
                acked.add(f"during{i}")
                continue
            refused = r
            break
        ready = requests.get(srv.url + "/health/ready", timeout=5)
        body = assert_problem(ready, 503, "unavailable", "store")
        assert "disk is full" in body["detail"], body
        r = requests.post(srv.url + "/v1/jobs", json={"type": "t"}, timeout=5)
        assert_problem(r, 503, "unavailable")
        assert r.headers["Retry-After"]
        if refused is not None:
            assert refused.status_code == 503
    finally:
        resource.prlimit(srv.proc.pid, resource.RLIMIT_FSIZE,
                         (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    end = time.time() + 20
    while time.time() < end and requests.get(srv.url + "/health/ready", timeout=5).status_code != 200:
        time.sleep(0.1)
    assert requests.get(srv.url + "/health/ready", timeout=5).status_code == 200
    srv.enqueue(id="after")
    acked.add("after")
    assert len(acked) > 21
    srv.restart()
    for jid in acked:
        assert srv.job(jid)["state"] == "queued", jid
