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
    # terminate from the CLI, which calls the same HTTP API
    import subprocess
    from conftest import BIN
    cli = subprocess.run([BIN, "terminate", "wt", "--server", server.url], capture_output=True,
                         text=True, timeout=10)
    assert cli.returncode == 0 and "wt" in cli.stdout and "terminate" in cli.stdout, cli
    t.join(30)
    assert results["wt"]["terminated"] is True, results
    w = {x["id"]: x for x in server.get("/v1/workers").json()["workers"]}
    assert w["wq"]["protocol"] == "faktory" and w["wq"]["state"] == "quiet"
    assert w["wt"]["state"] == "terminate"
    assert server.post("/v1/workers/nobody/quiet").status_code == 404
    cli = subprocess.run([BIN, "quiet", "nobody", "--server", server.url], capture_output=True,
                         text=True, timeout=10)
    assert cli.returncode != 0 and "nobody" in cli.stderr, cli


def _wait_worker(server, wid, timeout=10):
    deadline = time.time() + timeout
    while not any(w["id"] == wid and w.get("protocol") == "faktory"
                  for w in server.get("/v1/workers").json()["workers"]):
        assert time.time() < deadline, server.get("/v1/workers").text
        time.sleep(0.05)


def test_info_has_the_fields_clients_read(server):
    node(server, "push", jobs=[{"jid": jid(), "jobtype": "T", "args": [], "queue": "q1"}])
    i = info(server)
    f = i["faktory"]
    assert f["queues"] == {"q1": 1} and f["total_queues"] == 1 and f["total_enqueued"] == 1
    for k in ("total_failures", "total_processed"):
        assert f[k] == 0
    assert set(f["sets"]) == {"dead", "retries", "scheduled", "working"}
    for t in ("Busy", "Dead", "Retries", "Scheduled", "Workers"):
        assert f["tasks"][t]["size"] == 0
    s = i["server"]
    assert s["connections"] >= 1 and s["command_count"] >= 2 and s["used_memory_mb"] > 0
    assert s["uptime"] >= 0 and s["description"] and s["faktory_version"]
    assert i["now"].endswith("Z") and i["server_utc_time"].endswith("UTC")


def _states(server, ids):
    out = {}
    for i in ids:
        r = server.get(f"/v1/jobs/{i}")
        out[i] = r.json()["state"] if r.status_code == 200 else None
    return out


def test_mutate_on_each_target(server):
    slow = {"backoff": {"initial_ms": 3600000, "max_ms": 3600000, "jitter": 0}}
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    retries = [jid("r") for _ in range(3)]
    sched = [jid("s") for _ in range(3)]
    dead = [jid("d") for _ in range(3)]
    jobs = ([{"jid": j, "jobtype": "R", "args": [n], "custom": slow} for n, j in enumerate(retries)] +
            [{"jid": j, "jobtype": "S", "args": [n], "at": later} for n, j in enumerate(sched)] +
            [{"jid": j, "jobtype": "D", "args": [n], "retry": -1} for n, j in enumerate(dead)])
    assert node(server, "pushb", jobs=jobs) == {"rejected": {}}
    node(server, "work", behavior={"R": "fail", "D": "fail"}, until={"count": 6})
    assert set(_states(server, retries).values()) == {"retrying"}
    assert set(_states(server, dead).values()) == {"failed"}
    assert set(_states(server, sched).values()) == {"pending"}
    # requeue one retry by jid, kill one scheduled by glob, discard one dead by jid
    assert node(server, "mutate", target="retries", cmd="requeue", filter={"jids": [retries[0]]}) == {"reply": "OK"}
    assert server.job(retries[0])["state"] == "queued"
    assert node(server, "mutate", target="scheduled", cmd="kill",
                filter={"regexp": f"*{sched[1]}*"}) == {"reply": "OK"}
    assert server.job(sched[1])["state"] == "failed"
    assert node(server, "mutate", target="dead", cmd="discard", filter={"jids": [dead[0]]}) == {"reply": "OK"}
    assert server.get(f"/v1/jobs/{dead[0]}").status_code == 404
    # requeue the dead by type; clear what is left of retries and scheduled
    node(server, "mutate", target="dead", cmd="requeue", filter={"jobtype": "D"})
    assert set(_states(server, dead[1:]).values()) == {"queued"}
    assert server.job(sched[1])["state"] == "failed"  # type S: not matched
    node(server, "mutate", target="retries", cmd="clear")
    node(server, "mutate", target="scheduled", cmd="clear")
    assert _states(server, retries[1:] + [sched[0], sched[2]]) == {i: None for i in retries[1:] + [sched[0], sched[2]]}
    r = node(server, "send", args=["MUTATE", '{"cmd": "explode", "target": "dead"}'])
    assert "cmd" in r.get("error", ""), r


def test_queue_pause_resume_remove_latency(server):
    a, b = jid("a"), jid("b")
    node(server, "push", jobs=[{"jid": a, "jobtype": "T", "args": [], "queue": "qa"},
                               {"jid": b, "jobtype": "T", "args": [], "queue": "qb"}])
    assert node(server, "send", args=["QUEUE", "PAUSE", "qa"]) == {"reply": "OK"}
    assert server.get("/v1/queues").json()
    w = node(server, "work", behavior={"T": "ok"}, queues=["qa", "qb"], until={"count": 1, "ms": 3000})
    assert [s["jid"] for s in w["seen"]] == [b]  # qa is paused
    time.sleep(0.2)
    lat = node(server, "send", args=["QUEUE", "LATENCY", "qa", "qb", "nope"])
    import json
    lat = json.loads(lat["reply"])
    assert lat["qa"] > 0 and lat["nope"] == 0, lat
    assert node(server, "send", args=["QUEUE", "RESUME", "*"]) == {"reply": "OK"}
    c = node(server, "push", jobs=[{"jid": jid("x"), "jobtype": "T", "args": [], "queue": "qa"}])
    assert node(server, "send", args=["QUEUE", "REMOVE", "qa"]) == {"reply": "OK"}
    assert server.get(f"/v1/jobs/{a}").status_code == 404
    assert server.get(f"/v1/jobs/{c['jids'][0]}").status_code == 404


def test_password_right_and_wrong(make_server):
    s = make_server(env={"JOBQ_FAKTORY_PASSWORD": "s3cret",
                         "JOBQ_API_KEYS": "prod:producer:pk-1234567890abcdef,work:worker:wk-1234567890abcdef"})
    assert "error" not in node(s, "info", password="s3cret")
    bad = node(s, "info", password="nope", timeout=10)
    assert "Invalid password" in bad.get("error", ""), bad
    # An API key's secret is a password too, with its role.
    j = jid()
    assert node(s, "push", password="pk-1234567890abcdef", jobs=[{"jid": j, "jobtype": "T", "args": []}]) == {"jids": [j]}
    r = node(s, "fetch", password="pk-1234567890abcdef", queues=["default"])
    assert "forbidden" in r.get("error", ""), r
    w = node(s, "work", password="wk-1234567890abcdef", behavior={"T": "ok"}, until={"count": 1})
    assert [x["jid"] for x in w["seen"]] == [j]
    assert "forbidden" in node(s, "push", password="wk-1234567890abcdef", jobs=[{"jid": jid(), "jobtype": "T", "args": []}]).get("error", "")
    assert "s3cret" not in s.log_text()


def test_pushb_reports_rejected_jobs(server):
    good, dup = jid(), jid()
    node(server, "push", jobs=[{"jid": dup, "jobtype": "T", "args": [1]}])
    r = node(server, "send", args=["PUSHB", '[{"jid":"%s","jobtype":"T","args":[]},'
                                   '{"jid":"short","jobtype":"T","args":[]},'
                                   '{"jid":"%s","jobtype":"T","args":[2]},'
                                   '{"jid":"%s","jobtype":"T","args":[1]}]' % (good, dup, dup)])
    import json
    rejected = json.loads(r["reply"])
    assert set(rejected) == {"short", dup}, rejected
    assert "jid" in rejected["short"]
    assert server.job(good)["state"] == "queued"
    assert server.job(dup)["args"] == [1]


def test_300_idle_client_connections_at_once(make_server):
    s = make_server(env={"JOBQ_MAX_CONNECTIONS_PER_CLIENT": "400"})
    assert node(s, "idle", n=300, timeout=60) == {"ok": 300}
    assert s.get("/health/ready").status_code == 200


def test_http_jobs_reach_faktory_workers_and_back(server):
    # HTTP -> FWP: args that are not an array are wrapped, jobq fields in custom.
    h = server.enqueue(id=jid("h"), type="Web", args={"to": "x"}, priority="high")["id"]
    w = node(server, "work", behavior={"Web": "ok"}, until={"count": 1})
    seen = w["seen"][0]
    assert seen["jid"] == h and seen["args"] == [{"to": "x"}]
    assert seen["custom"]["jobq"]["priority"] == "high" and seen["custom"]["jobq"]["args_wrapped"]
    assert server.wait_finished(h)["state"] == "completed"
    # FWP -> HTTP: a pushed job leased and completed over HTTP.
    f = jid("f")
    node(server, "push", jobs=[{"jid": f, "jobtype": "Api", "args": [7], "priority": 9,
                               "custom": {"breaker_key": "api.example"}}])
    [leased] = server.lease(queues=["default"])
    assert leased["id"] == f and leased["priority"] == "critical" and leased["breaker_key"] == "api.example"
    r = server.post(f"/v1/jobs/{f}/complete", {"lease_id": leased["lease_id"], "result": {"ok": 1}})
    assert r.status_code == 200, r.text
    assert info(server)["faktory"]["total_processed"] == 2


def test_sigkill_during_load_loses_no_acknowledged_push_or_ack(make_server):
    import json
    import threading
    from fwp import Raw
    s = make_server()
    pushed, acked, lock, stop = set(), set(), threading.Lock(), threading.Event()

    def producer(n):
        try:
            c = connect(s)
            for i in range(100000):
                if stop.is_set():
                    return
                j = f"k{n}-{i:06d}"
                if c.cmd('PUSH {"jid":"%s","jobtype":"T","args":[%d]}' % (j, i)) != "OK":
                    return
                with lock:
                    pushed.add(j)
        except (OSError, EOFError):
            return

    def consumer(n):
        try:
            c = connect(s, wid=f"kw{n}")
            while not stop.is_set():
                job = c.cmd("FETCH default")
                if job is None:
                    continue
                j = json.loads(job)["jid"]
                if c.cmd('ACK {"jid":"%s"}' % j) == "OK":
                    with lock:
                        acked.add(j)
        except (OSError, EOFError):
            return

    threads = [threading.Thread(target=producer, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=consumer, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    time.sleep(3)
    s.kill()
    stop.set()
    for t in threads:
        t.join(15)
    assert len(pushed) > 50 and len(acked) > 10, (len(pushed), len(acked))
    s.start()
    lost = [j for j in pushed if s.get(f"/v1/jobs/{j}").status_code != 200]
    assert not lost, f"{len(lost)} acknowledged pushes lost, e.g. {lost[:5]}"
    not_done = [j for j in acked if s.job(j)["state"] != "completed"]
    assert not not_done, f"{len(not_done)} acknowledged ACKs lost, e.g. {not_done[:5]}"


def test_an_expired_reservation_fails_with_reservation_expired(server):
    """reserve_for is at least 60 s (as in Faktory), so this test waits a
    minute; a worker process that sends no BEAT meanwhile is reaped then."""
    j = jid()
    node(server, "push", jobs=[{"jid": j, "jobtype": "Slow", "args": [], "reserve_for": 60,
                                "custom": FAST}])
    silent = connect(server, wid="silent")
    c = connect(server, wid="holder")
    assert '"jid":"%s"' % j in c.cmd("FETCH default")
    deadline = time.time() + 75
    while server.job(j)["state"] == "running":
        assert time.time() < deadline
        c.cmd('BEAT {"wid":"holder"}')  # the process is alive; the job is not reported
        time.sleep(1)
    assert c.cmd('ACK {"jid":"%s"}' % j) == "OK"  # too late: nothing to settle
    deadline = time.time() + 10  # reaped 60 s after its HELLO; the beating one stays
    silent.sock.settimeout(1)
    while not silent.closed():
        assert time.time() < deadline, "a worker silent for 60 s was not reaped"
    assert c.cmd('BEAT {"wid":"holder"}') == "OK"
    w = node(server, "work", behavior={"Slow": "ok"}, until={"count": 1})
    f = w["seen"][0]["failure"]
    assert f["errtype"] == "ReservationExpired" and f["retry_count"] == 0, f
    assert server.wait_finished(j)["state"] == "completed"
