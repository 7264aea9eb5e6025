"""jobq on PostgreSQL (JOBQ_DATABASE_URL=postgres://...), one node per
database: a real cluster started by the tests (pg.py), a real server over
real sockets, and the rows read back with psql."""
import base64
import os
import re
import subprocess
import threading
import time

import pytest
import requests

from conftest import BIN, assert_problem, clean_env
from pg import HeldSession, Postgres, history_parts, rows, undo_schema_8


def test_the_full_cycle_lands_in_postgres(pg_server, postgres):
    srv = pg_server()
    low = srv.enqueue(id="low", priority="low", args={"n": 1})
    srv.enqueue(id="high", priority="high", args={"n": 2})
    srv.enqueue(id="later", delay_ms=600000)
    assert low["state"] == "queued"
    got = srv.lease(max=1)
    assert [j["id"] for j in got] == ["high"]
    r = srv.post("/v1/jobs/high/complete", {"lease_id": got[0]["lease_id"], "result": {"ok": 1}})
    assert r.status_code == 200, r.text
    got = srv.lease(max=1)
    assert [j["id"] for j in got] == ["low"]
    r = srv.post("/v1/jobs/low/fail", {"lease_id": got[0]["lease_id"],
                                       "error": {"type": "internal", "message": "boom"}})
    assert r.status_code == 200, r.text
    assert srv.job("high")["result"] == {"ok": 1}
    low = srv.job("low")
    assert low["state"] == "retrying" and low["errors"][0]["message"] == "boom"
    page = srv.get("/v1/jobs?limit=2").json()
    assert [j["id"] for j in page["jobs"]] == ["later", "high"]
    rest = srv.get(f"/v1/jobs?limit=2&cursor={page['next_cursor']}").json()
    assert [j["id"] for j in rest["jobs"]] == ["low"]
    assert [j["id"] for j in srv.get("/v1/jobs?state=completed").json()["jobs"]] == ["high"]
    counts = srv.get("/v1/stats").json()["counts"]
    assert (counts["completed"], counts["retrying"], counts["pending"]) == (1, 1, 1)
    url = srv.env["JOBQ_DATABASE_URL"]
    stored = dict(rows(postgres, url, "SELECT id, state FROM jobs_all"))
    assert stored == {"high": "completed", "low": "retrying", "later": "pending"}


def test_acknowledged_jobs_survive_kill_9(pg_server):
    srv = pg_server()
    for i in range(50):
        srv.enqueue(id=f"k{i}", args={"i": i})
    got = srv.lease(max=1)
    srv.post(f"/v1/jobs/{got[0]['id']}/complete", {"lease_id": got[0]["lease_id"]})
    srv.kill()
    srv.start()
    states = {srv.job(f"k{i}")["state"] for i in range(50)}
    assert states <= {"queued", "running", "completed"}
    assert srv.job(got[0]["id"])["state"] == "completed"
    assert len(srv.lease(max=100)) >= 48  # the others, and the lease that was not durable
    # an id the engine no longer holds is still found: there is no filter of ids here
    r = srv.post("/v1/jobs", {"id": got[0]["id"], "type": "t", "args": got[0]["args"]})
    assert r.status_code == 200 and r.json()["state"] == "completed", r.text
    r = srv.post("/v1/jobs", {"id": got[0]["id"], "type": "t", "args": {"other": 1}})
    assert_problem(r, 409, "conflict", "id")


def test_a_second_server_on_the_same_database_is_refused(pg_server, postgres):
    first = pg_server()
    url = first.env["JOBQ_DATABASE_URL"]
    second = pg_server(url=url, start=False)
    try:
        second.start()
        raise AssertionError("a second jobq started on the same database")
    except RuntimeError as e:
        assert "another jobq is using this database" in str(e)
    second.proc = None
    first.enqueue(id="still")
    assert first.job("still")["state"] == "queued"
    first.stop()
    third = pg_server(url=url)  # the lock went with the first
    assert third.job("still")["state"] == "queued"


def test_migrate_shows_no_password(postgres, tmp_path):
    url = postgres.new_database().replace("jobq@", "jobq:hunter2@")
    env = clean_env({"JOBQ_DATABASE_URL": url})
    run = lambda *a: subprocess.run([BIN, "migrate", *a], env=env, capture_output=True,
                                    text=True, timeout=60, cwd=tmp_path)
    status = run("--status")
    assert "migrations pending" in status.stdout, status
    done = run()
    assert done.returncode == 0, done
    assert re.search(r"at schema version [2-9]", done.stdout), done.stdout  # cluster mode's is 2
    assert "jobq:***@" in done.stdout
    for out in (status, done):
        assert "hunter2" not in out.stdout + out.stderr
    env["JOBQ_DATABASE_URL"] = url.replace("postgres://", "postgresql://")
    assert "up to date" in run("--status").stdout
    shown = subprocess.run([BIN, "serve", "--print-config"], env=env, capture_output=True,
                           text=True, timeout=60, cwd=tmp_path).stdout
    assert "JOBQ_DATABASE_URL=postgresql://jobq:***@" in shown, shown
    assert "hunter2" not in shown
    env["JOBQ_DATABASE_URL"] = "mysql://u:hunter2@h/db"
    bad = run()
    assert bad.returncode != 0 and "mysql://u:***@h/db" in bad.stderr
    assert "hunter2" not in bad.stderr


def enqueue_in_outage(srv):
    """With the database stopped: enqueues "during" from a thread (it waits
    on the store, or is refused), and waits until readiness fails. Returns
    the thread and where its answer ("r") or exception ("e") lands."""
    answer = {}

    def enqueue_during():
        try:
            answer["r"] = requests.post(srv.url + "/v1/jobs", json={"id": "during", "type": "t"},
                                        timeout=60)
        except requests.RequestException as e:
            answer["e"] = e
    t = threading.Thread(target=enqueue_during)
    t.start()
    end = time.time() + 20
    while time.time() < end and srv.get("/health/ready").status_code == 200:
        time.sleep(0.1)
    return t, answer


def test_a_database_outage_answers_503_and_loses_nothing(make_server):
    """PostgreSQL stops under a running jobq: readiness fails, writes are
    refused with 503 or wait, nothing acknowledged is lost, and once the
    database is back jobq reconnects by itself. A cluster of its own."""
    cluster = Postgres()
    try:
        url = cluster.new_database()
        srv = make_server(env={"JOBQ_DATABASE_URL": url})
        srv.enqueue(id="before")
        cluster.halt()
        t, waiting = enqueue_in_outage(srv)
        assert_problem(srv.get("/health/ready"), 503, "unavailable", "store")
        assert_problem(srv.post("/v1/jobs", {"type": "t"}), 503, "unavailable")
        cluster.start()
        t.join(60)
        assert not t.is_alive()
        if "r" in waiting:  # acknowledged: it must be there
            assert waiting["r"].status_code in (201, 503), waiting["r"].text
        end = time.time() + 20
        while time.time() < end and srv.get("/health/ready").status_code != 200:
            time.sleep(0.1)
        assert srv.get("/health/ready").status_code == 200
        srv.enqueue(id="after")
        srv.kill()
        srv.start()
        assert srv.job("before")["state"] == "queued"
        assert srv.job("after")["state"] == "queued"
        if "r" in waiting and waiting["r"].status_code == 201:
            assert srv.job("during")["state"] == "queued"
    finally:
        cluster.stop()


def test_a_stop_while_the_database_is_gone_ends(make_server):
    """SIGTERM while PostgreSQL is down: the writer would retry its batch
    for ever, so the stop gives up once the store has failed for a whole
    JOBQ_SHUTDOWN_GRACE, says so, and exits with status 1. The write it
    held was never acknowledged, and is not there after a restart."""
    cluster = Postgres()
    try:
        url = cluster.new_database()
        srv = make_server(env={"JOBQ_DATABASE_URL": url, "JOBQ_SHUTDOWN_GRACE": "1s"})
        srv.enqueue(id="before")
        cluster.halt()
        t, answer = enqueue_in_outage(srv)
        assert srv.get("/health/ready").status_code == 503
        t0 = time.time()
        code = srv.stop(timeout=30)
        assert code == 1, srv.log_text()[-2000:]
        assert time.time() - t0 < 15
        assert "kept failing while stopping" in srv.log_text()
        t.join(10)
        assert "r" not in answer or answer["r"].status_code != 201, answer["r"].text
        cluster.start()
        srv.start()
        assert srv.job("before")["state"] == "queued"
        assert srv.get("/v1/jobs/during").status_code == 404
    finally:
        cluster.stop()


@pytest.mark.parametrize("mode", ["alone", "cluster"])
def test_a_database_that_stops_answering_does_not_wedge_jobq(make_server, mode):
    """PostgreSQL frozen (SIGSTOP): its sockets stay open and the kernel
    acknowledges what jobq sends, so no TCP timeout fires; a blocking
    libpq call waited for good, readiness stayed 200 and a stop hung.
    Now readiness fails once a batch has been held 10 s, new writes
    answer 503 at once, the held batch is given up after the session's
    bound of silence (its lock wait, 1 s from the URL here, plus 25 s)
    and retried; once the server answers again everything acknowledged is
    there. Frozen again, a stop ends within its bounds. A cluster node
    (its wake-ups' session too) the same, its readiness failing for
    whichever comes first, the held batch or its row not renewed. A
    cluster of its own."""
    cluster = Postgres()
    try:
        url = cluster.new_database() + "?options=-c%20lock_timeout%3D1s"
        env = {"JOBQ_DATABASE_URL": url, "JOBQ_SHUTDOWN_GRACE": "1s"}
        if mode == "cluster":
            env.update({"JOBQ_CLUSTER": "true", "JOBQ_NODE_TTL": "10s", "JOBQ_CLAIM_POLL": "100ms"})
        srv = make_server(env=env)
        srv.enqueue(id="before")
        cluster.freeze()
        t0 = time.time()
        t, waiting = enqueue_in_outage(srv)
        assert time.time() - t0 < 25
        r = srv.get("/health/ready")
        assert_problem(r, 503, "unavailable", "store")
        assert "committing one batch" in r.text or mode == "cluster", r.text
        t1 = time.time()
        assert_problem(srv.post("/v1/jobs", {"type": "t"}), 503, "unavailable")
        assert time.time() - t1 < 5
        end = time.time() + 60
        while time.time() < end and "did not answer for 26000 ms" not in srv.log_text():
            time.sleep(0.2)
        assert "did not answer for 26000 ms" in srv.log_text()
        cluster.thaw()
        t.join(70)
        assert not t.is_alive()
        end = time.time() + 30
        while time.time() < end and srv.get("/health/ready").status_code != 200:
            time.sleep(0.1)
        assert srv.get("/health/ready").status_code == 200
        srv.enqueue(id="after")
        if "r" in waiting and waiting["r"].status_code == 201:
            assert srv.job("during")["state"] == "queued"
        cluster.freeze()
        t, _ = enqueue_in_outage(srv)
        t0 = time.time()
        code = srv.stop(timeout=90)
        assert time.time() - t0 < 60, time.time() - t0
        assert code in (0, 1), srv.log_text()[-2000:]
        cluster.thaw()
        t.join(70)
        srv.start()
        assert srv.job("before")["state"] == "queued"
        assert srv.job("after")["state"] == "queued"
        assert srv.stop() == 0  # while its database is still there
    finally:
        cluster.stop()


@pytest.mark.parametrize("mode", ["alone", "cluster"])
def test_an_operators_lock_left_held_does_not_wedge_jobq(pg_server, postgres, mode):
    """An operator's transaction left open on a job's row: the completion
    that needs the row waits a bounded time (lock_timeout), then readiness
    fails and new writes answer 503 instead of queueing unseen behind it;
    once the lock goes, the completion lands and answers. A LOCK TABLE
    fails a list within the bound too (twice the bound: a read that failed
    before its first row is tried once more on a new session). The cluster
    node's bound is the one its URL sets (jobq's own would be its TTL plus
    5 s): a session's lock_timeout is kept."""
    url = postgres.new_database()
    env = {}
    if mode == "cluster":
        env = {"JOBQ_CLUSTER": "true", "JOBQ_NODE_TTL": "10s", "JOBQ_CLAIM_POLL": "100ms"}
    srv = pg_server(url=url + ("?options=-c%20lock_timeout%3D2s" if env else ""), env=env)
    srv.enqueue(id="held")
    got = srv.lease(max=1)
    op = HeldSession(postgres, url)
    try:
        op.run("BEGIN; SELECT 1 FROM jobs WHERE id='held' FOR UPDATE;")
        answer = {}
        t = threading.Thread(target=lambda: answer.setdefault("r", srv.post(
            "/v1/jobs/held/complete", {"lease_id": got[0]["lease_id"]}, timeout=60)))
        t.start()
        # Within the bound and well before the other one (2 s against 15 s
        # for the cluster node, 5 s alone).
        end = time.time() + (10 if env else 30)
        while time.time() < end and srv.get("/health/ready").status_code == 200:
            time.sleep(0.1)
        assert_problem(srv.get("/health/ready"), 503, "unavailable", "store")
        assert_problem(srv.post("/v1/jobs", {"type": "t"}), 503, "unavailable")
        assert "lock timeout" in srv.log_text()
        assert "r" not in answer
        op.run("ROLLBACK;")
        t.join(30)
        assert answer["r"].status_code == 200, answer["r"].text
        end = time.time() + 20
        while time.time() < end and srv.get("/health/ready").status_code != 200:
            time.sleep(0.1)
        assert srv.job("held")["state"] == "completed"
        op.run("BEGIN; LOCK TABLE jobs;")
        t0 = time.time()
        r = srv.get("/v1/jobs?queue=nowhere", timeout=60)
        assert r.status_code == 503 and time.time() - t0 < 20, r.text
        op.run("ROLLBACK;")
        end = time.time() + 20
        while time.time() < end and srv.get("/health/ready").status_code != 200:
            time.sleep(0.1)
        assert srv.get("/v1/jobs?queue=elsewhere").status_code == 200
    finally:
        op.close()


@pytest.mark.parametrize("mode", ["alone", "cluster"])
def test_a_large_payload_is_written_once(pg_server, postgres, mode):
    """Args of 1 KiB or more are kept apart from the rest of the job's
    row, which every change rewrites, in a row of payloads written with the
    enqueue (schema 8): twenty heartbeats of a job with 64 KiB of args and
    its move to history write WAL for far less than one copy of them (each
    heartbeat wrote a copy before schema 6, the move one before schema 8).
    The args come back whole through every read: a lease (a claim in
    cluster mode), a read by id, a list, a restart's load; short args stay
    inside the row, and a job deleted takes its payload along."""
    url = postgres.new_database()
    env = {"JOBQ_CLUSTER": "true", "JOBQ_CLAIM_POLL": "100ms"} if mode == "cluster" else {}
    srv = pg_server(url=url, env=env)
    blob = base64.b64encode(os.urandom(48 * 1024)).decode()  # 64 KiB that barely compress
    srv.enqueue(id="small", queue="s", args={"x": 1})
    srv.enqueue(id="big", queue="b", args={"blob": blob})
    srv.enqueue(id="later", queue="l", args={"blob": blob[::-1]})
    got = srv.lease(queues=["b"])
    assert got[0]["id"] == "big" and got[0]["args"] == {"blob": blob}

    def wal():
        return int(rows(postgres, url, "SELECT pg_current_wal_lsn() - '0/0'")[0][0])
    before = wal()
    for i in range(20):
        r = srv.post("/v1/jobs/big/heartbeat", {"lease_id": got[0]["lease_id"],
                                                "progress": {"i": i}})
        assert r.status_code == 200, r.text
    r = srv.post("/v1/jobs/big/complete", {"lease_id": got[0]["lease_id"]})
    assert r.status_code == 200, r.text
    grown = wal() - before
    assert grown < len(blob) // 2, grown
    assert srv.job("big")["args"] == {"blob": blob}
    listed = srv.get("/v1/jobs?queue=b").json()["jobs"]
    assert [j["args"] for j in listed] == [{"blob": blob}]
    apart = "SELECT id, args_at IS NOT NULL, (SELECT count(*) FROM payloads p WHERE p.id = j.id)" \
            " FROM (SELECT id, args_at FROM jobs UNION ALL SELECT id, args_at FROM history) j" \
            " WHERE id IN ('big','small','later') ORDER BY 1"
    assert rows(postgres, url, apart) == [["big", "t", "1"], ["later", "t", "1"],
                                          ["small", "f", "0"]]
    assert rows(postgres, url, "SELECT count(*) FROM history WHERE id = 'big'") == [["1"]]
    srv.enqueue(id="gone", queue="g", args={"blob": blob})
    assert srv.post("/v1/jobs/gone/cancel").status_code == 200
    for jid in ("gone", "big"):
        r = srv.req("DELETE", f"/v1/jobs/{jid}")
        assert r.status_code in (200, 204), r.text
    assert rows(postgres, url, "SELECT id FROM payloads ORDER BY 1") == [["later"]]
    # Rows are the disk's: where the args go back may be anything, and
    # their payload may be gone. Such a job reads as damaged once read from
    # the database (after a restart alone), and nothing else fails.
    for i, at in enumerate((-5, 2147483647, 3, None, "args_at")):
        srv.enqueue(id=f"odd{i}", queue="o", args={"blob": blob})
        at_sql = "NULL" if at is None else str(at)
        rows(postgres, url, f"UPDATE jobs SET args_at = {at_sql} WHERE id = 'odd{i}'")
    rows(postgres, url, "DELETE FROM payloads WHERE id = 'odd4'")
    srv.kill()
    srv.start()
    again = srv.lease(queues=["l"])
    assert again[0]["id"] == "later" and again[0]["args"] == {"blob": blob[::-1]}
    assert srv.lease(queues=["s"])[0]["args"] == {"x": 1}
    for i in range(5):
        assert_problem(srv.get(f"/v1/jobs/odd{i}"), 500, "internal", "id")
    assert srv.lease(queues=["o"]) == []
    assert srv.get("/v1/jobs/big").status_code == 404
    assert srv.get("/health/ready").status_code == 200


def test_a_finished_job_alone_moves_to_history(pg_server, postgres):
    """A node alone keeps only its live jobs in `jobs`, as a cluster does: a
    job that finishes moves to the partition of history of its kind and
    finishing time, which retention drops whole; statistics count the
    live rows and history's counts (schema 7), and both hold after a
    kill -9 and an operator's retry back. A partition dropped takes its
    jobs' payloads along (schema 8), one left detached by a sweep stopped
    midway too."""
    url = postgres.new_database()
    srv = pg_server(url=url, env={"JOBQ_RETAIN_COMPLETED": "8s", "JOBQ_RETAIN_FAILED": "1h",
                                  "JOBQ_HISTORY_PARTITION_MIN": "1s", "JOBQ_CACHE_TTL_MS": "0"})
    end = time.time() + 10
    while not all(any(p.startswith(k) for p in history_parts(postgres, url))
                  for k in ("history_c_", "history_f_")) and time.time() < end:
        time.sleep(0.1)
    big = {"big": "z" * 2000}
    for jid in ("done4", "dead4", "wait4"):
        srv.enqueue(id=jid, queue="q", args=big)
    for jid, outcome in (("done4", "complete"), ("dead4", "fail")):
        got = srv.lease(queues=["q"], max=1)
        assert got[0]["id"] == jid
        body = {"lease_id": got[0]["lease_id"]}
        if outcome == "fail":
            body["error"] = {"type": "validation", "message": "bad"}
        assert srv.post(f"/v1/jobs/{jid}/{outcome}", body).status_code == 200

    def counts():
        c = srv.get("/v1/stats").json()["counts"]
        return c["completed"], c["failed"], c["queued"]
    assert rows(postgres, url, "SELECT id FROM jobs") == [["wait4"]]
    where = dict(rows(postgres, url, "SELECT id, tableoid::regclass::text FROM history"))
    assert where["done4"].startswith("history_c_") and where["dead4"].startswith("history_f_")
    assert counts() == (1, 1, 1)
    srv.kill()
    srv.start()
    assert counts() == (1, 1, 1)
    assert srv.job("done4")["state"] == "completed"
    assert srv.post("/v1/jobs/dead4/retry", {}).status_code == 200
    assert counts() == (1, 0, 2)
    assert sorted(rows(postgres, url, "SELECT id FROM jobs")) == [["dead4"], ["wait4"]]
    assert srv.job("dead4")["args"] == big
    # As a sweep that detached a partition and stopped leaves it.
    rows(postgres, url, "CREATE TABLE history_c_1000_2000 (LIKE history);"
         " INSERT INTO history_c_1000_2000 SELECT * FROM history WHERE id = 'done4';"
         " UPDATE history_c_1000_2000 SET id = 'stray';"
         " INSERT INTO payloads SELECT 'stray', 0, args FROM payloads WHERE id = 'done4'")
    end = time.time() + 20
    while where["done4"] in history_parts(postgres, url) and time.time() < end:
        time.sleep(0.2)
    assert srv.get("/v1/jobs/done4").status_code == 404
    assert counts() == (0, 0, 2)
    assert rows(postgres, url, "SELECT id FROM payloads ORDER BY 1") == [["dead4"], ["wait4"]]
    stray = "SELECT count(*) FROM pg_class WHERE relname = 'history_c_1000_2000'"
    assert rows(postgres, url, stray) == [["0"]]


def test_a_lost_commit_alone_moves_a_job_to_history_once(pg_server, postgres):
    """Every 3rd commit is reported failed after it committed
    (JOBQ_FAULT_COMMIT_LOST_EVERY): the batch runs again, and a finished
    job's move must find its own row in history instead of adding another
    (history has no key to conflict on), and count it once."""
    url = postgres.new_database()
    srv = pg_server(url=url, env={"JOBQ_FAULT_COMMIT_LOST_EVERY": "3", "JOBQ_CACHE_TTL_MS": "0"})

    def until_ok(call):  # a write in the batch whose outcome was lost answers 503
        end = time.time() + 30
        while (r := call()).status_code == 503 and time.time() < end:
            time.sleep(0.1)
        return r
    for i in range(30):
        assert until_ok(lambda: srv.post("/v1/jobs", {"id": f"lost{i}", "type": "t",
                                                      "queue": "q"})).status_code in (200, 201)
    done = set()
    end = time.time() + 60
    while len(done) < 30 and time.time() < end:
        for j in until_ok(lambda: srv.post("/v1/lease", {"worker": "w", "queues": ["q"],
                                                         "max": 10})).json()["jobs"]:
            r = until_ok(lambda: srv.post(f"/v1/jobs/{j['id']}/complete",
                                          {"lease_id": j["lease_id"]}))
            if r.status_code == 200 or srv.job(j["id"])["state"] == "completed":
                done.add(j["id"])
    assert len(done) == 30
    assert "outcome was lost" in srv.log_text()
    assert rows(postgres, url, "SELECT count(*), count(DISTINCT id) FROM history") == \
        [["30", "30"]]
    assert rows(postgres, url, "SELECT sum(n) FROM history_counts") == [["30"]]
    assert srv.get("/v1/stats").json()["counts"]["completed"] == 30


def test_schema_8_moves_the_args_apart_to_payloads(pg_server, postgres):
    """Migration 8 moves the args kept apart in rows of jobs and history
    (schema 6) into payloads, one row each, and drops the column: every
    job reads back whole, and a queued one leases with its args."""
    url = postgres.new_database()
    srv = pg_server(url=url)
    big = {"big": "w" * 3000}
    for jid in ("wait8", "done8"):
        srv.enqueue(id=jid, queue=jid, args=big)
    got = srv.lease(queues=["done8"])
    assert srv.post("/v1/jobs/done8/complete", {"lease_id": got[0]["lease_id"]}).status_code == 200
    srv.enqueue(id="small8", queue="small8", args={"x": 1})
    assert srv.stop() == 0
    undo_schema_8(postgres, url)
    assert rows(postgres, url, "SELECT id, args IS NOT NULL FROM jobs UNION ALL SELECT id,"
                " args IS NOT NULL FROM history ORDER BY 1") == \
        [["done8", "t"], ["small8", "f"], ["wait8", "t"]]
    srv.start()
    assert rows(postgres, url, "SELECT id, origin FROM payloads ORDER BY 1") == \
        [["done8", "0"], ["wait8", "0"]]
    assert rows(postgres, url, "SELECT count(*) FROM information_schema.columns WHERE"
                " column_name = 'args' AND table_name IN ('jobs', 'history')") == [["0"]]
    assert srv.job("done8")["args"] == big
    assert srv.lease(queues=["wait8"])[0]["args"] == big
    assert srv.lease(queues=["small8"])[0]["args"] == {"x": 1}


def test_schema_7_counts_the_history_already_there(pg_server, postgres):
    """Migration 7 starts history_counts from a count of what history holds
    (a database upgraded with finished jobs in it), and an operator's
    TRUNCATE of history takes the counts with it."""
    url = postgres.new_database()
    srv = pg_server(url=url, env={"JOBQ_CACHE_TTL_MS": "0"})
    for jid in ("old1", "old2", "old3"):
        srv.enqueue(id=jid, queue="q")
    for jid, outcome in (("old1", "complete"), ("old2", "complete"), ("old3", "fail")):
        got = srv.lease(queues=["q"], max=1)
        body = {"lease_id": got[0]["lease_id"]}
        if outcome == "fail":
            body["error"] = {"type": "validation", "message": "bad"}
        assert srv.post(f"/v1/jobs/{jid}/{outcome}", body).status_code == 200
    assert srv.stop() == 0
    # The database as schema 6 left it, finished jobs in history.
    undo_schema_8(postgres, url)
    rows(postgres, url, "DROP TABLE history_counts; DROP TRIGGER history_count_rows ON history;"
         " DROP TRIGGER history_count_change ON history;"
         " DROP TRIGGER history_count_truncate ON history;"
         " DROP FUNCTION history_count(); DROP FUNCTION history_count_none();"
         " DELETE FROM schema_migrations WHERE version >= 7")
    srv.start()

    def counts():
        c = srv.get("/v1/stats").json()["counts"]
        return c["completed"], c["failed"]
    assert counts() == (2, 1)
    rows(postgres, url, "TRUNCATE history")
    assert counts() == (0, 0)
    assert rows(postgres, url, "SELECT count(*) FROM history_counts") == [["0"]]
