"""Retention: finished jobs are deleted after JOBQ_RETAIN_*, in memory and in the store."""
import sqlite3
import time

from prometheus_client.parser import text_string_to_metric_families

from conftest import assert_counts_match_rows


def finish_some(srv, n, prefix="c"):
    for i in range(n):
        srv.enqueue(id=f"{prefix}{i}")
    done = 0
    while done < n:
        for j in srv.lease(max=100):
            assert srv.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]}).status_code == 200
            done += 1


def test_finished_jobs_go_after_their_retention(make_server, request):
    # Few finished jobs in memory, so most reads and deletes go to the store.
    srv = make_server(env={"JOBQ_RETAIN_COMPLETED": "2s", "JOBQ_RETAIN_FAILED": "4s",
                           "JOBQ_FINISHED_IN_MEMORY": "10"})
    finish_some(srv, 600)
    srv.enqueue(id="bad", max_retries=0)
    [j] = srv.lease()
    srv.post("/v1/jobs/bad/fail", {"lease_id": j["lease_id"], "error": {"type": "internal"}})
    srv.enqueue(id="stop")
    srv.post("/v1/jobs/stop/cancel")
    srv.enqueue(id="waiting")
    srv.enqueue(id="later", delay_ms=60000)
    assert srv.job("c599")["state"] == "completed"  # just finished: still kept
    end = time.time() + 10
    while time.time() < end and srv.get("/v1/jobs/c599").status_code != 404:
        time.sleep(0.1)
    for gone in ("c0", "c300", "c599", "stop"):
        assert srv.get(f"/v1/jobs/{gone}").status_code == 404, gone
    assert srv.job("bad")["state"] == "failed"  # failed jobs are kept longer
    assert srv.job("waiting")["state"] == "queued" and srv.job("later")["state"] == "pending"
    end = time.time() + 10
    while time.time() < end and srv.get("/v1/jobs/bad").status_code != 404:
        time.sleep(0.1)
    assert srv.get("/v1/jobs/bad").status_code == 404
    assert srv.job("waiting")["state"] == "queued"
    # Stats and lifetime totals agree: the jobs are gone, the history is not.
    stats = srv.get("/v1/stats").json()
    assert stats["totals"]["completed"] == 600
    text = srv.get("/metrics").text
    deleted = [s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "jobq_retention_deleted_jobs_total"]
    assert deleted == [602]  # in cluster mode too: retentions this short make no partitions
    assert srv.stop() == 0
    url = srv.env.get("JOBQ_DATABASE_URL", "")
    if url.startswith("postgres://"):  # JOBQ_TEST_STORE=postgres
        rows = request.getfixturevalue("postgres").psql("SELECT id FROM jobs_all",
                                                       db=url.rsplit("/", 1)[1])
        assert {r[0] for r in rows} == {"waiting", "later"}
        return
    db = sqlite3.connect(srv.data / "jobq.db")
    ids = {r[0] for r in db.execute("SELECT id FROM jobs")}
    assert ids == {"waiting", "later"}
    assert_counts_match_rows(db)


def test_retention_zero_keeps_everything(make_server):
    srv = make_server(env={"JOBQ_RETAIN_COMPLETED": "0", "JOBQ_RETAIN_FAILED": "0"})
    finish_some(srv, 5)
    time.sleep(0.5)
    assert srv.job("c4")["state"] == "completed"
