"""Memory limit with priority shedding, and the query cache."""
import time

import pytest

from conftest import assert_problem

BIG = "x" * 20000  # about 40 KB accounted per job


@pytest.mark.cluster_differs("a node keeps only the jobs it runs: no memory to shed")
def test_memory_pressure_sheds_low_priorities_first(make_server):
    srv = make_server(env={"JOBQ_MEMORY_LIMIT": "2M"})
    accepted = {p: 0 for p in ("background", "low", "normal", "high", "critical")}
    refused = {}
    # Fill with background work until it is refused.
    for i in range(200):
        r = srv.post("/v1/jobs", {"type": "t", "priority": "background", "args": {"blob": BIG}})
        if r.status_code != 201:
            refused["background"] = r
            break
        accepted["background"] += 1
    assert "background" in refused, "never refused"
    body = assert_problem(refused["background"], 503, "unavailable", "priority")
    assert "background" in body["detail"] and refused["background"].headers["Retry-After"]
    # More urgent work still gets in for a while, then critical last of all.
    for prio in ("low", "normal", "high", "critical"):
        for i in range(200):
            r = srv.post("/v1/jobs", {"type": "t", "priority": prio, "args": {"blob": BIG}})
            if r.status_code != 201:
                refused[prio] = r
                break
            accepted[prio] += 1
        assert accepted[prio] >= 1, (prio, accepted)
        assert_problem(refused[prio], 503, "unavailable", "priority")
        r = srv.post("/v1/jobs", {"type": "t", "priority": "background"})
        assert r.status_code == 503  # the least urgent stays refused throughout
    # At the hard limit ready fails, naming memory; the process is fine.
    r = srv.get("/health/ready")
    body = assert_problem(r, 503, "unavailable", "memory")
    health = srv.get("/health").json()
    assert health["components"]["memory"]["status"] == "failing"
    perf = srv.get("/v1/perf").json()["system"]
    assert perf["memory_limit_bytes"] == 2 * 1024 * 1024
    assert perf["memory_accounted_bytes"] >= perf["memory_limit_bytes"]
    # A batch is refused whole, naming its least urgent job.
    r = srv.post("/v1/jobs/batch", {"jobs": [{"type": "t", "priority": "critical"},
                                             {"type": "t", "priority": "low"}]})
    assert_problem(r, 503, "unavailable", "jobs[1].priority")
    # Workers drain it; finished jobs leave memory; work is accepted again.
    total = sum(accepted.values())
    done = 0
    while done < total:
        jobs = srv.lease(max=100)
        for j in jobs:
            srv.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
        done += len(jobs)
        assert jobs
    assert srv.get("/health/ready").status_code == 200
    assert srv.post("/v1/jobs", {"type": "t", "priority": "background"}).status_code == 201
    # Nothing accepted was lost: every job is completed (read from memory or the store).
    stats = srv.get("/v1/stats").json()
    assert stats["totals"]["completed"] == total


def test_query_cache_hits_and_invalidation(make_server):
    srv = make_server(env={"JOBQ_CACHE_TTL_MS": "60000"})
    srv.enqueue(id="a", queue="q1")
    srv.enqueue(id="b", queue="q2")
    first = srv.get("/v1/jobs?queue=q1").json()
    assert [j["id"] for j in first["jobs"]] == ["a"]
    before = srv.get("/v1/cache").json()
    again = srv.get("/v1/jobs?queue=q1").json()
    assert again == first
    after = srv.get("/v1/cache").json()
    assert after["hits"] == before["hits"] + 1 and after["entries"] >= 1
    # A change in another queue leaves the entry; a change in q1 drops it at once.
    srv.enqueue(id="c", queue="q2")
    srv.get("/v1/jobs?queue=q1")
    assert srv.get("/v1/cache").json()["hits"] == after["hits"] + 1
    srv.enqueue(id="d", queue="q1")
    ids = [j["id"] for j in srv.get("/v1/jobs?queue=q1").json()["jobs"]]
    assert ids == ["d", "a"]
    cache = srv.get("/v1/cache").json()
    assert cache["invalidations"] >= 1
    # Stats: cached, and wrong never: any job change invalidates.
    s1 = srv.get("/v1/stats").json()
    s2 = srv.get("/v1/stats").json()
    assert s1["counts"] == s2["counts"]
    srv.post("/v1/jobs/a/cancel")
    s3 = srv.get("/v1/stats").json()
    assert s3["counts"]["cancelled"] == s1["counts"]["cancelled"] + 1
    text = srv.get("/metrics").text
    assert "jobq_cache_hits_total" in text and "jobq_memory_accounted_bytes" in text


def test_cache_ttl_expires_and_zero_turns_it_off(make_server):
    srv = make_server(env={"JOBQ_CACHE_TTL_MS": "200"})
    srv.get("/v1/jobs")
    time.sleep(0.3)
    srv.get("/v1/jobs")
    assert srv.get("/v1/cache").json()["expirations"] == 1
    off = make_server(env={"JOBQ_CACHE_TTL_MS": "0"})
    off.get("/v1/jobs")
    off.get("/v1/jobs")
    c = off.get("/v1/cache").json()
    assert c["hits"] == 0 and c["entries"] == 0
