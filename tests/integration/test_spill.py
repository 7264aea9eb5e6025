"""Deep queues: past JOBQ_QUEUED_IN_MEMORY, queued jobs wait in an
unlinked spill file (operations.md, "Deep queues"). Spilled jobs read back
exactly as enqueued, in priority and FIFO order, can be read, cancelled
and run; the file never shows in the data folder; a SIGKILL with most jobs
spilled loses none of them (the file is a cache of the store)."""
import os
import time

import pytest

N = 600


def _spec(i):
    return {"id": f"deep-{i:04d}", "type": "t", "queue": "deep",
            "priority": "high" if i % 10 == 0 else "normal",
            "args": {"i": i, "pad": "y" * (i % 97), "nested": [i, {"k": str(i)}]}}


def _enqueue_all(s):
    for start in range(0, N, 100):
        r = s.post("/v1/jobs/batch", {"jobs": [_spec(i) for i in range(start, start + 100)]})
        assert r.status_code == 201, r.text


def _spilled(s):
    return s.get("/v1/perf").json()["system"]["jobs_spilled"]


def _wait_spilled(s, least, timeout=5):
    """The last jobs used stay thawed until the server's once-a-second
    freeze of idle ones (architecture.md, "The engine")."""
    end = time.time() + timeout
    while _spilled(s) < least:
        assert time.time() < end, _spilled(s)
        time.sleep(0.1)


def _drain_in_order(s, expect):
    got = []
    while True:
        jobs = s.lease(queues=["deep"], max=37)
        if not jobs:
            break
        for j in jobs:
            assert j["args"] == _spec(int(j["id"][5:]))["args"], j
            got.append(j["id"])
            r = s.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
            assert r.status_code == 200, r.text
    assert got == expect


def _order(ids):
    high = [i for i in ids if i % 10 == 0]
    return [f"deep-{i:04d}" for i in high + [i for i in ids if i % 10]]


@pytest.mark.cluster_differs("a node keeps only the jobs it runs: nothing to spill")
def test_spilled_jobs_read_back_cancel_and_lease_in_order(make_server):
    s = make_server(env={"JOBQ_QUEUED_IN_MEMORY": "16K"})
    _enqueue_all(s)
    _wait_spilled(s, N // 2)
    assert sorted(os.listdir(s.data)) == sorted(n for n in os.listdir(s.data)
                                                if n.startswith("jobq.db"))
    j = s.job("deep-0599")  # deep in the spilled part
    assert j["state"] == "queued" and j["args"] == _spec(599)["args"]
    assert j["priority"] == "normal"
    r = s.post("/v1/jobs/deep-0598/cancel")
    assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
    ids = [i for i in range(N) if i != 598]
    _drain_in_order(s, _order(ids))
    assert _spilled(s) == 0


@pytest.mark.cluster_differs("a node keeps only the jobs it runs: nothing to spill")
def test_a_kill_with_most_jobs_spilled_loses_none(make_server):
    s = make_server(env={"JOBQ_QUEUED_IN_MEMORY": "16K", "JOBQ_DURABILITY": "os"})
    _enqueue_all(s)
    _wait_spilled(s, N // 2)
    s.kill()
    s.start()
    _wait_spilled(s, N // 2)  # the restart spills again, from the store
    stats = s.get("/v1/stats").json()
    assert stats["queues"]["deep"]["counts"]["queued"] == N, stats
    _drain_in_order(s, _order(range(N)))


def test_zero_keeps_every_job_in_memory(make_server):
    s = make_server(env={"JOBQ_QUEUED_IN_MEMORY": "0"})
    _enqueue_all(s)
    time.sleep(1.5)  # past the idle freeze: frozen, all in memory
    assert _spilled(s) == 0
    _drain_in_order(s, _order(range(N)))
