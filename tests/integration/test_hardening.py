"""Regression tests for the adversarial review (issue 9): each test is named
after what a client, a flood or an operator could do to the server."""
import json
import select
import sqlite3
import socket
import threading
import time

import subprocess

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from conftest import BIN, Producers, assert_clean_log, assert_problem
import fwp


def _batch(prefix, n):
    return {"jobs": [{"id": f"{prefix}-{i}", "type": "t"} for i in range(n)]}


def test_batch_of_explicit_ids_larger_than_the_read_bound_is_accepted(server):
    """300 and then 1000 explicit ids, with 4 clients enqueueing beside them:
    each batch needs a store lookup per id it does not hold; they used to take
    one read slot each, overflow the bound of 256, answer 503 and free the
    request while its other reads were pending (use-after-free)."""
    producers = Producers(server.url, 4, "side")
    try:
        for round_, n in enumerate((300, 300, 300, 1000)):
            r = server.post("/v1/jobs/batch", _batch(f"b{round_}", n), timeout=30)
            assert r.status_code == 201, r.text
            assert len(r.json()["jobs"]) == n
    finally:
        producers.stop()
    # Replaying a batch whose jobs are all known again is idempotent.
    r = server.post("/v1/jobs/batch", _batch("b3", 1000), timeout=30)
    assert r.status_code == 201, r.text
    assert server.get("/v1/stats").json()["totals"]["enqueued"] >= 1900
    assert_clean_log(server)


def test_batch_replay_after_restart_reads_finished_jobs_from_the_store(make_server):
    """The ids of a batch are finished and out of memory: one read loads them."""
    s = make_server(env={"JOBQ_FINISHED_IN_MEMORY": "0"})
    assert s.post("/v1/jobs/batch", _batch("old", 500)).status_code == 201
    for i in range(500):
        assert s.post(f"/v1/jobs/old-{i}/cancel").status_code == 200
    s.restart()
    r = s.post("/v1/jobs/batch", _batch("old", 500), timeout=30)
    assert r.status_code == 201, r.text
    assert {j["state"] for j in r.json()["jobs"]} == {"cancelled"}


def test_ids_naming_more_stored_bytes_than_one_read_may_hold_are_refused(make_server):
    """Ids are the client's to choose, and each may name a stored job of a
    megabyte: a batch of twenty small specs naming twenty such finished jobs
    made the server build all of them in memory (a thousand would be a
    gigabyte for one request). Past STORE_GET_BYTES (16 MiB) the batch and
    the PUSHB are refused, changing nothing; half as many are read; a bulk
    action over all twenty still reaches every one, a read at a time."""
    s = make_server(env={"JOBQ_FINISHED_IN_MEMORY": "0"})
    big = "x" * (1000 * 1024)  # ~1 MB stored; 17 of them pass 16 MiB
    ids = [f"bigjob-{i:03d}" for i in range(20)]
    for i in ids:
        assert s.post("/v1/jobs", {"id": i, "type": "t", "args": [big]},
                      timeout=30).status_code == 201
        assert s.post(f"/v1/jobs/{i}/cancel").status_code == 200
    s.restart()
    enqueued = s.get("/v1/stats").json()["totals"].get("enqueued", 0)

    r = s.post("/v1/jobs/batch", {"jobs": [{"id": i, "type": "t"} for i in ids]}, timeout=30)
    body = assert_problem(r, 413, "validation", "jobs")
    assert "smaller batches" in body["detail"], body
    c = fwp.connect(s)
    try:
        reply = c.cmd("PUSHB " + json.dumps([{"jid": i, "jobtype": "t", "args": []}
                                             for i in ids]))
        assert reply[0] == "ERR" and "smaller batches" in reply[1], reply
    finally:
        c.close()
    r = s.post("/v1/jobs/batch", {"jobs": [{"id": i, "type": "t"} for i in ids[:10]]},
               timeout=30)
    # Read, and so told apart from the stored jobs (other args: a clash).
    assert_problem(r, 409, "conflict", "jobs[0].id")
    assert s.get("/v1/stats").json()["totals"].get("enqueued", 0) == enqueued

    r = s.post("/v1/jobs/bulk", {"filter": {"state": "cancelled"}, "action": "delete"})
    assert r.status_code == 202, r.text
    deadline = time.time() + 60
    while (b := s.get(r.headers["Location"]).json())["state"] == "applying" or \
            b["state"] == "scanning":
        assert time.time() < deadline, b
        time.sleep(0.1)
    assert (b["state"], b["changed"]) == ("done", 20), b
    assert all(s.get(f"/v1/jobs/{i}").status_code == 404 for i in ids)
    assert_clean_log(s)


def test_queue_names_past_ten_thousand_are_counted_but_not_listed(server):
    """Queue names are the clients': /v1/queues and /v1/stats listed every
    queue the store counts, built on the loop at each call, so with 100,000
    queues a call took 300 ms of it (a liveness probe waited as long). They
    list the first 10,000 names now, say so, and count every job."""
    for b in range(11):
        jobs = [{"type": "t", "queue": f"n{b:02d}-{i:04d}"} for i in range(1000)]
        assert server.post("/v1/jobs/batch", {"jobs": jobs}, timeout=60).status_code == 201
    first = sorted(f"n{b:02d}-{i:04d}" for b in range(11) for i in range(1000))[:10000]
    q = server.get("/v1/queues", timeout=60).json()
    assert q.get("queues_truncated") is True, {k: v for k, v in q.items() if k != "queues"}
    assert sorted(x["name"] for x in q["queues"]) == first
    s = server.get("/v1/stats", timeout=60).json()
    assert s["queues_truncated"] is True and len(s["queues"]) == 10000
    assert s["counts"]["queued"] == 11000
    r = server.get("/v1/queues?x=1", timeout=60)  # its own cache entry: built again
    assert r.status_code == 200 and len(r.json()["queues"]) == 10000
    assert_clean_log(server)


def _host_port(server):
    host, port = server.url.rsplit("//", 1)[1].split(":")
    return host, int(port)


def _connect(server, timeout=5):
    s = socket.create_connection(_host_port(server), timeout=timeout)
    return s


def _exchange(server, raw, timeout=5):
    """Sends raw bytes, returns everything the server says until it closes
    or goes quiet for `timeout`."""
    s = _connect(server, timeout)
    try:
        s.sendall(raw)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def _metric(server, name):
    for line in server.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name}")


def _status(reply):
    return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None


def _accepts(server):
    try:
        return server.get("/health/live", timeout=3).status_code == 200
    except requests.RequestException:
        return False


def test_server_keeps_accepting_after_idle_connections_past_the_limit_time_out(make_server):
    """100 idle connections against JOBQ_MAX_CONNECTIONS=10: libmicrohttpd hit
    its own limit, stopped watching its listening socket, and with nothing
    left to time out was never run again: no connection was ever accepted."""
    s = make_server(env={"JOBQ_MAX_CONNECTIONS": "10", "JOBQ_IDLE_TIMEOUT": "1s",
                         "JOBQ_MAX_CONNECTIONS_PER_CLIENT": "0"})
    idle = [_connect(s) for _ in range(100)]
    try:
        time.sleep(3)  # every one of them times out (idle 1 s + header 10 s is not reached)
        deadline = time.time() + 10
        while not _accepts(s) and time.time() < deadline:
            time.sleep(0.2)
        assert _accepts(s)
    finally:
        for c in idle:
            c.close()
    assert _accepts(s)


def test_connections_past_the_limit_are_told_why_and_the_rest_closed(make_server):
    s = make_server(env={"JOBQ_MAX_CONNECTIONS": "4", "JOBQ_MAX_CONNECTIONS_PER_CLIENT": "0"})
    held = [_connect(s) for _ in range(4)]
    try:
        reply = _exchange(s, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(reply) == 503, reply
        assert b"Retry-After: 1" in reply and b"too many open connections" in reply
        # Far past the limit (ADMIT_SLACK = 64 more), a connection is closed at once.
        extra = [_connect(s) for _ in range(80)]
        closed, pending, deadline = 0, list(extra), time.time() + 3
        while pending and time.time() < deadline:
            readable, _, _ = select.select(pending, [], [], 0.2)
            for c in readable:
                pending.remove(c)
                try:
                    closed += c.recv(1) == b""
                except ConnectionResetError:
                    closed += 1
        for c in extra:
            c.close()
        assert closed >= 16
    finally:
        for c in held:
            c.close()
    deadline = time.time() + 10
    while not _accepts(s) and time.time() < deadline:
        time.sleep(0.1)
    assert _accepts(s)
    assert _metric(s, "jobq_connections_refused_total") >= 16
    assert _metric(s, "jobq_connections_over_limit_total") >= 1


def test_connections_per_client_address_are_limited(make_server):
    s = make_server(env={"JOBQ_MAX_CONNECTIONS_PER_CLIENT": "3"})
    held = [_connect(s) for _ in range(3)]
    try:
        reply = _exchange(s, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _status(reply) == 503, reply
        assert b"from 127.0.0.1" in reply
    finally:
        for c in held:
            c.close()
    time.sleep(0.3)
    assert _accepts(s)


def _drip_until_closed(server, head, byte, limit_s=15):
    """Sends head, then one byte at a time; returns how long until the server
    closed the connection (None if it never did within limit_s)."""
    c = _connect(server, timeout=1)
    start = time.time()
    try:
        c.sendall(head)
        while time.time() - start < limit_s:
            try:
                c.sendall(byte)
                if c.recv(1) == b"":
                    return time.time() - start
            except socket.timeout:
                continue
            except (BrokenPipeError, ConnectionResetError):
                return time.time() - start
        return None
    finally:
        c.close()


def test_a_client_dripping_its_headers_is_cut_off_at_the_header_deadline(make_server):
    """One byte a second kept libmicrohttpd's idle timer fresh for ever."""
    s = make_server(env={"JOBQ_HEADER_TIMEOUT": "1s", "JOBQ_IDLE_TIMEOUT": "2s"})
    closed_after = _drip_until_closed(s, b"GET /health/live HTTP/1.1\r\n", b"X")
    assert closed_after is not None and closed_after < 6, closed_after
    assert _accepts(s)
    assert _metric(s, "jobq_connections_timed_out_total") == 1


def test_a_client_dripping_its_body_is_cut_off_at_the_body_deadline(make_server):
    s = make_server(env={"JOBQ_BODY_TIMEOUT": "1s", "JOBQ_IDLE_TIMEOUT": "2s"})
    head = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n")
    closed_after = _drip_until_closed(s, head, b" ")
    assert closed_after is not None and closed_after < 6, closed_after
    assert _accepts(s)


def test_two_different_content_lengths_are_refused(server):
    reply = _exchange(server, b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\n"
                              b"Content-Length: 2\r\n\r\n{\"type\":\"t\"}\n")
    assert _status(reply) == 400, reply
    assert b'"field":"Content-Length"' in reply
    assert server.get("/v1/stats").json()["totals"].get("enqueued", 0) == 0


def test_content_length_with_chunked_is_refused_and_nothing_smuggled(server):
    smuggled = b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    raw = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" % len(body)) + body
    reply = _exchange(server, raw, timeout=3)
    assert _status(reply) == 400, reply
    assert reply.count(b"HTTP/1.1 ") == 1, reply  # the second request was not answered
    assert b"Connection: close" in reply


def test_unknown_transfer_encoding_is_501_not_a_hang(server):
    raw = b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxxxx"
    start = time.time()
    reply = _exchange(server, raw, timeout=5)
    assert _status(reply) == 501, reply
    assert time.time() - start < 4


def test_an_encoded_nul_in_the_path_does_not_truncate_it(server):
    server.enqueue(id="victim")
    r = server.req("DELETE", "/v1/jobs/victim%00x")
    assert_problem(r, 400, "validation", "id")
    assert server.job("victim")["state"] == "queued"


def test_an_over_large_body_sent_before_reading_gets_its_413(make_server):
    """The client writes all of a 2 MiB body, then reads: it gets the 413
    (lingering close) rather than a connection reset."""
    s = make_server(env={"JOBQ_MAX_BODY_BYTES": "65536"})
    body = b"x" * (2 << 20)
    raw = (b"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    reply = _exchange(s, raw, timeout=5)
    assert _status(reply) == 413, reply[:200]
    assert b'"field":"body"' in reply


def _deep(n):
    v = 1
    for _ in range(n):
        v = {"a": v}
    return v


def test_a_worker_cannot_store_a_document_too_deep_to_read_back(make_server):
    """error.context 2045 levels deep was accepted; the stored job was then
    deeper than the parser reads, and the next start refused to run."""
    s = make_server()
    job = s.enqueue(id="deep", max_retries=3)
    lease = s.lease()[0]
    raw = ('{"lease_id": "%s", "error": {"type": "internal", "context": %s1%s}}'
           % (lease["lease_id"], '{"a":' * 2045, "}" * 2045))
    r = s.post(f"/v1/jobs/{job['id']}/fail", raw=raw, headers={"Content-Type": "application/json"})
    p = assert_problem(r, 400, "validation")
    assert p["field"].startswith("error.context"), p
    assert s.job("deep")["state"] == "running"  # nothing changed
    # Within the bound, a deep context is kept and survives a restart.
    body = {"lease_id": lease["lease_id"], "error": {"type": "internal", "context": _deep(60)}}
    assert s.post("/v1/jobs/deep/fail", body).status_code == 200
    s.restart()
    assert s.job("deep")["state"] == "retrying"
    assert s.job("deep")["errors"][-1]["context"] == _deep(60)


@pytest.mark.sqlite_only
def test_an_unreadable_stored_job_is_quarantined_not_a_reason_to_refuse_to_start(make_server):
    s = make_server()
    s.enqueue(id="good")
    s.enqueue(id="bad")
    assert s.stop() == 0
    db = sqlite3.connect(s.data / "jobq.db")
    db.execute("UPDATE jobs SET doc = ? WHERE id = 'bad'", ("[" * 3000 + "]" * 3000,))
    db.commit()
    db.close()
    s.start()
    assert s.job("good")["state"] == "queued"
    errors = [l for l in s.log_lines() if l.get("job_id") == "bad" and l["level"] == "error"]
    assert errors and "quarantined" in errors[0]["msg"]
    q = s.get("/v1/quarantine").json()
    assert q["count"] == 1 and q["jobs"][0]["id"] == "bad", q
    assert "jobq_quarantined_jobs 1" in s.get("/metrics").text
    assert_problem(s.get("/v1/jobs/bad"), 500, "internal", "id")
    listed = {j["id"]: j for j in s.get("/v1/jobs").json()["jobs"]}
    assert "unreadable" in listed["bad"]
    # Its id is not handed to a new job, one at a time or in a batch...
    assert_problem(s.post("/v1/jobs", {"id": "bad", "type": "t"}), 409, "conflict", "id")
    r = s.post("/v1/jobs/batch", {"jobs": [{"id": "x1", "type": "t"}, {"id": "bad", "type": "t"}]})
    assert_problem(r, 409, "conflict", "jobs[1].id")
    assert s.get("/v1/jobs/x1").status_code == 404
    # ...until an admin deletes the row.
    assert s.req("DELETE", "/v1/jobs/bad").status_code == 204
    assert s.get("/v1/quarantine").json()["count"] == 0
    assert s.post("/v1/jobs", {"id": "bad", "type": "t"}).status_code == 201


@pytest.mark.sqlite_only
def test_a_second_server_on_the_same_database_exits_with_a_clear_message(make_server):
    first = make_server()
    first.enqueue(id="mine")
    second = make_server(start=False)
    second.data = first.data
    with pytest.raises(RuntimeError) as e:
        second.start(timeout=10)
    assert "in use by another jobq" in str(e.value)
    assert f"pid {first.proc.pid}" in str(e.value)
    second.proc = None
    assert first.job("mine")["state"] == "queued"  # the first one is untouched
    # `jobq migrate` is refused too while the server runs.
    r = subprocess.run([BIN, "migrate", "--data-dir", str(first.data)], env=first.env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "in use by another jobq" in r.stderr


@pytest.mark.sqlite_only
@pytest.mark.parametrize("durability", ["fsync", "os"])
@pytest.mark.parametrize("compact", ["250ms", "10m"])
def test_deleting_the_database_while_running_loses_nothing_acknowledged(make_server, durability,
                                                                        compact):
    """With compaction held off, the writes before the deletion are still
    pending when the journal's loss is found, and applying them finds the
    database lost: the write that found it was acknowledged, though it was
    in neither (a SIGKILL-free loss, found by this test's first form)."""
    s = make_server(env={"JOBQ_DURABILITY": durability, "JOBQ_COMPACT_INTERVAL": compact})
    acked = [s.enqueue(id=f"before-{i}")["id"] for i in range(20)]
    for f in s.data.glob("jobq.db*"):
        f.unlink()
    # Whatever is acknowledged from here on must survive too; soon nothing is.
    refused = None
    for i in range(200):
        r = s.post("/v1/jobs", {"id": f"after-{i}", "type": "t"})
        if r.status_code == 201:
            acked.append(f"after-{i}")
            continue
        assert_problem(r, 503, "unavailable")
        refused = r.json()
        break
        time.sleep(0.01)
    if refused is None:
        deadline = time.time() + 5
        while time.time() < deadline and refused is None:
            r = s.post("/v1/jobs", {"id": "late", "type": "t"})
            if r.status_code == 503:
                refused = r.json()
            else:
                acked.append("late")
                time.sleep(0.2)
    assert refused and "deleted" in refused["detail"], refused
    r = s.get("/health/ready")
    assert r.status_code == 503 and r.headers.get("Retry-After"), r.text
    assert (s.data / "jobq.db").exists()  # written back
    assert s.stop() == 0
    s.start()
    have = {j["id"] for j in s.get("/v1/jobs?limit=1000").json()["jobs"]}
    assert set(acked) <= have, set(acked) - have


def test_reads_answer_within_a_bound_while_the_store_cannot_commit(make_server):
    """With commits failing, list and stats waited for the disk (12 s)."""
    s = make_server(env={"JOBQ_FAULT_COMMIT_FAIL_MS": "8000", "JOBQ_CACHE_TTL_MS": "0"})
    t = threading.Thread(target=lambda: s.post("/v1/jobs", {"type": "t"}, timeout=30))
    t.start()
    time.sleep(0.5)
    for path in ("/v1/jobs", "/v1/stats", "/v1/queues"):
        start = time.time()
        r = s.get(path, timeout=10)
        assert time.time() - start < 2, path
        assert_problem(r, 503, "unavailable")
        assert r.headers.get("Retry-After")
    t.join(30)
    assert s.get("/v1/jobs").status_code == 200  # and back once the disk is


def test_small_findings(make_server):
    s = make_server(env={"JOBQ_RATE_LIMIT": "1", "JOBQ_RATE_BURST": "5"})
    # RateLimit-Reset is the whole seconds until the bucket is full: 5, not 6.
    for _ in range(5):
        r = s.get("/v1/stats")
    assert r.headers["RateLimit-Reset"] == "5", r.headers
    time.sleep(5.2)
    # An explicit "breaker_key": null is the default, not an error.
    assert s.post("/v1/jobs", {"id": "bk", "type": "t", "breaker_key": None}).status_code == 201
    # A run_at of the epoch comes back as the epoch.
    j = s.post("/v1/jobs", {"id": "epoch", "type": "t", "run_at": "1970-01-01T00:00:00Z"}).json()
    assert j["run_at"].startswith("1970-01-01T00:00:00"), j
    time.sleep(1.1)
    # A requeue is routine: logged at debug, like the docs say.
    lease = s.lease()[0]
    s.post(f"/v1/jobs/{lease['id']}/fail", {"lease_id": lease["lease_id"],
                                            "error": {"type": "validation"}})
    time.sleep(1.1)
    assert s.post(f"/v1/jobs/{lease['id']}/retry").status_code == 200
    assert not [l for l in s.log_lines() if l.get("event") == "requeued"]


@pytest.mark.cluster_differs("a cluster node's row is not renewed while its batch is held: "
                             "readiness fails for that after its TTL (JOBQ_NODE_TTL)")
def test_a_store_held_in_one_commit_fails_readiness_until_it_lands(make_server):
    """A disk or database that hangs (here every commit takes 12 s): the
    batch in hand has failed nothing yet, yet no write can be acknowledged.
    Once the store has held it 10 s, readiness answers 503 naming the store
    and new writes are refused at once, so a load balancer moves on; the
    held write lands and is answered, and readiness comes back."""
    srv = make_server(env={"JOBQ_FAULT_COMMIT_DELAY_MS": "12000"})
    answer = {}
    t = threading.Thread(target=lambda: answer.setdefault("r", srv.post(
        "/v1/jobs", {"id": "slow", "type": "t"}, timeout=60)))
    t0 = time.time()
    t.start()
    end = t0 + 30
    while time.time() < end and srv.get("/health/ready").status_code == 200:
        time.sleep(0.1)
    held = time.time() - t0
    r = srv.get("/health/ready")
    assert_problem(r, 503, "unavailable", "store")
    assert "committing one batch" in r.text, r.text
    assert 9 < held < 12, held
    t1 = time.time()
    assert_problem(srv.post("/v1/jobs", {"type": "t"}), 503, "unavailable")
    assert time.time() - t1 < 2
    t.join(40)
    assert answer["r"].status_code == 201, answer["r"].text
    assert srv.get("/health/ready").status_code == 200
    assert srv.job("slow")["state"] == "queued"


def test_concurrent_statistics_share_one_count(make_server):
    """Statistics count every job (on PostgreSQL a scan of every row), and
    each caller ran its own count: a dashboard, a scrape and a flood of
    /v1/stats added up. Callers that come while a count is under way, with
    no write queued since, join it (store.c: join_stats)."""
    srv = make_server(env={"JOBQ_FAULT_READ_DELAY_MS": "1000", "JOBQ_CACHE_TTL_MS": "0"})
    assert srv.post("/v1/jobs", {"type": "t"}).status_code == 201

    def stats_reads():
        text = srv.get("/metrics", timeout=30).text
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                if (s.name == "jobq_store_statement_duration_seconds_count"
                        and s.labels.get("statement") == "stats"):
                    return s.value
        raise AssertionError("no stats statement count")

    before = stats_reads()
    answers = []
    ts = [threading.Thread(target=lambda: answers.append(srv.get("/v1/stats", timeout=30)))
          for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert [r.status_code for r in answers] == [200] * 8
    assert all(r.json()["counts"]["queued"] == 1 for r in answers), [r.text for r in answers]
    # one count for the eight (and on a cluster node one for each scrape)
    assert stats_reads() - before <= 3
    assert_clean_log(srv)
