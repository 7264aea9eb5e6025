"""The journal: writes are acknowledged once journaled and reach the database
at the next compaction. With compaction held off (JOBQ_COMPACT_INTERVAL=10m)
every acknowledged write is only in the journal, so these tests see the
journal alone carry it through a SIGKILL, and reads still see it at once."""
import sqlite3
import time

import pytest


def replayed(server):
    return [l for l in server.log_lines() if l.get("msg") == "journal replayed"]


def db_rows(server):
    db = sqlite3.connect(f"file:{server.data / 'jobq.db'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT id, state FROM jobs").fetchall())
    finally:
        db.close()


@pytest.mark.parametrize("durability", ["fsync", "os"])
def test_writes_only_in_the_journal_survive_sigkill(make_server, durability):
    server = make_server(env={"JOBQ_DURABILITY": durability, "JOBQ_COMPACT_INTERVAL": "10m"})
    for i in range(20):
        server.enqueue(id=f"j{i}", queue="jq")
    jobs = server.lease(queues=["jq"], max=3)
    done, failed, running = jobs
    assert server.post(f"/v1/jobs/{done['id']}/complete",
                       {"lease_id": done["lease_id"], "result": {"ok": 1}}).status_code == 200
    assert server.post(f"/v1/jobs/{failed['id']}/fail",
                       {"lease_id": failed["lease_id"], "error": {"type": "validation"}, "retry": False}).status_code == 200
    assert server.post("/v1/jobs/j19/cancel").status_code == 200
    assert server.post("/v1/queues/jq/pause").status_code == 200
    server.kill()
    assert db_rows(server) == {}, "compaction ran; this test would prove nothing"

    server.start()
    [r] = replayed(server)
    assert r["writes"] >= 20 + 3 + 3 and r["unreadable"] == 0
    rows = db_rows(server)  # replay went into the database before start-up went on
    assert len(rows) == 20
    assert rows[done["id"]] == "completed" and rows[failed["id"]] == "failed"
    assert rows["j19"] == "cancelled"
    assert server.job(done["id"])["result"] == {"ok": 1}
    assert server.job(failed["id"])["errors"][0]["type"] == "validation"
    q = {x["name"]: x for x in server.get("/v1/queues").json()["queues"]}
    assert q["jq"]["paused"] is True
    # replayed once: a second restart finds nothing left to replay
    server.restart()
    assert len(replayed(server)) == 1


def test_reads_see_journaled_writes_at_once(make_server):
    server = make_server(env={"JOBQ_COMPACT_INTERVAL": "10m"})
    for i in range(5):
        server.enqueue(id=f"r{i}", queue="rq")
    [j] = server.lease(queues=["rq"])
    server.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
    # a point read is answered from the journaled writes, without compaction
    assert server.job(j["id"])["state"] == "completed"
    assert db_rows(server) == {}
    # a list or stats read waits for a compaction, which it asks for at once
    page = server.get("/v1/jobs?queue=rq&limit=100").json()
    assert {x["id"]: x["state"] for x in page["jobs"]}[j["id"]] == "completed"
    assert len(page["jobs"]) == 5
    assert len(db_rows(server)) == 5
    stats = server.get("/v1/stats").json()
    assert stats["totals"]["enqueued"] == 5 and stats["totals"]["completed"] == 1


@pytest.mark.parametrize("durability", ["fsync", "os"])
@pytest.mark.parametrize("name", ["jobq.db.jlog", "jobq.db.jlog2"])
def test_a_deleted_journal_is_noticed_and_nothing_is_lost(make_server, durability, name):
    server = make_server(env={"JOBQ_COMPACT_INTERVAL": "10m", "JOBQ_DURABILITY": durability})
    for i in range(5):
        server.enqueue(id=f"d{i}")
    (server.data / name).unlink()
    server.enqueue(id="after")  # its batch finds the journal gone
    assert any(l.get("msg", "").startswith("journal file lost") for l in server.log_lines())
    assert len(db_rows(server)) == 6  # all went to the database at once
    assert (server.data / name).exists()
    server.enqueue(id="later")
    server.kill()
    server.start()
    ids = {x["id"] for x in server.get("/v1/jobs?limit=100").json()["jobs"]}
    assert {f"d{i}" for i in range(5)} | {"after", "later"} <= ids


def test_writes_are_acknowledged_while_a_compaction_runs(make_server):
    """In `os` durability the loop journals its own writes, and a compaction
    moves new records to the journal's second file before it applies the
    first: acknowledgements do not wait for the database. Every compaction
    here takes 1.5 s (the fault seam) and starts 50 ms after a write, so the
    writes after the first are acknowledged while it runs, the SIGKILL comes
    before it commits, and restart must replay both files in order."""
    server = make_server(env={"JOBQ_DURABILITY": "os", "JOBQ_COMPACT_INTERVAL": "50ms",
                              "JOBQ_FAULT_COMMIT_DELAY_MS": "1500"})
    server.enqueue(id="first", queue="cq")
    time.sleep(0.3)  # its compaction is running now
    for i in range(20):
        server.enqueue(id=f"c{i}", queue="cq")
    assert server.post("/v1/jobs/c3/cancel").status_code == 200
    server.kill()
    assert db_rows(server) == {}, \
        "the compaction committed before the kill: acknowledgements waited for it"

    server.start()
    [r] = replayed(server)
    assert r["generations"] == 2 and r["writes"] == 22 and r["unreadable"] == 0
    rows = db_rows(server)
    assert set(rows) == {"first"} | {f"c{i}" for i in range(20)}
    assert rows["c3"] == "cancelled"  # the later write of c3 was replayed after its enqueue
