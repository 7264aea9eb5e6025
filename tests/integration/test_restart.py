"""Restart and recovery: every state survives; a running job keeps its lease
and is requeued (its attempt counted) once the lease deadline passes."""
import time

import pytest


def build_every_state(server):
    ids = {}
    ids["pending"] = server.enqueue(id="pending", delay_ms=600000)["id"]
    ids["completed"] = server.enqueue(id="completed", priority="critical")["id"]
    ids["failed"] = server.enqueue(id="failed", priority="critical", max_retries=0)["id"]
    ids["retrying"] = server.enqueue(id="retrying", priority="critical",
                                     backoff={"initial_ms": 600000, "jitter": 0})["id"]
    ids["running"] = server.enqueue(id="running", priority="high", timeout_ms=3000,
                                    backoff={"initial_ms": 0, "jitter": 0})["id"]
    ids["cancelled"] = server.enqueue(id="cancelled")["id"]
    ids["queued"] = server.enqueue(id="queued", priority="low", args={"keep": [1, 2]})["id"]
    leased = {j["id"]: j for j in server.lease(max=4)}
    assert set(leased) == {"completed", "failed", "retrying", "running"}
    server.post("/v1/jobs/completed/complete", {"lease_id": leased["completed"]["lease_id"], "result": "r"})
    server.post("/v1/jobs/failed/fail", {"lease_id": leased["failed"]["lease_id"], "error": {"type": "internal"}})
    server.post("/v1/jobs/retrying/fail", {"lease_id": leased["retrying"]["lease_id"], "error": {"type": "timeout"}})
    server.post("/v1/jobs/cancelled/cancel")
    before = {k: server.job(k) for k in ids}
    for state, job in before.items():
        assert job["state"] == state
    return before, leased["running"]["lease_id"]


@pytest.mark.cluster_differs("a restarted node is a new node: its leases are void")
@pytest.mark.parametrize("how", ["graceful", "sigkill"])
def test_every_state_survives_restart(make_server, how):
    server = make_server()
    before, lease_id = build_every_state(server)
    if how == "graceful":
        assert server.stop() == 0
    else:
        server.kill()
    server.start()
    after = {k: server.job(k) for k in before}
    assert after == before
    assert server.get("/v1/stats").json()["totals"]["enqueued"] == 7
    # The lease survives: the worker that held it can still finish.
    r = server.post("/v1/jobs/running/heartbeat", {"lease_id": lease_id})
    assert r.status_code == 200
    assert [j["id"] for j in server.lease(max=5)] == ["queued"]


@pytest.mark.cluster_differs("a restarted node is a new node: its running jobs are retried at once")
def test_running_job_requeued_after_its_lease_deadline(make_server):
    server = make_server()
    server.enqueue(id="r", timeout_ms=2000, backoff={"initial_ms": 0, "jitter": 0})
    first = server.lease(worker="dies")[0]
    # A lease reply does not wait for its commit (a lost lease only requeues
    # the job); a heartbeat does, and commits are ordered, so after it the
    # lease is on disk.
    assert server.post("/v1/jobs/r/heartbeat", {"lease_id": first["lease_id"], "extend_ms": 2000}).status_code == 200
    server.kill()
    server.start()
    job = server.job("r")
    assert job["state"] == "running" and job["lease"]["worker"] == "dies"
    deadline = first["lease"]["expires_at"]
    again = server.lease(worker="next", wait_ms=8000)
    assert [j["id"] for j in again] == ["r"]
    assert again[0]["attempts"] == 2
    assert again[0]["started_at"] >= deadline
    errors = server.job("r")["errors"]
    assert len(errors) == 1 and errors[0]["type"] == "timeout" and errors[0]["worker"] == "dies"


def test_scheduled_job_fires_after_restart(make_server):
    server = make_server()
    server.enqueue(id="soon", delay_ms=1500)
    assert server.stop() == 0
    time.sleep(0.2)
    server.start()
    assert server.lease() == []
    assert [j["id"] for j in server.lease(wait_ms=5000)] == ["soon"]


@pytest.mark.cluster_differs("a stopping node hands its running jobs over (retried)")
def test_sigterm_answers_long_polls_and_exits_cleanly(make_server):
    import threading
    server = make_server()
    server.enqueue(id="kept")
    server.lease()
    out = {}

    def poll():
        out["jobs"] = server.lease(worker="lp", wait_ms=30000)

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.3)
    t = time.monotonic()
    assert server.stop() == 0
    th.join(5)
    assert out.get("jobs") == [] and time.monotonic() - t < 10
    lines = server.log_lines()
    assert any(l["msg"] == "shutting down" for l in lines)
    assert any(l["msg"] == "stopped" for l in lines)
    server.start()
    assert server.job("kept")["state"] == "running"


def test_logs_are_json_lines(make_server):
    server = make_server()
    server.get("/health/live")
    assert server.stop() == 0
    lines = server.log_text().splitlines()
    assert lines
    import json
    for line in lines:
        obj = json.loads(line)
        assert obj["ts"].endswith("Z") and len(obj["ts"]) == 24
        assert obj["level"] in ("debug", "info", "warn", "error") and obj["msg"]


def test_store_failure_refuses_writes_then_recovers_losing_nothing(make_server):
    """While commits fail (the fault seam stands in for a full or broken
    disk), ready is 503 naming the store, new writes get 503, the request
    already waiting is answered once the commit succeeds, and nothing is lost."""
    import threading
    server = make_server(env={"JOBQ_FAULT_COMMIT_FAIL_MS": "2500"})
    out = {}

    def first():
        out["r"] = server.post("/v1/jobs", {"id": "waits", "type": "t"}, timeout=30)

    th = threading.Thread(target=first)
    th.start()
    deadline = time.time() + 5
    while time.time() < deadline and server.get("/health/ready").status_code == 200:
        time.sleep(0.05)
    ready = server.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["type"] == "unavailable" and ready.json()["field"] == "store"
    refused = server.post("/v1/jobs", {"id": "refused", "type": "t"})
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    assert th.is_alive()  # not answered before its write is durable
    th.join(20)
    assert out["r"].status_code == 201
    assert server.get("/health/ready").status_code == 200
    assert server.restart().job("waits")["state"] == "queued"
    assert server.get("/v1/jobs/refused").status_code == 404
