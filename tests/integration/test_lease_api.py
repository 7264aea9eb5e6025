"""Workers: lease order, long polls, fencing, heartbeats, failures and
retries through to `failed`, lease expiry, batched ack."""
import threading
import time

from conftest import assert_problem


def test_strict_priority_then_fifo_within_a_queue(server):
    names = ["n1", "low", "c1", "n2", "bg", "h1", "c2"]
    prios = ["normal", "low", "critical", "normal", "background", "high", "critical"]
    for n, p in zip(names, prios):
        server.enqueue(id=n, priority=p)
    got = [j["id"] for j in server.lease(max=10)]
    assert got == ["c1", "c2", "h1", "n1", "n2", "low", "bg"]


def test_lease_across_queues_and_defaults(server):
    server.enqueue(id="a", queue="q1")
    server.enqueue(id="b", queue="q2", priority="high")
    server.enqueue(id="c")
    assert [j["id"] for j in server.lease(queues=["q1", "q2"], max=5)] == ["b", "a"]
    leased = server.lease()
    assert [j["id"] for j in leased] == ["c"]
    j = leased[0]
    assert j["state"] == "running" and j["attempts"] == 1 and len(j["lease_id"]) == 32
    assert j["lease"]["worker"] == "w1" and j["lease"]["expires_at"]
    assert "lease_id" not in server.job("c")
    assert "id" not in server.job("c")["lease"]


def test_long_poll_answers_when_a_job_arrives(server):
    result = {}

    def poll():
        t = time.monotonic()
        result["jobs"] = server.lease(worker="lp", wait_ms=10000)
        result["elapsed"] = time.monotonic() - t

    th = threading.Thread(target=poll)
    th.start()
    time.sleep(0.5)
    assert th.is_alive()
    server.enqueue(id="wake")
    th.join(10)
    assert not th.is_alive()
    assert [j["id"] for j in result["jobs"]] == ["wake"]
    assert 0.4 < result["elapsed"] < 5


def test_long_poll_times_out_empty(server):
    t = time.monotonic()
    assert server.lease(wait_ms=700) == []
    elapsed = time.monotonic() - t
    assert 0.6 < elapsed < 5


def test_scheduled_job_not_leased_early(server):
    run_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    j = server.enqueue(run_at=run_at)
    assert j["state"] == "pending"
    assert server.lease() == []
    got = server.lease(wait_ms=6000)
    assert [x["id"] for x in got] == [j["id"]]
    assert got[0]["started_at"] >= run_at[:19]


def test_complete_with_result_and_fencing(server):
    j = server.enqueue()
    lease = server.lease()[0]
    bad = server.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": "0" * 32})
    assert_problem(bad, 409, "conflict", "lease_id")
    r = server.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": lease["lease_id"], "result": {"ok": 1}})
    assert r.status_code == 200
    done = r.json()
    assert done["state"] == "completed" and done["result"] == {"ok": 1} and done["finished_at"]
    assert done["lease"] is None
    again = server.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": lease["lease_id"]})
    assert_problem(again, 409, "conflict")


def test_retries_with_backoff_then_failed_history_intact(server):
    j = server.enqueue(max_retries=2, backoff={"initial_ms": 200, "max_ms": 1000, "multiplier": 2, "jitter": 0})
    types = ["unavailable", "timeout", "internal"]
    for attempt, t in enumerate(types, start=1):
        lease = server.lease(wait_ms=5000)
        assert len(lease) == 1 and lease[0]["attempts"] == attempt
        r = server.post(f"/v1/jobs/{j['id']}/fail", {"lease_id": lease[0]["lease_id"],
                        "error": {"type": t, "message": f"m{attempt}", "context": {"n": attempt}}})
        assert r.status_code == 200, r.text
        state = r.json()["state"]
        assert state == ("retrying" if attempt < 3 else "failed")
    final = server.job(j["id"])
    assert [e["attempt"] for e in final["errors"]] == [1, 2, 3]
    assert [e["type"] for e in final["errors"]] == types
    assert final["errors"][1]["context"] == {"n": 2}
    assert all(e["worker"] == "w1" and e["at"] for e in final["errors"])
    assert server.get("/v1/stats").json()["totals"]["failed"] == 1


def test_backoff_delay_is_respected(server):
    j = server.enqueue(backoff={"initial_ms": 1500, "jitter": 0})
    lease = server.lease()[0]
    r = server.post(f"/v1/jobs/{j['id']}/fail", {"lease_id": lease["lease_id"], "error": {"type": "unavailable"}})
    assert r.json()["state"] == "retrying"
    assert server.lease(wait_ms=800) == []
    assert len(server.lease(wait_ms=3000)) == 1


def test_non_retryable_types_and_forced_retry_flag(server):
    for t in ["validation", "unauthorized", "not_found", "conflict"]:
        j = server.enqueue()
        lease = server.lease()[0]
        r = server.post(f"/v1/jobs/{j['id']}/fail", {"lease_id": lease["lease_id"], "error": {"type": t}})
        assert r.json()["state"] == "failed", t
    j = server.enqueue()
    lease = server.lease()[0]
    r = server.post(f"/v1/jobs/{j['id']}/fail", {"lease_id": lease["lease_id"], "retry": False,
                                                  "error": {"type": "unavailable"}})
    assert r.json()["state"] == "failed"
    j = server.enqueue()
    lease = server.lease()[0]
    r = server.post(f"/v1/jobs/{j['id']}/fail", {"lease_id": lease["lease_id"], "retry": True,
                                                  "error": {"type": "validation"}})
    assert r.json()["state"] == "retrying"


def test_lease_expiry_is_a_timeout_and_fences_the_old_worker(server):
    j = server.enqueue(timeout_ms=1000, backoff={"initial_ms": 0, "jitter": 0})
    old = server.lease(worker="slow")[0]
    new = server.lease(worker="fast", wait_ms=5000)
    assert [x["id"] for x in new] == [j["id"]]
    assert new[0]["attempts"] == 2
    errors = server.job(j["id"])["errors"]
    assert errors[0]["type"] == "timeout" and errors[0]["worker"] == "slow"
    late = server.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": old["lease_id"]})
    assert_problem(late, 409, "conflict", "lease_id")
    ok = server.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": new[0]["lease_id"]})
    assert ok.json()["state"] == "completed"


def test_heartbeat_extends_and_reports_progress(server):
    j = server.enqueue(timeout_ms=1000)
    lease = server.lease()[0]
    for _ in range(3):
        time.sleep(0.6)
        r = server.post(f"/v1/jobs/{j['id']}/heartbeat",
                        {"lease_id": lease["lease_id"], "progress": {"pct": 50}, "extend_ms": 1000})
        assert r.status_code == 200
        assert r.json()["cancel_requested"] is False and r.json()["expires_at"]
    job = server.job(j["id"])
    assert job["state"] == "running" and job["progress"] == {"pct": 50} and job["attempts"] == 1
    assert_problem(server.post(f"/v1/jobs/{j['id']}/heartbeat", {"lease_id": "x"}), 409, "conflict")
    assert_problem(server.post(f"/v1/jobs/{j['id']}/heartbeat", {"lease_id": lease["lease_id"], "extend_ms": 5}),
                   400, "validation", "extend_ms")


def test_batched_ack(server):
    for i in range(4):
        server.enqueue(id=f"a{i}", max_retries=0)
    leased = server.lease(max=4)
    results = [
        {"id": leased[0]["id"], "lease_id": leased[0]["lease_id"], "result": 1},
        {"id": leased[1]["id"], "lease_id": leased[1]["lease_id"], "error": {"type": "internal", "message": "x"}},
        {"id": leased[2]["id"], "lease_id": "stale"},
        {"id": "missing", "lease_id": "x"},
    ]
    r = server.post("/v1/ack", {"results": results})
    assert r.status_code == 200
    out = r.json()["results"]
    assert out[0] == {"id": "a0", "ok": True, "state": "completed"}
    assert out[1] == {"id": "a1", "ok": True, "state": "failed"}
    assert out[2]["ok"] is False and out[2]["error"]["type"] == "conflict"
    assert out[3]["ok"] is False and out[3]["error"]["type"] == "not_found"
    bad = server.post("/v1/ack", {"results": [results[0], {"id": "a3"}]})
    assert_problem(bad, 400, "validation", "results[1].")
    bad = server.post("/v1/ack", {"results": [{"id": "a3", "lease_id": "x", "error": {"type": "nope"}}]})
    assert_problem(bad, 400, "validation", "results[0].error.type")


def test_lease_validation(server):
    assert_problem(server.post("/v1/lease", {}), 400, "validation", "worker")
    assert_problem(server.post("/v1/lease", {"worker": "w", "max": 101}), 400, "validation", "max")
    assert_problem(server.post("/v1/lease", {"worker": "w", "wait_ms": 60001}), 400, "validation", "wait_ms")
    assert_problem(server.post("/v1/lease", {"worker": "w", "queues": []}), 400, "validation", "queues")
    assert_problem(server.post("/v1/lease", {"worker": "w", "queues": ["a b"]}), 400, "validation", "queues")
    assert_problem(server.post("/v1/lease", {"worker": "w", "extra": 1}), 400, "validation", "extra")


def test_fail_validation(server):
    j = server.enqueue()
    lease = server.lease()[0]
    path = f"/v1/jobs/{j['id']}/fail"
    assert_problem(server.post(path, {"lease_id": lease["lease_id"]}), 400, "validation", "error")
    assert_problem(server.post(path, {"lease_id": lease["lease_id"], "error": {"type": "boom"}}),
                   400, "validation", "error.type")
    assert_problem(server.post(path, {"lease_id": lease["lease_id"], "error": {"type": "internal", "x": 1}}),
                   400, "validation", "error.x")
    assert_problem(server.post(path, {"error": {"type": "internal"}}), 400, "validation", "lease_id")
    assert server.job(j["id"])["state"] == "running"


def test_gone_long_poll_gets_no_jobs(server):
    """A worker that hangs up while long-polling must not swallow a job
    (regression: its job used to wait out a whole lease)."""
    import socket
    host, port = server.url.replace("http://", "").split(":")
    body = b'{"worker":"gone","wait_ms":30000}'
    s = socket.create_connection((host, int(port)), timeout=5)
    s.sendall(b"POST /v1/lease HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    time.sleep(0.3)
    s.close()
    time.sleep(0.2)
    server.enqueue(id="for-the-living")
    got = server.lease(worker="alive", wait_ms=2000)
    assert [j["id"] for j in got] == ["for-the-living"]
    assert got[0]["attempts"] == 1


MINIMAL = {"Prefer": "return=minimal"}


def test_prefer_return_minimal_gives_the_short_forms(server):
    """RFC 7240: with Prefer: return=minimal, an enqueue answers id and state
    and a lease what a worker needs; the jobs themselves are whole."""
    r = server.post("/v1/jobs", {"type": "t", "args": {"n": 1}, "priority": "high"},
                    headers=MINIMAL)
    assert r.status_code == 201 and r.headers["Preference-Applied"] == "return=minimal"
    one = r.json()
    assert set(one) == {"id", "state"} and one["state"] == "queued"
    r = server.post("/v1/jobs/batch", {"jobs": [{"type": "u", "args": [2]}, {"type": "v"}]},
                    headers={"Prefer": "respond-async; wait=5, return=minimal"})
    assert r.status_code == 201 and r.headers["Preference-Applied"] == "return=minimal"
    assert [set(j) for j in r.json()["jobs"]] == [{"id", "state"}] * 2
    assert server.job(one["id"])["priority"] == "high"  # stored whole
    r = server.post("/v1/lease", {"worker": "w", "max": 3}, headers=MINIMAL)
    assert r.headers["Preference-Applied"] == "return=minimal"
    jobs = r.json()["jobs"]
    assert [set(j) for j in jobs] == [{"id", "state", "queue", "type", "args", "attempts",
                                       "lease_expires_at", "lease_id"}] * 3
    assert jobs[0]["id"] == one["id"] and jobs[0]["args"] == {"n": 1}
    assert jobs[0]["attempts"] == 1 and jobs[0]["state"] == "running"
    for j in jobs:
        assert server.post(f"/v1/jobs/{j['id']}/complete",
                           {"lease_id": j["lease_id"]}).status_code == 200
    # Any other preference, or none, gets the full form and no Preference-Applied.
    for h in ({"Prefer": "return=representation"}, {"Prefer": "return=minimalist"}, {}):
        r = server.post("/v1/jobs", {"type": "t"}, headers=h)
        assert "Preference-Applied" not in r.headers and "created_at" in r.json()
