"""POST /v1/jobs/bulk: one server-side action on every job matching a
filter, with progress, a dry run, cancellation and roles."""
import time

from conftest import assert_problem

ADMIN = "adm-0123456789abcdef0123"
PRODUCER = "prd-0123456789abcdef0123"


def wait_bulk(server, location, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        b = server.get(location).json()
        if b["state"] in ("done", "cancelled", "failed"):
            return b
        time.sleep(0.05)
    raise AssertionError(f"bulk still {b}")


def failed_jobs(server, queue, n, message="boom"):
    for start in range(0, n, 1000):
        r = server.post("/v1/jobs/batch", {"jobs": [{"queue": queue, "type": "t", "max_retries": 0,
                                                     "args": {"i": i}}
                                                    for i in range(start, min(n, start + 1000))]})
        assert r.status_code == 201, r.text
    left = n
    while left:
        jobs = server.lease(queues=[queue], max=min(100, left))
        assert jobs, f"{left} jobs of {queue} left to fail, none to lease"
        for j in jobs:
            r = server.post(f"/v1/jobs/{j['id']}/fail", {"lease_id": j["lease_id"],
                            "error": {"type": "validation", "message": message}})
            assert r.status_code == 200
        left -= len(jobs)


def test_retry_all_matching_requeues_every_one_even_those_memory_let_go(make_server):
    # Few finished jobs stay in memory: most must be loaded from the store.
    server = make_server(env={"JOBQ_FINISHED_IN_MEMORY": "10"})
    failed_jobs(server, "bq", 1200)
    failed_jobs(server, "other", 5)
    r = server.post("/v1/jobs/bulk", {"filter": {"queue": "bq", "state": "failed"},
                                      "action": "retry", "dry_run": True})
    assert r.status_code == 202, r.text
    dry = wait_bulk(server, r.headers["Location"])
    assert dry["state"] == "done" and dry["matched"] == 1200 and dry["changed"] == 0
    assert server.get("/v1/stats").json()["queues"]["bq"]["counts"]["failed"] == 1200
    r = server.post("/v1/jobs/bulk", {"filter": {"queue": "bq", "state": "failed"},
                                      "action": "retry"})
    b = wait_bulk(server, r.headers["Location"])
    assert (b["state"], b["matched"], b["processed"], b["changed"], b["skipped"],
            b["progress"]) == ("done", 1200, 1200, 1200, 0, 1.0)
    counts = server.get("/v1/stats").json()["queues"]
    assert counts["bq"]["counts"].get("queued") == 1200 and counts["bq"]["counts"].get("failed", 0) == 0
    assert counts["other"]["counts"]["failed"] == 5  # outside the filter
    # Durable: a restart finds them queued.
    assert b["id"] in {x["id"] for x in server.get("/v1/bulk").json()["bulk"]}
    server.restart()
    assert server.get("/v1/stats").json()["queues"]["bq"]["counts"]["queued"] == 1200


def test_text_filter_cancel_and_delete(make_server):
    server = make_server()
    for i in range(30):
        server.enqueue(id=f"t{i}", queue="tq", args={"kind": "needle" if i < 10 else "hay"})
    r = server.post("/v1/jobs/bulk", {"filter": {"text": "needle"}, "action": "cancel"})
    b = wait_bulk(server, r.headers["Location"])
    assert b["changed"] == 10
    assert {server.job(f"t{i}")["state"] for i in range(10)} == {"cancelled"}
    assert server.job("t10")["state"] == "queued"
    r = server.post("/v1/jobs/bulk", {"filter": {"state": "cancelled"}, "action": "delete"})
    assert wait_bulk(server, r.headers["Location"])["changed"] == 10
    assert server.get("/v1/jobs/t0").status_code == 404
    # A second retry of the same filter finds nothing left to do.
    r = server.post("/v1/jobs/bulk", {"filter": {"state": "cancelled"}, "action": "retry"})
    assert wait_bulk(server, r.headers["Location"])["matched"] == 0


def test_a_bulk_can_be_cancelled(make_server):
    server = make_server(env={"JOBQ_FINISHED_IN_MEMORY": "10"})
    failed_jobs(server, "cq", 3000)
    r = server.post("/v1/jobs/bulk", {"filter": {"queue": "cq"}, "action": "retry"})
    server.post(r.headers["Location"] + "/cancel")
    b = wait_bulk(server, r.headers["Location"])
    assert b["state"] == "cancelled"
    stats = server.get("/v1/stats").json()["queues"]["cq"]["counts"]
    assert stats.get("queued", 0) == b["changed"] < 3000
    assert stats["failed"] == 3000 - b["changed"]


def test_bad_bulk_requests_change_nothing(make_server):
    server = make_server(env={"JOBQ_API_KEYS": f"ops:admin:{ADMIN},app:producer:{PRODUCER}"})
    server.session.headers["Authorization"] = f"Bearer {PRODUCER}"
    server.enqueue(id="keep", queue="q")
    for body, field in [({"action": "retry"}, "filter"),
                        ({"filter": {}, "action": "explode"}, "action"),
                        ({"filter": {"colour": "red"}, "action": "retry"}, "filter.colour"),
                        ({"filter": {"priority": 2}, "action": "retry"}, "filter.priority"),
                        ({"filter": {"priority": "urgent"}, "action": "retry"}, "filter.priority"),
                        ({"filter": {"text": ""}, "action": "cancel"}, "filter.text"),
                        ({"filter": {}, "action": "retry", "dry_run": "yes"}, "dry_run"),
                        ({"filter": {}, "action": "retry", "all": True}, "all")]:
        assert_problem(server.post("/v1/jobs/bulk", body), 400, "validation", field)
    # Deleting in bulk is an admin's, like DELETE /v1/jobs/{id}.
    r = server.post("/v1/jobs/bulk", {"filter": {}, "action": "delete"})
    assert_problem(r, 403, "unauthorized", "action")
    r = server.post("/v1/jobs/bulk", {"filter": {"queue": "q"}, "action": "cancel"})
    assert r.status_code == 202
    assert wait_bulk(server, r.headers["Location"])["changed"] == 1
    assert server.get("/v1/bulk/nope").status_code == 404
    assert server.get("/v1/bulk/a%20b").status_code == 400


def test_a_bulk_reaches_finished_jobs_let_go_of_while_it_read_others(make_server):
    """A chunk acts on the jobs the engine holds and reads the others first;
    with no finished job kept in memory, the ones it held were let go of
    while the read was out, and the bulk counted them as gone (a cluster
    node skipped ten of twenty). They are read at the next step now."""
    server = make_server(env={"JOBQ_FINISHED_IN_MEMORY": "0"})
    ids = [f"fin-{i:02d}" for i in range(20)]
    for i in ids:
        server.enqueue(id=i, queue="fq")
        assert server.post(f"/v1/jobs/{i}/cancel").status_code == 200
    server.restart()
    # A batch naming the first ten reads them into the engine (a clash: other type).
    r = server.post("/v1/jobs/batch", {"jobs": [{"id": i, "type": "other"} for i in ids[:10]]})
    assert r.status_code == 409, r.text
    r = server.post("/v1/jobs/bulk", {"filter": {"queue": "fq"}, "action": "delete"})
    b = wait_bulk(server, r.headers["Location"])
    assert (b["state"], b["changed"], b["skipped"]) == ("done", 20, 0), b
    assert all(server.get(f"/v1/jobs/{i}").status_code == 404 for i in ids)
