"""Interop: the unmodified faktory-worker library (npm, 4.7.1) against jobq's
Faktory Work Protocol listener, and the same jobs seen over HTTP."""
import time
import uuid

import pytest

from fwp import connect, node

FAST = {"backoff": {"initial_ms": 100, "max_ms": 100, "jitter": 0}}


def jid(prefix="j"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def info(server):
    r = node(server, "info")
    assert "info" in r, r
    return r["info"]


def test_push_fetch_ack(server):
    j = jid()
    r = node(server, "push", jobs=[{"jid": j, "jobtype": "Hello", "args": [1, "two", {"x": None}]}])
    assert r == {"jids": [j]}
    w = node(server, "work", behavior={"Hello": "ok"}, until={"count": 1})
    assert [s["jid"] for s in w["seen"]] == [j]
    assert w["seen"][0]["args"] == [1, "two", {"x": None}]
    done = server.wait_finished(j)
    assert done["state"] == "completed" and done["type"] == "Hello" and done["queue"] == "default"
    assert done["faktory"]["retry"] == 25


def test_fail_retries_with_the_failure_object_then_dead(server):
    j = jid()
    node(server, "push", jobs=[{"jid": j, "jobtype": "Boom", "args": [], "retry": 2, "custom": FAST}])
    w = node(server, "work", behavior={"Boom": "fail"}, until={"count": 3})
    seen = [s for s in w["seen"] if s["jid"] == j]
    assert len(seen) == 3, w
    assert seen[0]["failure"] is None
    for n, s in enumerate(seen[1:]):
        f = s["failure"]
        assert f["retry_count"] == n and f["remaining"] == 2 - n, f
        assert f["message"] == f"boom {j}" and f["errtype"], f
        assert f["failed_at"] and isinstance(f["backtrace"], list) and f["backtrace"], f
    assert seen[1]["custom"] == FAST  # custom comes back as pushed
    done = server.wait_finished(j)
    assert done["state"] == "failed" and done["attempts"] == 3 and len(done["errors"]) == 3
    assert done["errors"][-1]["context"]["backtrace"]
    assert info(server)["faktory"]["tasks"]["Dead"]["size"] == 1


def test_retry_zero_drops_the_job_when_it_fails(server):
    j = jid()
    node(server, "push", jobs=[{"jid": j, "jobtype": "Boom", "args": [], "retry": 0}])
    w = node(server, "work", behavior={"Boom": "fail"}, until={"count": 1})
    assert len(w["seen"]) == 1
    deadline = time.time() + 10
    while server.get(f"/v1/jobs/{j}").status_code != 404:
        assert time.time() < deadline, server.get(f"/v1/jobs/{j}").text
        time.sleep(0.05)
    i = info(server)["faktory"]
    assert i["sets"]["dead"] == 0 and i["total_failures"] == 1


def test_retry_minus_one_goes_straight_to_dead(server):
    j = jid()
    node(server, "push", jobs=[{"jid": j, "jobtype": "Boom", "args": [], "retry": -1}])
    node(server, "work", behavior={"Boom": "fail"}, until={"count": 1})
    done = server.wait_finished(j)
    assert done["state"] == "failed" and done["attempts"] == 1


def test_at_in_the_future_is_scheduled(server):
    j = jid()
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 4)) + ".000Z"
    node(server, "push", jobs=[{"jid": j, "jobtype": "Later", "args": [], "at": at}])
    assert server.job(j)["state"] == "pending"
    assert info(server)["faktory"]["sets"]["scheduled"] == 1
    early = node(server, "work", behavior={"Later": "ok"}, until={"ms": 500})
    assert early["seen"] == []
    late = node(server, "work", behavior={"Later": "ok"}, until={"count": 1, "ms": 10000})
    assert [s["jid"] for s in late["seen"]] == [j]
    assert server.wait_finished(j)["state"] == "completed"


def test_a_worker_with_concurrency_5_works_500_jobs(server):
    jobs = [{"jid": jid("c"), "jobtype": "Small", "args": [i]} for i in range(500)]
    for k in range(0, 500, 250):
        assert node(server, "pushb", jobs=jobs[k:k + 250]) == {"rejected": {}}
    w = node(server, "work", behavior={"Small": "sleep:2"}, concurrency=5,
             until={"count": 500, "ms": 60000}, timeout=90)
    assert len({s["jid"] for s in w["seen"]}) == 500
    deadline = time.time() + 15
    while True:
        q = server.get("/v1/stats").json()
        if q["totals"].get("completed") == 500:
            break
        assert time.time() < deadline, q
        time.sleep(0.1)


def test_beat_quiet_and_terminate_from_the_http_api(server):
    import threading
    results = {}

    def run(name, **kw):
        results[name] = node(server, "work", behavior={"T": "ok"}, wid=name, beatInterval=1,
                             **kw)

    t = threading.Thread(target=run, args=("wq",), kwargs={"until": {"quiet": True, "ms": 15000}})
    t.start()
    _wait_worker(server, "wq")
    r = server.post("/v1/workers/wq/quiet")
    assert r.status_code == 200 and r.json()["state"] == "quiet", r.text
    t.join(30)
    assert results["wq"]["quieted"] is True, results
    # A quiet worker is handed nothing: the job waits for another worker.
    j = jid()
    node(server, "push", jobs=[{"jid": j, "jobtype": "T", "args": []}])
    c = connect(server, wid="wq")
    t0 = time.time()
    assert c.cmd("FETCH default") is None and time.time() - t0 > 1.5
    c.close()
    assert server.job(j)["state"] == "queued"
    t = threading.Thread(target=run, args=("wt",), kwargs={"until": {"ms": 15000}})
    t.start()
    _wait_worker(server, "wt")
    assert server.post("/v1/workers/wt/terminate").status_code == 200
    t.join(30)
    assert results["wt"]["terminated"] is True, results
    w = {x["id"]: x for x in server.get("/v1/workers").json()["workers"]}
    assert w["wq"]["protocol"] == "faktory" and w["wq"]["state"] == "quiet"
    assert w["wt"]["state"] == "terminate"
    assert server.post("/v1/workers/nobody/quiet").status_code == 404


def _wait_worker(server, wid, timeout=10):
    deadline = time.time() + timeout
    while not any(w["id"] == wid and w.get("protocol") == "faktory"
                  for w in server.get("/v1/workers").json()["workers"]):
        assert time.time() < deadline, server.get("/v1/workers").text
        time.sleep(0.05)
