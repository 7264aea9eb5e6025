"""GET /v1/jobs filters beyond queue/state/type: priority, breaker key,
worker, created/finished time range, and text search over args, result
and error messages, with pages that resume where the scan stopped."""
import time

from conftest import assert_problem


def ids(server, query):
    r = server.get("/v1/jobs?" + query)
    assert r.status_code == 200, r.text
    return {j["id"] for j in r.json()["jobs"]}, r.json()


def test_filters_from_columns_and_from_the_job(server):
    server.enqueue(id="a", queue="q", priority="high", args={"email": "Alice@example.com"},
                   breaker_key="smtp.example")
    server.enqueue(id="b", queue="q", priority="low", args={"email": "bob@example.com"})
    server.enqueue(id="c", queue="q", priority="high", args={"n": 1})
    (job,) = server.lease(worker="w-7", queues=["q"])  # a (high, first)
    assert job["id"] == "a"
    server.post("/v1/jobs/a/fail", {"lease_id": job["lease_id"],
                                    "error": {"type": "validation", "message": "Mailbox FULL"}})
    assert ids(server, "queue=q&priority=high")[0] == {"a", "c"}
    assert ids(server, "priority=4")[0] == set()
    assert ids(server, "priority=low")[0] == {"b"}
    got, body = ids(server, "text=alice")  # case ignored
    assert got == {"a"} and body["scanned"] == 3
    assert ids(server, "text=mailbox%20full")[0] == {"a"}  # an error message
    assert ids(server, "text=example.com")[0] == {"a", "b"}
    assert ids(server, "breaker_key=smtp.example")[0] == {"a"}
    (job,) = server.lease(worker="w-8", queues=["q"])  # c
    assert ids(server, "worker=w-8")[0] == {job["id"]}
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    assert ids(server, f"created_before={now}&queue=q")[0] == {"a", "b", "c"}
    assert ids(server, f"created_after={now}")[0] == set()
    assert ids(server, f"finished_before={now}")[0] == {"a"}  # the failed one has finished
    assert "scanned" not in server.get("/v1/jobs?queue=q").json()


def test_a_text_search_pages_through_the_scan(server):
    server.post("/v1/jobs/batch", {"jobs": [{"id": f"j{i:03d}", "type": "t",
                                             "args": {"tag": "needle" if i % 10 == 0 else "hay"}}
                                            for i in range(60)]})
    seen, cursor = set(), None
    for _ in range(20):
        q = "text=needle&limit=2" + (f"&cursor={cursor}" if cursor else "")
        got, body = ids(server, q)
        seen |= got
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == {f"j{i:03d}" for i in range(0, 60, 10)}


def test_bad_filters_are_refused_naming_the_field(server):
    for query, field in [("priority=urgent", "priority"), ("text=", "text"),
                         ("text=" + "x" * 201, "text"), ("created_after=yesterday", "created_after"),
                         ("finished_before=2026-13-01T00:00:00Z", "finished_before"),
                         ("worker=a%20b", "worker"), ("breaker_key=%2F", "breaker_key")]:
        assert_problem(server.get("/v1/jobs?" + query), 400, "validation", field)
