"""Cluster mode's history (issue 13, schema versions 5 and 7): finished
jobs leave the hot table for history's partitions, which retention drops
whole; an operator's retry brings one back; statistics count history
without reading it. Real nodes on a real throwaway PostgreSQL (pg.py)."""
import time

from conftest import lease_one
from pg import HeldSession, history_parts, rows


def finish_two(node, done, dead):
    """Leases the next two jobs of queue q on node: completes the first (done)
    and fails the second (dead) for good."""
    j = lease_one(node)
    assert j["id"] == done
    assert node.post(f"/v1/jobs/{done}/complete", {"lease_id": j["lease_id"]}).status_code == 200
    j = lease_one(node)
    assert j["id"] == dead
    r = node.post(f"/v1/jobs/{dead}/fail", {"lease_id": j["lease_id"],
                                            "error": {"type": "validation", "message": "bad"}})
    assert r.status_code == 200, r.text


def test_finished_jobs_leave_for_history_whose_partitions_retention_drops(cluster, postgres):
    """Schema version 5: a job leaves the hot table as it finishes, for the
    partition of history of its kind and finishing time, made ahead by the
    nodes' retention sweeps (not the default one); once retention is past
    a partition, it is dropped whole and its jobs are gone. A failed job
    keeps its own, longer retention. A row the default partition holds
    (no partition covered its time) is deleted by rows when due."""
    (a, b), url = cluster(2, env={"JOBQ_RETAIN_COMPLETED": "8s", "JOBQ_RETAIN_FAILED": "1h",
                                  "JOBQ_HISTORY_PARTITION_MIN": "1s"})
    end = time.time() + 10
    while not all(any(p.startswith(k) for p in history_parts(postgres, url))
                  for k in ("history_c_", "history_f_")) and time.time() < end:
        time.sleep(0.1)
    a.enqueue(id="done1", queue="q")
    a.enqueue(id="dead1", queue="q")
    finish_two(b, "done1", "dead1")
    assert rows(postgres, url, "SELECT count(*) FROM jobs") == [["0"]]
    where = dict(rows(postgres, url, "SELECT id, tableoid::regclass::text FROM history"))
    assert where["done1"].startswith("history_c_") and where["dead1"].startswith("history_f_"), \
        where
    assert a.job("done1")["state"] == "completed" and a.job("dead1")["state"] == "failed"
    rows(postgres, url, "INSERT INTO history SELECT 'stray', queue, type, state, priority,"
         " created_at, 1, run_at, doc, bkey, token, origin, failed FROM history"
         " WHERE id = 'done1'")
    assert rows(postgres, url, "SELECT tableoid::regclass::text FROM history"
                " WHERE id = 'stray'") == [["history_default"]]
    end = time.time() + 20
    while where["done1"] in history_parts(postgres, url) and time.time() < end:
        time.sleep(0.2)
    assert where["done1"] not in history_parts(postgres, url)
    assert a.get("/v1/jobs/done1").status_code == 404
    assert b.job("dead1")["state"] == "failed"
    end = time.time() + 10
    while rows(postgres, url, "SELECT count(*) FROM history_default") != [["0"]] \
            and time.time() < end:
        time.sleep(0.2)
    assert rows(postgres, url, "SELECT count(*) FROM history_default") == [["0"]]
    dropped = [x for x in a.get("/metrics").text.splitlines() + b.get("/metrics").text.splitlines()
               if x.startswith("jobq_retention_dropped_partitions_total ")]
    assert sum(float(x.split()[1]) for x in dropped) >= 1, dropped


def test_a_short_retention_makes_no_partitions(cluster, postgres):
    """A kind whose eighth of retention is under JOBQ_HISTORY_PARTITION_MIN
    gets no partitions (DDL every second cost more than the deletes): its
    jobs wait in the default partition, deleted one by one, their
    payloads with them."""
    (a, b), url = cluster(2, env={"JOBQ_RETAIN_COMPLETED": "2s", "JOBQ_RETAIN_FAILED": "1h",
                                  "JOBQ_CACHE_TTL_MS": "0"})
    end = time.time() + 10
    while not any(p.startswith("history_f_") for p in history_parts(postgres, url)) \
            and time.time() < end:
        time.sleep(0.1)
    assert not any(p.startswith("history_c_") for p in history_parts(postgres, url))
    a.enqueue(id="done2", queue="q", args={"big": "x" * 2000})
    j = lease_one(b)
    assert b.post("/v1/jobs/done2/complete", {"lease_id": j["lease_id"]}).status_code == 200
    assert rows(postgres, url, "SELECT tableoid::regclass::text FROM history") == \
        [["history_default"]]
    assert rows(postgres, url, "SELECT id FROM payloads") == [["done2"]]
    assert a.get("/v1/stats").json()["counts"]["completed"] == 1
    end = time.time() + 10
    while a.get("/v1/jobs/done2").status_code != 404 and time.time() < end:
        time.sleep(0.2)
    assert rows(postgres, url, "SELECT count(*) FROM jobs_all") == [["0"]]
    assert rows(postgres, url, "SELECT count(*) FROM payloads") == [["0"]]
    assert a.get("/v1/stats").json()["counts"]["completed"] == 0  # counted out as deleted


def test_a_finished_job_retried_comes_back_from_history(cluster, postgres):
    """An operator's retry of a failed job moves it back to the hot table,
    where any node can claim it; a delete of a finished job takes it from
    history; both conditioned on the token they read, as in jobs. Its
    args apart stay in one row of payloads throughout, and go with it."""
    (a, b), url = cluster(2, env={"JOBQ_CACHE_TTL_MS": "0"})

    def counts():
        c = a.get("/v1/stats").json()["counts"]
        return c["queued"], c["failed"], c["completed"]
    big = {"big": "y" * 2000}
    a.enqueue(id="dead2", queue="q", args=big)
    j = lease_one(b)
    r = b.post("/v1/jobs/dead2/fail", {"lease_id": j["lease_id"],
                                       "error": {"type": "validation", "message": "bad"}})
    assert r.status_code == 200, r.text
    assert rows(postgres, url, "SELECT state FROM history") == [["failed"]]
    assert counts() == (0, 1, 0)
    r = a.post("/v1/jobs/dead2/retry", {})
    assert r.status_code == 200, r.text
    assert rows(postgres, url, "SELECT state, owner IS NULL FROM jobs") == [["queued", "t"]]
    assert rows(postgres, url, "SELECT count(*) FROM history") == [["0"]]
    assert counts() == (1, 0, 0)
    j = lease_one(b)
    assert j["id"] == "dead2" and j["args"] == big
    assert b.post("/v1/jobs/dead2/complete", {"lease_id": j["lease_id"]}).status_code == 200
    assert rows(postgres, url, "SELECT id, state FROM history") == [["dead2", "completed"]]
    assert a.job("dead2")["errors"][0]["type"] == "validation"  # its history came along
    assert a.job("dead2")["args"] == big
    assert rows(postgres, url, "SELECT id FROM payloads") == [["dead2"]]
    assert counts() == (0, 0, 1)
    assert a.req("DELETE", "/v1/jobs/dead2").status_code == 204
    assert rows(postgres, url, "SELECT count(*) FROM jobs_all") == [["0"]]
    assert rows(postgres, url, "SELECT count(*) FROM payloads") == [["0"]]
    assert counts() == (0, 0, 0)


def test_statistics_count_history_without_reading_it(cluster, postgres):
    """Schema version 7: history's rows are counted as they come and go
    (a move, a failure, an operator's retry back to the hot table, a
    partition dropped by retention), and statistics read those counts and
    the live jobs, not history: they answer while an operator holds a lock
    on history that every read of it would wait for."""
    (a, b), url = cluster(2, env={"JOBQ_RETAIN_COMPLETED": "8s", "JOBQ_RETAIN_FAILED": "1h",
                                  "JOBQ_HISTORY_PARTITION_MIN": "1s", "JOBQ_CACHE_TTL_MS": "0"})
    end = time.time() + 10
    while not any(p.startswith("history_c_") for p in history_parts(postgres, url)) \
            and time.time() < end:
        time.sleep(0.1)
    for jid in ("done3", "dead3", "wait3"):
        a.enqueue(id=jid, queue="q")
    finish_two(b, "done3", "dead3")

    def counts(node):
        r = node.get("/v1/stats", timeout=30)
        assert r.status_code == 200, r.text
        c = r.json()["counts"]
        return c["completed"], c["failed"], c["queued"]
    assert counts(a) == counts(b) == (1, 1, 1)
    op = HeldSession(postgres, url)
    try:
        op.run("BEGIN; LOCK TABLE history IN ACCESS EXCLUSIVE MODE;")
        t0 = time.time()
        assert counts(a) == (1, 1, 1)
        assert time.time() - t0 < 5
        op.run("ROLLBACK;")
    finally:
        op.close()
    assert a.post("/v1/jobs/dead3/retry", {}).status_code == 200
    assert counts(b) == (1, 0, 2)
    end = time.time() + 20
    while counts(b)[0] and time.time() < end:
        time.sleep(0.2)
    assert counts(b) == (0, 0, 2)
    assert a.get("/v1/jobs/done3").status_code == 404  # its partition went
    end = time.time() + 10
    while rows(postgres, url, "SELECT count(*) FROM history_counts WHERE part NOT IN"
               " (SELECT oid FROM pg_class)") != [["0"]] and time.time() < end:
        time.sleep(0.2)
    assert rows(postgres, url, "SELECT count(*) FROM history_counts WHERE part NOT IN"
                " (SELECT oid FROM pg_class)") == [["0"]]
    # An operator's own rows are counted too (by the trigger), in and out.
    rows(postgres, url, "INSERT INTO history SELECT 'stray3', queue, type, 'cancelled', priority,"
         " created_at, 1, run_at, doc, bkey, token, origin, false FROM jobs WHERE id = 'wait3'")
    assert b.get("/v1/stats").json()["counts"]["cancelled"] == 1
    rows(postgres, url, "UPDATE history SET state = 'completed' WHERE id = 'stray3'")
    assert counts(b) == (1, 0, 2)
    rows(postgres, url, "DELETE FROM history WHERE id = 'stray3'")
    assert counts(b) == (0, 0, 2)
    # An operator's change of a free job into and out of history.
    assert a.post("/v1/jobs/wait3/cancel", {}).status_code == 200
    assert b.get("/v1/stats").json()["counts"]["cancelled"] == 1
    assert a.post("/v1/jobs/wait3/retry", {}).status_code == 200
    assert b.get("/v1/stats").json()["counts"]["cancelled"] == 0
    assert counts(b) == (0, 0, 2)
