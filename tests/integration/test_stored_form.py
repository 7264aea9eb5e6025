"""The store's form of a job: packed bytes (core/job_pack.c) in a WITHOUT
ROWID table (schema 4), its counts by state kept by the writer (schema 5).
A database from before (schema 3, rows of JSON documents) upgrades in
place and reads back every state; damaged packed bytes are quarantined,
not loaded; the counts stay those of the rows through every kind of write
and a SIGKILL."""
import json
import sqlite3

from conftest import assert_counts_match_rows, assert_problem
from test_restart import build_every_state


def _as_schema_3_with_documents(db, docs):
    """Turns a schema-4 database back into what a server before packing
    wrote: a rowid table of JSON documents, at schema version 3."""
    sql = dict(db.execute("SELECT name, sql FROM sqlite_master WHERE tbl_name = 'jobs' AND sql IS NOT NULL"))
    table = sql.pop("jobs")
    assert "WITHOUT ROWID" in table and "doc BLOB" in table
    old = table.replace(") WITHOUT ROWID", ")").replace("doc BLOB", "doc TEXT").replace("jobs", "jobs_v3", 1)
    db.executescript(old + ";INSERT INTO jobs_v3 SELECT * FROM jobs; DROP TABLE jobs;"
                     "ALTER TABLE jobs_v3 RENAME TO jobs;")
    for name in sorted(sql):  # the indexes and the counting triggers
        db.execute(sql[name])
    for jid, doc in docs.items():
        db.execute("UPDATE jobs SET doc = ? WHERE id = ?", (json.dumps(doc), jid))
    db.execute("DELETE FROM schema_migrations WHERE version >= 4")
    db.commit()


def test_a_database_from_before_packing_upgrades_and_reads_back_every_state(make_server):
    s = make_server()
    before, lease_id = build_every_state(s)
    # The documents that server wrote: the API's form, with the lease's id.
    docs = {jid: dict(job) for jid, job in before.items()}
    docs["running"]["lease"] = dict(docs["running"]["lease"], id=lease_id)
    assert s.stop() == 0
    db = sqlite3.connect(s.data / "jobq.db")
    _as_schema_3_with_documents(db, docs)
    assert db.execute("SELECT typeof(doc) FROM jobs WHERE id = 'queued'").fetchone() == ("text",)
    db.close()

    s.start()
    assert {k: s.job(k) for k in before} == before
    counts = s.get("/v1/stats").json()["counts"]
    assert counts["queued"] == 1 and counts["completed"] == 1 and counts["running"] == 1
    listed = {j["id"]: j for j in s.get("/v1/jobs?limit=100").json()["jobs"]}
    assert set(listed) == set(before) and not any("unreadable" in j for j in listed.values())
    # The lease came through: its holder can finish, and that write is packed.
    assert s.post("/v1/jobs/running/complete", {"lease_id": lease_id}).status_code == 200
    assert s.stop() == 0
    db = sqlite3.connect(s.data / "jobq.db")
    assert db.execute("SELECT MAX(version) FROM schema_migrations").fetchone() == (5,)
    forms = dict(db.execute("SELECT id, typeof(doc) FROM jobs"))
    assert forms["running"] == "blob" and forms["queued"] == "text", forms
    db.close()
    s.start()
    assert s.job("running")["state"] == "completed"
    assert s.job("queued") == before["queued"]


def test_a_damaged_packed_job_is_quarantined(make_server):
    s = make_server()
    s.enqueue(id="good", args={"n": 1})
    s.enqueue(id="bad", args={"n": 2})
    assert s.stop() == 0
    db = sqlite3.connect(s.data / "jobq.db")
    (doc,) = db.execute("SELECT doc FROM jobs WHERE id = 'bad'").fetchone()
    assert isinstance(doc, bytes) and doc[0] == 1  # JOB_PACK_VERSION
    flipped = bytearray(doc)
    flipped[len(doc) // 2] ^= 0x10
    db.execute("UPDATE jobs SET doc = ? WHERE id = 'bad'", (bytes(flipped),))
    db.commit()
    db.close()
    s.start()
    assert s.job("good")["args"] == {"n": 1}
    q = s.get("/v1/quarantine").json()
    assert q["count"] == 1 and q["jobs"][0]["id"] == "bad", q
    assert "checksum" in json.dumps(q)
    assert_problem(s.get("/v1/jobs/bad"), 500, "internal", "id")
    assert [j["id"] for j in s.lease(max=5)] == ["good"]


def test_state_counts_stay_those_of_the_rows(make_server):
    s = make_server()
    for i in range(60):
        s.enqueue(id=f"a{i}", queue="qa" if i % 2 else "qb", max_retries=0)
    leased = s.lease(queues=["qa", "qb"], max=30)
    for n, j in enumerate(leased):
        if n % 3 == 0:
            s.post(f"/v1/jobs/{j['id']}/complete", {"lease_id": j["lease_id"]})
        elif n % 3 == 1:
            s.post(f"/v1/jobs/{j['id']}/fail", {"lease_id": j["lease_id"], "error": {"type": "internal"}})
    for i in range(40, 50):
        s.post(f"/v1/jobs/a{i}/cancel")
    cancelled = [f"a{i}" for i in range(40, 50) if s.job(f"a{i}")["state"] == "cancelled"]
    assert len(cancelled) >= 3
    for jid in cancelled[:3]:  # finished, so they may go
        assert s.req("DELETE", f"/v1/jobs/{jid}").status_code == 204
    failed = [j["id"] for n, j in enumerate(leased) if n % 3 == 1]
    assert s.post(f"/v1/jobs/{failed[0]}/retry").status_code == 200
    s.kill()  # what the journal held is replayed, and counted, at start
    s.start()
    before = s.get("/v1/stats").json()["counts"]
    assert s.stop() == 0
    db = sqlite3.connect(s.data / "jobq.db")
    assert_counts_match_rows(db)
    rows = dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"))
    db.close()
    assert {k: v for k, v in before.items() if v} == rows
