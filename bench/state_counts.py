#!/usr/bin/python3
"""What the state_counts triggers (schema 2) cost per job write, in SQLite
alone: the jobs table and its upsert as jobq uses them, with and without the
triggers, synchronous=OFF so the disk does not hide the CPU cost. Each job
is inserted (queued), then updated three times (running, a heartbeat that
keeps the state, completed), in transactions of 100 jobs, as group commit
does. Also times the statistics query both ways on the resulting table.

Usage: bench/state_counts.py [JOBS]   (default 200000)
"""
import os
import sqlite3
import sys
import tempfile
import time

SCHEMA = """
CREATE TABLE jobs (id TEXT PRIMARY KEY, queue TEXT NOT NULL, type TEXT NOT NULL,
  state TEXT NOT NULL, priority INTEGER NOT NULL, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL, run_at INTEGER, doc TEXT NOT NULL);
CREATE INDEX jobs_by_created ON jobs(created_at, id);
CREATE INDEX jobs_by_queue ON jobs(queue, created_at, id);
"""
TRIGGERS = """
CREATE TABLE state_counts (queue TEXT NOT NULL, state TEXT NOT NULL,
  n INTEGER NOT NULL, PRIMARY KEY (queue, state)) WITHOUT ROWID;
CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN
  INSERT INTO state_counts VALUES (new.queue, new.state, 1)
    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1; END;
CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs WHEN old.state <> new.state BEGIN
  UPDATE state_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;
  INSERT INTO state_counts VALUES (new.queue, new.state, 1)
    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1; END;
"""
PUT = ("INSERT INTO jobs(id,queue,type,state,priority,created_at,updated_at,run_at,doc)"
       " VALUES(?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO UPDATE SET state=excluded.state,"
       " priority=excluded.priority, updated_at=excluded.updated_at, run_at=excluded.run_at,"
       " doc=excluded.doc")


def run(jobs, triggers):
    path = os.path.join(tempfile.mkdtemp(), "t.db")
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF;" + SCHEMA +
                     (TRIGGERS if triggers else ""))
    doc = "x" * 600
    t0 = time.perf_counter()
    for start in range(0, jobs, 100):
        db.execute("BEGIN")
        for i in range(start, start + 100):
            jid, q = f"{i:032d}", f"q{i % 10}"
            for state in ("queued", "running", "running", "completed"):
                db.execute(PUT, (jid, q, "t", state, 2, i, i, i, doc))
        db.execute("COMMIT")
    writes = (time.perf_counter() - t0) / (jobs * 4) * 1e6
    t0 = time.perf_counter()
    scan = db.execute("SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state").fetchall()
    scan_ms = (time.perf_counter() - t0) * 1e3
    table_ms = None
    if triggers:
        t0 = time.perf_counter()
        kept = db.execute("SELECT queue, state, n FROM state_counts WHERE n <> 0").fetchall()
        table_ms = (time.perf_counter() - t0) * 1e3
        assert sorted(kept) == sorted(scan)
    return writes, scan_ms, table_ms


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 200000
    for triggers in (False, True, False, True):
        w, scan, table = run(jobs, triggers)
        print(f"triggers={'on ' if triggers else 'off'} {w:6.2f} us per job write;"
              f" stats by GROUP BY {scan:7.1f} ms" +
              (f", from state_counts {table:.3f} ms" if table is not None else ""))


if __name__ == "__main__":
    main()
