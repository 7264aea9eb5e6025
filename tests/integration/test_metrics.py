"""GET /metrics: valid Prometheus text (checked by the prometheus_client
parser), with figures that match the work the test did."""
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import assert_problem


def scrape(server):
    r = server.get("/metrics")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    samples = {}
    for f in families.values():
        for s in f.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return families, samples


def value(samples, name, **labels):
    return samples[(name, tuple(sorted(labels.items())))]


def test_metrics_match_the_work_done(server):
    for i in range(3):
        server.enqueue(id=f"m{i}", queue="mq")
    leased = server.lease(queues=["mq"], max=2)
    a, b = leased
    server.post(f"/v1/jobs/{a['id']}/complete", {"lease_id": a["lease_id"]})
    server.post(f"/v1/jobs/{b['id']}/fail", {"lease_id": b["lease_id"], "error": {"type": "validation"}})
    server.get("/v1/jobs/nope")
    server.get("/v1/stats")  # reads the database: the journal is compacted into it first
    families, s = scrape(server)
    # Counters carry _total in the sample name; the parser strips it from the family.
    assert value(s, "jobq_jobs_enqueued_total", queue="mq") == 3
    assert value(s, "jobq_jobs_leased_total", queue="mq") == 2
    assert value(s, "jobq_jobs_completed_total", queue="mq") == 1
    assert value(s, "jobq_jobs_failed_total", queue="mq") == 1
    assert value(s, "jobq_jobs", queue="mq", state="queued") == 1
    assert value(s, "jobq_jobs", queue="mq", state="running") == 0
    assert value(s, "jobq_job_execution_seconds_count", queue="mq") == 2
    assert value(s, "jobq_job_queue_wait_seconds_count", queue="mq") == 2
    assert value(s, "jobq_queue_oldest_job_age_seconds", queue="mq") > 0
    assert value(s, "jobq_http_request_duration_seconds_count", route="/v1/jobs", method="POST", status="201") == 3
    assert value(s, "jobq_http_request_duration_seconds_count", route="/v1/jobs/{id}", method="GET", status="404") == 1
    inf = value(s, "jobq_http_request_duration_seconds_bucket", route="/v1/jobs", method="POST", status="201", le="+Inf")
    assert inf == 3
    assert value(s, "jobq_store_commit_duration_seconds_count") >= 1
    # 7 writes were journaled; compaction writes each job's last row (3 to 7 of them)
    assert 3 <= value(s, "jobq_store_statement_duration_seconds_count", statement="put_job") <= 7
    assert value(s, "jobq_store_statement_duration_seconds_count", statement="commit") >= 1
    assert value(s, "jobq_store_healthy") == 1
    assert families["jobq_jobs_enqueued"].type == "counter"
    assert families["jobq_http_request_duration_seconds"].type == "histogram"
    for name in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_max_fds", "process_start_time_seconds"]:
        assert value(s, name) > 0, name
    assert any(k[0] == "jobq_build_info" for k in s)


def test_histograms_move_and_counters_only_grow(server):
    _, before = scrape(server)
    for _ in range(5):
        server.enqueue()
    _, after = scrape(server)
    key = ("jobq_http_request_duration_seconds_count",
           tuple(sorted({"route": "/v1/jobs", "method": "POST", "status": "201"}.items())))
    assert after[key] == before.get(key, 0) + 5
    assert value(after, "jobq_jobs_enqueued_total", queue="default") == 5
    # The first scrape itself is counted by the second.
    assert value(after, "jobq_http_request_duration_seconds_count", route="/metrics", method="GET", status="200") >= 1


def test_workers_are_tracked(make_server):
    import time
    server = make_server(env={"JOBQ_WORKER_GONE_MS": "1000"})
    server.enqueue(id="a")
    server.enqueue(id="b")
    server.enqueue(id="c")
    jobs = server.lease(worker="w1", max=3)
    server.post("/v1/jobs/a/complete", {"lease_id": jobs[0]["lease_id"]})
    server.post("/v1/jobs/b/fail", {"lease_id": jobs[1]["lease_id"], "error": {"type": "internal"}})
    server.post("/v1/jobs/c/heartbeat", {"lease_id": jobs[2]["lease_id"]})
    server.lease(worker="w2")
    workers = {w["id"]: w for w in server.get("/v1/workers").json()["workers"]}
    w1, w2 = workers["w1"], workers["w2"]
    assert (w1["completed"], w1["failed"], w1["active_leases"]) == (1, 1, 1)
    assert w1["success_rate"] == 0.5 and w1["avg_execution_ms"] >= 0
    assert w1["first_seen"] <= w1["last_seen"] and w1["gone"] is False
    assert (w2["completed"], w2["active_leases"], w2["success_rate"]) == (0, 0, None)
    time.sleep(1.3)
    server.lease(worker="w3")
    workers = {w["id"]: w for w in server.get("/v1/workers").json()["workers"]}
    assert workers["w2"]["gone"] is True and workers["w3"]["gone"] is False


@pytest.mark.cluster_differs("rates and ages are computed from the node's memory")
def test_stats_rates_and_ages_match_the_work(server):
    import time
    for i in range(4):
        server.enqueue(id=f"s{i}", queue="sq")
    server.enqueue(id="waiting", queue="idle")
    jobs = server.lease(queues=["sq"], max=3)
    for j in jobs[:2]:
        server.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
    server.post(f"/v1/jobs/{jobs[2]['id']}/fail", {"lease_id": jobs[2]["lease_id"], "error": {"type": "validation"}})
    time.sleep(0.2)
    st = server.get("/v1/stats").json()
    sq = st["queues"]["sq"]
    assert sq["counts"]["completed"] == 2 and sq["counts"]["failed"] == 1 and sq["counts"]["queued"] == 1
    assert abs(sq["success_rate"] - 2 / 3) < 1e-9
    assert abs(sq["success_rate_5m"] - 2 / 3) < 1e-9
    assert abs(sq["throughput_1m"] - 3 / 60) < 1e-9
    assert abs(sq["throughput_5m"] - 3 / 300) < 1e-9
    assert 0 <= sq["execution_ms"]["avg"] < 60000 and 0 <= sq["execution_ms"]["p95"] < 60000
    assert st["queues"]["idle"]["oldest_queued_age_s"] >= 0.2
    assert st["queues"]["idle"]["success_rate"] is None
    assert st["oldest_queued_age_s"] >= 0.2
    assert abs(st["success_rate"] - 2 / 3) < 1e-9
    assert st["totals"]["completed"] == 2 and st["totals"]["failed"] == 1


def test_perf_reports_where_time_goes(server):
    import time
    for _ in range(5):
        server.enqueue()
    server.get("/v1/jobs/none", headers={"X-Request-Id": "perf-probe"})
    time.sleep(1.2)  # at least one loop-lag and CPU sample
    p = server.get("/v1/perf").json()
    routes = {(r["route"], r["method"]): r for r in p["routes"]}
    post = routes[("/v1/jobs", "POST")]
    assert post["count"] == 5 and 0 < post["p50_ms"] <= post["p99_ms"] <= post["max_ms"] * 1.0001
    assert routes[("/v1/jobs/{id}", "GET")]["count"] == 1
    st = p["store"]
    assert st["statements"]["put_job"]["count"] == 5
    assert st["statements"]["commit"]["count"] >= 1
    assert st["batches"]["count"] >= 1 and st["batches"]["max_size"] >= 1
    assert st["batch_commit"]["count"] == st["batches"]["count"]
    assert any(r["request_id"] == "perf-probe" for r in p["slowest_requests"]) or len(p["slowest_requests"]) == 10
    assert p["loop_lag_ms"]["samples"] >= 3 and p["loop_lag_ms"]["max"] < 1000
    assert p["cpu"]["cores"] >= 1 and p["cpu"]["process_pct"] >= 0
    sysinfo = p["system"]
    assert sysinfo["resident_bytes"] > 0 and sysinfo["threads"] >= 2 and sysinfo["open_fds"] > 0
    assert sysinfo["disk"]["total_bytes"] >= sysinfo["disk"]["free_bytes"] > 0


@pytest.mark.cluster_differs("history points count the node's memory")
def test_history_keeps_a_point_a_second_per_queue(server):
    """GET /v1/history: the chart points come from the registry's rings, a
    point a second with the depth at its end and what happened in it."""
    for i in range(6):
        server.enqueue(id=f"h{i}", queue="hist")
    jobs = server.lease(queues=["hist"], max=4)
    for j in jobs[:3]:
        assert server.post(f"/v1/jobs/{j['id']}/complete",
                           {"lease_id": j["lease_id"]}).status_code == 200
    assert server.post("/v1/jobs/h5/cancel").status_code == 200
    deadline = time.time() + 10
    done = 0
    while time.time() < deadline:
        r = server.get("/v1/history?queue=hist")
        if r.status_code == 404:  # its series starts at the next tick
            time.sleep(0.2)
            continue
        h = r.json()
        done = sum(p["completed"] for p in h["points"])
        if done == 3 and h["points"][-1]["running"] == 1:
            break
        time.sleep(0.2)
    assert h["queue"] == "hist" and h["resolution_s"] == 1
    last = h["points"][-1]
    assert (done, last["queued"], last["running"]) == (3, 1, 1), h
    assert sum(p["cancelled"] for p in h["points"]) == 1
    assert any(p["run_ms"] for p in h["points"])
    times = [p["t"] for p in h["points"]]
    assert times == sorted(times) and len(set(times)) == len(times)
    everything = server.get("/v1/history").json()
    assert everything["queue"] is None and everything["points"]
    later = server.get("/v1/history?queue=hist&since=" + times[-1]).json()["points"]
    assert later[0]["t"] == times[-1]  # since includes its own second; newer ones may follow
    assert server.get("/v1/history?queue=hist&resolution=1m").json()["resolution_s"] == 60
    assert_problem(server.get("/v1/history?queue=never-seen"), 404, "not_found", "queue")
    assert_problem(server.get("/v1/history?resolution=5s"), 400, "validation", "resolution")
    assert_problem(server.get("/v1/history?since=yesterday"), 400, "validation", "since")
    assert_problem(server.get("/v1/history?limit=3"), 400, "validation", "limit")


def _many_queues(server):
    for b in range(2):
        jobs = [{"type": "t", "queue": f"many-{b}-{i}"} for i in range(600)]
        r = server.post("/v1/jobs/batch", {"jobs": jobs}, timeout=30)
        assert r.status_code == 201, r.text


def test_queues_past_the_bound_share_one_series(server):
    """Queue names are the clients': each queue's series took ~9 KB of the
    server's memory and ~3 KB of every scrape, for good, so a client
    naming a new queue for every job grew both without end. The first 1000
    queues keep series of their own; later ones count under
    queue="(other)", and the totals stay whole."""
    _many_queues(server)
    families, samples = scrape(server)
    enqueued = {dict(labels)["queue"]: v for (name, labels), v in samples.items()
                if name == "jobq_jobs_enqueued_total"}
    assert len(enqueued) == 1001, len(enqueued)
    assert sum(enqueued.values()) == 1200
    assert enqueued["(other)"] == 200
    queued = {dict(labels)["queue"]: v for (name, labels), v in samples.items()
              if name == "jobq_jobs" and dict(labels)["state"] == "queued"}
    assert set(queued) == set(enqueued)
    assert queued["(other)"] == 200 and sum(queued.values()) == 1200


@pytest.mark.cluster_differs("history points count the node's memory")
def test_the_all_queues_history_counts_queues_past_the_bound(server):
    _many_queues(server)
    deadline, points = time.time() + 10, []
    while time.time() < deadline:
        r = server.get("/v1/history")
        points = r.json()["points"] if r.status_code == 200 else []  # 404 before the first tick
        if points and points[-1]["queued"] == 1200:
            break
        time.sleep(0.2)
    assert points and points[-1]["queued"] == 1200, points[-1:]
