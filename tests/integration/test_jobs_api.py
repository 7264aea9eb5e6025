"""The /v1/jobs contract: enqueue, idempotency, batch, read, list, cancel,
retry, delete."""
import time

import pytest

from conftest import assert_problem


def test_enqueue_defaults_and_read_back(server):
    r = server.post("/v1/jobs", {"type": "email", "args": {"to": "a@b"}})
    assert r.status_code == 201
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-Request-Id"]
    job = r.json()
    assert job["queue"] == "default" and job["priority"] == "normal"
    assert job["state"] == "queued" and job["attempts"] == 0
    assert job["max_retries"] == 3 and job["timeout_ms"] == 60000
    assert job["backoff"] == {"initial_ms": 1000, "max_ms": 3600000, "multiplier": 2.0, "jitter": 0.2}
    assert job["errors"] == [] and job["lease"] is None and job["cancel_requested"] is False
    assert len(job["id"]) == 32
    assert job["created_at"].endswith("Z")
    got = server.job(job["id"])
    assert got.pop("blocked_by") is None  # only GET says why a job waits
    assert got == job


def test_idempotent_replay_and_conflict(server):
    spec = {"id": "order-42", "type": "charge", "args": {"amount": 5}, "priority": "high"}
    first = server.post("/v1/jobs", spec)
    assert first.status_code == 201
    again = server.post("/v1/jobs", spec)
    assert again.status_code == 200
    assert again.json() == first.json()
    different = server.post("/v1/jobs", dict(spec, args={"amount": 6}))
    assert_problem(different, 409, "conflict", "id")
    assert server.job("order-42")["args"] == {"amount": 5}


def test_replay_of_finished_job_after_restart(server):
    job = server.enqueue(id="done-1")
    leased = server.lease()[0]
    server.post(f"/v1/jobs/{job['id']}/complete", {"lease_id": leased["lease_id"]})
    server.restart()
    r = server.post("/v1/jobs", {"id": "done-1", "type": "t"})
    assert r.status_code == 200 and r.json()["state"] == "completed"
    assert_problem(server.post("/v1/jobs", {"id": "done-1", "type": "other"}), 409, "conflict", "id")


def wait_for_id_filter(server):
    deadline = time.time() + 10
    while time.time() < deadline:
        if any(l.get("msg") == "filter of stored ids ready" for l in server.log_lines()):
            return
        time.sleep(0.05)
    raise AssertionError("the filter of stored ids never became ready")


@pytest.mark.sqlite_only
def test_the_id_filter_never_hides_a_stored_job(make_server):
    """An enqueue or read of an id the filter of stored ids says was never
    stored asks nothing of the database: every id it holds, from before the
    restart (its scan) and since (its writes), must still be found, with
    finished jobs kept out of memory so that only the store has them."""
    server = make_server(env={"JOBQ_FINISHED_IN_MEMORY": "0"})

    def finish(n, prefix):
        for i in range(n):
            server.enqueue(id=f"{prefix}-{i}", queue=prefix)
            [j] = server.lease(queues=[prefix])
            assert server.post(f"/v1/jobs/{j['id']}/complete",
                               {"lease_id": j["lease_id"]}).status_code == 200

    finish(30, "before")
    server.restart()
    wait_for_id_filter(server)
    system = server.get("/v1/perf").json()["system"]
    assert system["id_filter_ready"] is True and system["id_filter_bytes"] > 0
    finish(30, "after")
    for prefix in ("before", "after"):
        for i in range(30):
            r = server.post("/v1/jobs", {"id": f"{prefix}-{i}", "type": "t", "queue": prefix})
            assert r.status_code == 200 and r.json()["state"] == "completed", (prefix, i, r.text)
            assert server.get(f"/v1/jobs/{prefix}-{i}").status_code == 200
    assert_problem(server.get("/v1/jobs/never-stored"), 404, "not_found", "id")
    assert_problem(server.post("/v1/jobs/never-stored/cancel"), 404, "not_found", "id")
    assert server.post("/v1/jobs", {"id": "never-stored", "type": "t"}).status_code == 201


def test_priority_names_and_numbers(server):
    for p, name in [(0, "critical"), (1, "high"), (2, "normal"), (3, "low"), (4, "background")]:
        assert server.enqueue(priority=p)["priority"] == name
        assert server.enqueue(priority=name)["priority"] == name


def test_batch_is_all_or_nothing(server):
    r = server.post("/v1/jobs/batch", {"jobs": [{"type": "a"}, {"type": "b", "priority": 9}]})
    body = assert_problem(r, 400, "validation", "jobs[1].priority")
    assert "priority" in body["detail"]
    assert server.get("/v1/jobs").json()["jobs"] == []
    r = server.post("/v1/jobs/batch", {"jobs": [{"type": "a", "id": "x1"}, {"type": "b"}]})
    assert r.status_code == 201
    jobs = r.json()["jobs"]
    assert [j["type"] for j in jobs] == ["a", "b"]
    # One conflicting id rejects the whole batch, naming its index.
    r = server.post("/v1/jobs/batch", {"jobs": [{"type": "c"}, {"type": "zzz", "id": "x1"}]})
    assert_problem(r, 409, "conflict", "jobs[1].id")
    assert len(server.get("/v1/jobs").json()["jobs"]) == 2
    assert_problem(server.post("/v1/jobs/batch", {"jobs": []}), 400, "validation", "jobs")
    assert_problem(server.post("/v1/jobs/batch", {"jobs": [{"type": "a"}] * 1001}), 400, "validation", "jobs")


def test_get_missing_and_bad_id(server):
    assert_problem(server.get("/v1/jobs/nope"), 404, "not_found")
    assert_problem(server.get("/v1/jobs/bad%20id"), 400, "validation", "id")


def test_list_newest_first_with_filters_and_cursor(server):
    ids = []
    for i in range(7):
        ids.append(server.enqueue(queue="qa" if i % 2 else "qb", type=f"t{i % 3}")["id"])
        time.sleep(0.002)
    page = server.get("/v1/jobs?limit=3").json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:3]
    seen = [j["id"] for j in page["jobs"]]
    while page["next_cursor"]:
        page = server.get(f"/v1/jobs?limit=3&cursor={page['next_cursor']}").json()
        seen += [j["id"] for j in page["jobs"]]
    assert seen == ids[::-1]
    qa = server.get("/v1/jobs?queue=qa").json()["jobs"]
    assert {j["id"] for j in qa} == {ids[i] for i in (1, 3, 5)}
    t0 = server.get("/v1/jobs?type=t0&state=queued").json()["jobs"]
    assert {j["id"] for j in t0} == {ids[i] for i in (0, 3, 6)}
    assert server.get("/v1/jobs?state=completed").json() == {"jobs": [], "next_cursor": None}
    assert_problem(server.get("/v1/jobs?limit=0"), 400, "validation", "limit")
    assert_problem(server.get("/v1/jobs?limit=1001"), 400, "validation", "limit")
    assert_problem(server.get("/v1/jobs?state=lost"), 400, "validation", "state")
    assert_problem(server.get("/v1/jobs?cursor=xyz"), 400, "validation", "cursor")


def test_a_page_of_large_jobs_ends_at_its_byte_bound(server):
    """40 jobs of ~900 KB: a page of 1000 stops at 16 MiB of stored jobs
    (at least one job) with a cursor, and the pages hold them all once."""
    blob = "".join(f"{i:07d}" for i in range(128 * 1024))[:900_000]
    for i in range(40):
        server.enqueue(id=f"big{i:02d}", queue="bq", args={"b": blob})
    page = server.get("/v1/jobs?queue=bq&limit=1000", timeout=60).json()
    assert 1 <= len(page["jobs"]) <= 18 and page["next_cursor"], len(page["jobs"])
    assert page["jobs"][0]["args"] == {"b": blob}
    seen = [j["id"] for j in page["jobs"]]
    while page["next_cursor"]:
        page = server.get(f"/v1/jobs?queue=bq&limit=1000&cursor={page['next_cursor']}",
                          timeout=60).json()
        seen += [j["id"] for j in page["jobs"]]
    assert seen == [f"big{i:02d}" for i in range(39, -1, -1)]


def test_cancel_each_state(server):
    queued = server.enqueue()
    pending = server.enqueue(delay_ms=60000)
    assert pending["state"] == "pending"
    for j in (queued, pending):
        r = server.post(f"/v1/jobs/{j['id']}/cancel")
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        assert r.json()["finished_at"] is not None
        assert_problem(server.post(f"/v1/jobs/{j['id']}/cancel"), 409, "conflict")
    running = server.enqueue()
    lease = server.lease()[0]
    r = server.post(f"/v1/jobs/{running['id']}/cancel")
    assert r.json()["state"] == "running" and r.json()["cancel_requested"] is True
    hb = server.post(f"/v1/jobs/{running['id']}/heartbeat", {"lease_id": lease["lease_id"]})
    assert hb.json()["cancel_requested"] is True
    r = server.post(f"/v1/jobs/{running['id']}/fail",
                    {"lease_id": lease["lease_id"], "error": {"type": "internal", "message": "stopped"}})
    assert r.json()["state"] == "cancelled"
    assert_problem(server.post("/v1/jobs/ghost/cancel"), 404, "not_found")


def test_retry_failed_and_cancelled_keeps_history(server):
    j = server.enqueue(max_retries=0)
    lease = server.lease()[0]
    server.post(f"/v1/jobs/{j['id']}/fail",
                {"lease_id": lease["lease_id"], "error": {"type": "internal", "message": "boom"}})
    assert server.job(j["id"])["state"] == "failed"
    r = server.post(f"/v1/jobs/{j['id']}/retry")
    assert r.status_code == 200
    assert r.json()["state"] == "queued" and r.json()["attempts"] == 0
    assert r.json()["errors"][0]["message"] == "boom"
    assert_problem(server.post(f"/v1/jobs/{j['id']}/retry"), 409, "conflict")
    assert server.lease()[0]["id"] == j["id"]


def test_delete_only_finished(server):
    j = server.enqueue()
    assert_problem(server.req("DELETE", f"/v1/jobs/{j['id']}"), 409, "conflict")
    server.post(f"/v1/jobs/{j['id']}/cancel")
    r = server.req("DELETE", f"/v1/jobs/{j['id']}")
    assert r.status_code == 204 and r.text == ""
    assert_problem(server.get(f"/v1/jobs/{j['id']}"), 404, "not_found")
    assert_problem(server.req("DELETE", f"/v1/jobs/{j['id']}"), 404, "not_found")


def test_queues_pause_resume_and_stats(server):
    server.enqueue(queue="mail")
    server.enqueue(queue="mail")
    server.enqueue(queue="sms")
    assert server.post("/v1/queues/mail/pause").json() == {"name": "mail", "paused": True}
    assert server.lease(queues=["mail"]) == []
    queues = {q["name"]: q for q in server.get("/v1/queues").json()["queues"]}
    assert queues["mail"]["paused"] is True and queues["mail"]["counts"]["queued"] == 2
    assert queues["sms"]["paused"] is False and queues["sms"]["counts"]["queued"] == 1
    server.restart()
    assert server.lease(queues=["mail"]) == []
    server.post("/v1/queues/mail/resume")
    assert len(server.lease(queues=["mail"], max=5)) == 2
    stats = server.get("/v1/stats").json()
    assert stats["counts"]["queued"] == 1 and stats["counts"]["running"] == 2
    assert stats["totals"]["enqueued"] == 3


def test_health(server):
    assert server.get("/health/live").json() == {"status": "ok"}
    assert server.get("/health/ready").json() == {"status": "ready"}


def test_request_id_is_echoed(server):
    r = server.get("/v1/jobs/none", headers={"X-Request-Id": "trace-123"})
    assert r.headers["X-Request-Id"] == "trace-123"
    assert r.json()["request_id"] == "trace-123"


def test_health_detail_per_component(server):
    r = server.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert {k: v["status"] for k, v in body["components"].items()} == \
        {"store": "ok", "disk": "ok", "shutdown": "ok", "loop": "ok", "memory": "ok"}
    assert 0 <= body["components"]["memory"]["used_bytes"] < body["components"]["memory"]["limit_bytes"]
    assert body["components"]["disk"]["free_bytes"] > 0


def test_low_disk_fails_readiness_naming_the_component(make_server):
    server = make_server(env={"JOBQ_MIN_FREE_DISK_BYTES": str(10**15)})
    ready = assert_problem(server.get("/health/ready"), 503, "unavailable", "disk")
    assert "JOBQ_MIN_FREE_DISK_BYTES" in ready["detail"]
    r = server.get("/health")
    assert r.status_code == 503
    assert r.json()["components"]["disk"]["status"] == "failing"
    assert server.get("/health/live").status_code == 200
