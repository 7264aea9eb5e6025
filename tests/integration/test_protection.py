"""Protection: API keys and roles, API rate limits, circuit breakers,
execution limits, reload on SIGHUP and the graceful stop."""
import signal
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import Producers, assert_problem

KEYS = {
    "ops": "admin-0123456789abcdef",
    "app": "producer-0123456789abcdef",
    "bot": "worker-0123456789abcdef",
    "dash": "reader-0123456789abcdef",
}
KEYS_ENV = ",".join(f"{name}:{secret.split('-')[0]}:{secret}" for name, secret in KEYS.items())


def auth(name):
    return {"Authorization": f"Bearer {KEYS[name]}"}


def metric(server, name, **labels):
    r = server.get("/metrics", headers=auth("ops") if "JOBQ_API_KEYS" in server.env else {})
    assert r.status_code == 200, r.text
    text = r.text
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f"no sample {name} {labels}")


def test_api_keys_and_roles(make_server):
    srv = make_server(env={"JOBQ_API_KEYS": KEYS_ENV})
    body = assert_problem(srv.post("/v1/jobs", {"type": "t"}), 401, "unauthorized", "Authorization")
    assert "API key is required" in body["detail"]
    r = srv.post("/v1/jobs", {"type": "t"}, headers={"Authorization": "Bearer nope-nope-nope-nope"})
    assert_problem(r, 401, "unauthorized")
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert_problem(srv.post("/v1/jobs", {"type": "t"}, headers=auth("dash")), 403, "unauthorized")
    assert_problem(srv.post("/v1/jobs", {"type": "t"}, headers=auth("bot")), 403, "unauthorized")
    r = srv.post("/v1/jobs", {"id": "k1", "type": "t"}, headers={"X-API-Key": KEYS["app"]})
    assert r.status_code == 201, r.text
    assert_problem(srv.post("/v1/lease", {"worker": "w"}, headers=auth("app")), 403, "unauthorized")
    jobs = srv.post("/v1/lease", {"worker": "w"}, headers=auth("bot")).json()["jobs"]
    assert [j["id"] for j in jobs] == ["k1"]
    assert srv.get("/v1/jobs/k1", headers=auth("dash")).json()["state"] == "running"
    assert_problem(srv.post("/v1/queues/default/pause", headers=auth("app")), 403, "unauthorized")
    assert srv.post("/v1/queues/default/pause", headers=auth("ops")).status_code == 200
    assert_problem(srv.get("/metrics"), 401, "unauthorized")
    # Probes need no key.
    assert srv.get("/health/live").status_code == 200
    assert srv.get("/health/ready").status_code == 200
    # The access log names the key, and no secret appears anywhere in the log.
    time.sleep(0.2)
    lines = [l for l in srv.log_lines() if l.get("msg") == "request" and l.get("route") == "/v1/lease"]
    assert {l.get("api_key") for l in lines} == {"app", "bot"}
    text = srv.log_text()
    assert not any(secret in text for secret in KEYS.values())
    assert metric(srv, "jobq_rejected_requests_total", reason="forbidden") == 4
    assert metric(srv, "jobq_rejected_requests_total", reason="unauthorized") == 3


def test_rate_limit_per_key_does_not_touch_others(make_server):
    env = {"JOBQ_API_KEYS": KEYS_ENV, "JOBQ_RATE_LIMIT": "2", "JOBQ_RATE_BURST": "5"}
    srv = make_server(env=env)
    codes = []
    for _ in range(20):
        r = srv.get("/v1/queues", headers=auth("dash"))
        codes.append(r.status_code)
        assert r.headers["RateLimit-Limit"] == "5"
        assert int(r.headers["RateLimit-Remaining"]) >= 0
        assert int(r.headers["RateLimit-Reset"]) >= 0
        if r.status_code == 429:
            last = r
    assert codes[:5] == [200] * 5 and codes.count(429) >= 10, codes
    body = assert_problem(last, 429, "rate_limited")
    assert "dash" in body["detail"]
    assert int(last.headers["Retry-After"]) >= 1
    # Another client is untouched; health is exempt and unlimited.
    assert srv.post("/v1/jobs", {"type": "t"}, headers=auth("app")).status_code == 201
    for _ in range(10):
        r = srv.get("/health/live")
        assert r.status_code == 200 and "RateLimit-Limit" not in r.headers
    assert metric(srv, "jobq_rejected_requests_total", reason="rate_limited") == codes.count(429)
    # Tokens come back at the configured rate.
    time.sleep(1.1)
    assert srv.get("/v1/queues", headers=auth("dash")).status_code == 200


def test_rate_limit_by_address_without_keys(make_server):
    srv = make_server(env={"JOBQ_RATE_LIMIT": "0.1", "JOBQ_RATE_BURST": "2"})  # a token per 10 s
    codes = [srv.get("/v1/queues").status_code for _ in range(6)]
    assert codes[:2] == [200, 200] and codes[2:] == [429] * 4, codes


def fail(srv, job, error_type="unavailable", **extra):
    body = {"lease_id": job["lease_id"], "error": {"type": error_type, "message": "down"}}
    body.update(extra)
    r = srv.post(f"/v1/jobs/{job['id']}/fail", body)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.cluster_differs("a node's breaker counts and blocked_by are its own (the state is the cluster's)")
def test_breaker_opens_holds_its_key_and_resets(make_server):
    srv = make_server(env={"JOBQ_BREAKER_FAILURES": "3", "JOBQ_BREAKER_COOLDOWN": "60s"})
    for i in range(3):
        srv.enqueue(id=f"a{i}", breaker_key="payments", max_retries=5)
        [job] = srv.lease()
        fail(srv, job)
    breakers = {b["key"]: b for b in srv.get("/v1/breakers").json()["breakers"]}
    b = breakers["payments"]
    assert b["state"] == "open" and b["consecutive_failures"] == 3 and b["failures"] == 3
    assert b["opened_at"] and b["next_probe_at"] and b["cooldown_ms"] == 60000
    srv.enqueue(id="held", breaker_key="payments")
    srv.enqueue(id="free", breaker_key="search")
    assert srv.job("held")["blocked_by"] == "breaker:payments"
    assert srv.job("free")["blocked_by"] is None
    time.sleep(1.2)  # the failed ones are due again (1 s backoff) but stay held
    assert [j["id"] for j in srv.lease(max=10)] == ["free"]
    assert srv.job("a0")["attempts"] == 1
    assert metric(srv, "jobq_breakers", state="open") == 1
    assert metric(srv, "jobq_breaker_transitions_total", to="open") == 1
    opened = [l for l in srv.log_lines() if l.get("msg") == "breaker"]
    assert opened and opened[-1]["event"] == "open" and opened[-1]["breaker_key"] == "payments"
    assert opened[-1]["level"] == "warn"
    assert_problem(srv.post("/v1/breakers/nope/reset"), 404, "not_found")
    r = srv.post("/v1/breakers/payments/reset")
    assert r.status_code == 200 and r.json()["state"] == "closed"
    assert {j["id"] for j in srv.lease(max=10)} == {"a0", "a1", "a2", "held"}


@pytest.mark.cluster_differs("a key's hold and blocked_by are the node's")
def test_worker_rate_limited_with_retry_after_spends_no_attempt(server):
    server.enqueue(id="r1", breaker_key="api", max_retries=0)
    server.enqueue(id="r2", breaker_key="api")
    server.enqueue(id="o1", breaker_key="other")
    [job] = server.lease()
    assert job["id"] == "r1"
    j = fail(server, job, "rate_limited", retry_after_ms=3000)
    assert j["state"] == "retrying" and j["attempts"] == 0
    assert server.job("r2")["blocked_by"] == "held:api"
    assert [x["id"] for x in server.lease(max=10)] == ["o1"]
    time.sleep(3.1)
    assert {x["id"] for x in server.lease(max=10, wait_ms=1000)} == {"r1", "r2"}
    r = server.post("/v1/jobs/r1/fail", {"lease_id": "x" * 32, "error": {"type": "rate_limited"},
                                         "retry_after_ms": -1})
    assert_problem(r, 400, "validation", "retry_after_ms")


@pytest.mark.cluster_differs("blocked_by is computed from the node's memory")
def test_execution_limits_from_config(make_server):
    # A token every 2 s: slow enough that none refills between the checks.
    srv = make_server(env={"JOBQ_LIMITS": "type:video concurrency=1; queue:mail rate=0.5 burst=2"})
    for i in range(3):
        srv.enqueue(id=f"v{i}", type="video")
    srv.enqueue(id="t1")
    got = srv.lease(max=10)
    assert sorted(j["id"] for j in got) == ["t1", "v0"]
    assert srv.job("v1")["blocked_by"] == "concurrency:type:video"
    for i in range(5):
        srv.enqueue(id=f"m{i}", queue="mail")
    assert len(srv.lease(queues=["mail"], max=10)) == 2
    assert srv.job("m2")["blocked_by"] == "rate:queue:mail"
    # A long poll is answered as soon as the bucket has a token again (<= 2 s).
    t0 = time.time()
    got = srv.lease(queues=["mail"], max=10, wait_ms=8000)
    assert len(got) == 1 and time.time() - t0 < 6
    # GET /v1/limits shows each limit with where it stands.
    limits = srv.get("/v1/limits").json()
    by = {(l["target"], l["name"]): l for l in limits["execution"]}
    assert by[("type", "video")]["concurrency"] == 1 and by[("type", "video")]["running"] == 1
    assert by[("queue", "mail")]["rate"] == 0.5 and by[("queue", "mail")]["tokens"] < 1
    assert limits["api"]["keys"] is False and limits["breakers"]["failures"] == 5
    assert limits["retention"]["completed_ms"] == 86400000


def test_bad_protection_settings_refuse_to_start(make_server):
    for env, words in [({"JOBQ_LIMITS": "queue:x speed=3"}, "JOBQ_LIMITS"),
                       ({"JOBQ_API_KEYS": "a:boss:0123456789abcdef0"}, "JOBQ_API_KEYS"),
                       ({"JOBQ_BREAKER_COOLDOWN": "5 minutes"}, "JOBQ_BREAKER_COOLDOWN"),
                       ({"JOBQ_RETAIN_FAILED": "-1d"}, "JOBQ_RETAIN_FAILED")]:
        srv = make_server(env=env, start=False)
        try:
            srv.start(timeout=5)
            raise AssertionError(f"started with {env}")
        except RuntimeError as e:
            assert words in str(e) and "exited with 2" in str(e), str(e)
        srv.proc = None
        srv.log_file.close()


def test_sighup_reloads_limits_and_keeps_jobs(make_server, tmp_path):
    envfile = tmp_path / "jobq.env"
    envfile.write_text('JOBQ_LIMITS="type:t concurrency=1"\n')
    srv = make_server(env={"JOBQ_ENV_FILE": str(envfile)})
    for i in range(3):
        srv.enqueue(id=f"s{i}")
    assert len(srv.lease(max=10)) == 1
    envfile.write_text('JOBQ_LIMITS="type:t concurrency=3"\nJOBQ_LOG_LEVEL=debug\n')
    srv.proc.send_signal(signal.SIGHUP)
    end = time.time() + 5
    while time.time() < end and "configuration reloaded" not in srv.log_text():
        time.sleep(0.05)
    assert len(srv.lease(max=10)) == 2
    # A bad file is refused and the running configuration kept.
    envfile.write_text('JOBQ_LIMITS="nonsense"\n')
    srv.proc.send_signal(signal.SIGHUP)
    end = time.time() + 5
    while time.time() < end and "reload refused" not in srv.log_text():
        time.sleep(0.05)
    assert "reload refused" in srv.log_text()
    assert srv.get("/health/live").status_code == 200


def test_graceful_stop_lets_leased_jobs_finish(make_server):
    srv = make_server(env={"JOBQ_SHUTDOWN_GRACE": "20s"})
    srv.enqueue(id="busy")
    srv.enqueue(id="waiting")
    [job] = srv.lease()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    assert srv.proc.poll() is None  # still serving the job it leased out
    assert_problem(srv.get("/health/ready"), 503, "unavailable")
    assert_problem(srv.post("/v1/jobs", {"type": "t"}), 503, "unavailable")
    assert_problem(srv.post("/v1/lease", {"worker": "w"}), 503, "unavailable")
    t0 = time.time()
    r = srv.post(f"/v1/jobs/busy/complete", {"lease_id": job["lease_id"]})
    assert r.status_code == 200, r.text
    assert srv.proc.wait(10) == 0
    assert time.time() - t0 < 5  # it left as soon as nothing was running
    srv.stop()
    srv.start()
    assert srv.job("busy")["state"] == "completed"
    assert srv.job("waiting")["state"] == "queued"


def test_second_signal_exits_at_once_losing_nothing(make_server):
    srv = make_server(env={"JOBQ_SHUTDOWN_GRACE": "60s"})
    srv.enqueue(id="kept")
    [job] = srv.lease()
    heartbeat = srv.post(f"/v1/jobs/{job['id']}/heartbeat", {"lease_id": job["lease_id"]})
    assert heartbeat.status_code == 200
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    t0 = time.time()
    assert srv.stop(sig=signal.SIGINT, timeout=10) == 1
    assert time.time() - t0 < 3
    srv.env["JOBQ_SHUTDOWN_GRACE"] = "0"
    srv.start()
    assert srv.job("kept")["state"] == "running"  # its lease survives; it is requeued when it ends
    assert requests.get(srv.url + "/health/ready", timeout=5).status_code == 200


def test_slow_queries_stall_neither_writes_nor_leases(make_server):
    """Reads run on their own connections: with every read taking 1.5 s,
    enqueue, lease and complete still answer at once, and past the read
    bound a read is refused with 503 rather than queued forever."""
    import concurrent.futures
    srv = make_server(env={"JOBQ_FAULT_READ_DELAY_MS": "1500", "JOBQ_CACHE_TTL_MS": "0"})
    pool = concurrent.futures.ThreadPoolExecutor(4)
    slow = [pool.submit(requests.get, srv.url + "/v1/jobs", timeout=30) for _ in range(4)]
    time.sleep(0.2)  # the readers are now busy
    t0 = time.time()
    srv.enqueue(id="fast")
    [job] = srv.lease()
    assert srv.post("/v1/jobs/fast/complete", {"lease_id": job["lease_id"]}).status_code == 200
    assert srv.job("fast")["state"] == "completed"  # in memory: no store read
    assert time.time() - t0 < 1.0
    # The slow reads still see what was written before them.
    for f in slow:
        assert f.result().status_code == 200
    listed = srv.get("/v1/jobs").json()
    assert [j["id"] for j in listed["jobs"]] == ["fast"]
    pool.shutdown()


def test_long_poll_waiters_are_bounded(make_server):
    import concurrent.futures
    srv = make_server(env={"JOBQ_MAX_WAITERS": "2"})
    pool = concurrent.futures.ThreadPoolExecutor(2)
    waiting = [pool.submit(srv.lease, f"w{i}", None, 1, 5000) for i in range(2)]
    end = time.time() + 5
    while time.time() < end and srv.get("/v1/limits").json()["waiters"]["waiting"] < 2:
        time.sleep(0.02)
    r = srv.post("/v1/lease", {"worker": "w3", "wait_ms": 5000})
    body = assert_problem(r, 503, "unavailable", "wait_ms")
    assert "JOBQ_MAX_WAITERS" in body["detail"] and r.headers["Retry-After"]
    assert srv.post("/v1/lease", {"worker": "w3"}).json() == {"jobs": []}  # no wait: fine
    srv.enqueue(id="one")
    srv.enqueue(id="two")
    got = sorted(j["id"] for f in waiting for j in f.result())
    assert got == ["one", "two"]
    # The slots are free again.
    srv.enqueue(id="three")
    assert [j["id"] for j in srv.lease("w4", None, 1, 1000)] == ["three"]
    pool.shutdown()


def test_graceful_stop_under_load_loses_nothing(make_server):
    """SIGTERM while producers and a worker are busy: every enqueue that was
    acknowledged is there after the restart, every acknowledged completion
    stuck, and jobq exits 0."""
    import threading
    srv = make_server(env={"JOBQ_SHUTDOWN_GRACE": "3s"})
    completed, lock, stop = set(), threading.Lock(), threading.Event()

    def worker():
        s = requests.Session()
        while not stop.is_set():
            try:
                r = s.post(srv.url + "/v1/lease", json={"worker": "w", "max": 10, "wait_ms": 200}, timeout=5)
                if r.status_code != 200:
                    continue
                for j in r.json()["jobs"]:
                    c = s.post(srv.url + f"/v1/jobs/{j['id']}/complete", json={"lease_id": j["lease_id"]}, timeout=5)
                    if c.status_code == 200:
                        with lock:
                            completed.add(j["id"])
            except requests.RequestException:
                return

    producers = Producers(srv.url, 3, "p")
    consumer = threading.Thread(target=worker)
    consumer.start()
    time.sleep(1.5)
    srv.proc.send_signal(signal.SIGTERM)
    code = srv.proc.wait(20)
    stop.set()
    acked = producers.stop()
    consumer.join(10)
    assert code == 0
    assert len(acked) > 50 and completed
    srv.stop()
    srv.start()
    for jid in acked:
        r = srv.get(f"/v1/jobs/{jid}")
        assert r.status_code == 200, jid
    for jid in completed:
        assert srv.job(jid)["state"] == "completed", jid


def test_stop_with_a_read_outliving_the_grace_exits_cleanly(make_server):
    """A list still reading when the 10 s request grace ends: jobq must
    finish it and exit 0 without touching a freed request (the fixture
    checks the sanitizer's verdict)."""
    import concurrent.futures
    srv = make_server(env={"JOBQ_FAULT_READ_DELAY_MS": "10500", "JOBQ_CACHE_TTL_MS": "0"})
    pool = concurrent.futures.ThreadPoolExecutor(1)
    slow = pool.submit(requests.get, srv.url + "/v1/jobs", timeout=30)
    time.sleep(0.3)
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(30) == 0
    try:
        slow.result()
    except requests.RequestException:
        pass  # closed at the end of the grace: allowed; a crash is not
    pool.shutdown()
    assert "grace period over; closing open requests" in srv.log_text()


def test_connections_past_the_limit_get_503(make_server):
    import socket
    srv = make_server(env={"JOBQ_MAX_CONNECTIONS": "4"})
    port = int(srv.url.rsplit(":", 1)[1])
    srv.session.close()
    hogs = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        time.sleep(0.2)
        r = requests.get(srv.url + "/v1/queues", timeout=5)
        body = assert_problem(r, 503, "unavailable")
        assert "too many open connections" in body["detail"]
        assert r.headers["Retry-After"] == "1" and r.headers["Connection"] == "close"
    finally:
        for h in hogs:
            h.close()
    time.sleep(0.2)
    assert requests.get(srv.url + "/v1/queues", timeout=5).status_code == 200


def test_sighup_names_the_restart_only_settings_it_did_not_apply(make_server, tmp_path):
    """Which settings a reload applies is marked per setting: a changed
    restart-only one is named (never its value) and keeps its old value;
    a reloadable one beside it takes effect."""
    envfile = tmp_path / "jobq.env"
    envfile.write_text("JOBQ_DEFAULT_MAX_RETRIES=3\n")
    srv = make_server(env={"JOBQ_ENV_FILE": str(envfile)})
    envfile.write_text("JOBQ_DEFAULT_MAX_RETRIES=7\nJOBQ_FAKTORY_PASSWORD=not-in-any-log\n"
                       "JOBQ_MAX_WAITERS=3\nJOBQ_WORKER_GONE_MS=5000\n")
    srv.proc.send_signal(signal.SIGHUP)
    end = time.time() + 5
    while time.time() < end and "configuration reloaded" not in srv.log_text():
        time.sleep(0.05)
    warn = [l for l in srv.log_lines() if l["msg"].startswith("changed settings")]
    assert len(warn) == 1 and warn[0]["settings"] == "JOBQ_WORKER_GONE_MS,JOBQ_DEFAULT_MAX_RETRIES", warn
    assert "not-in-any-log" not in srv.log_text()
    assert srv.enqueue(id="r1")["max_retries"] == 3  # restart-only: the old value stays
