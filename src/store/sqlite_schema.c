/*
 * The SQLite schema, as an ordered list of migrations embedded in the binary.
 *
 * Procedure: never edit a migration that has shipped; append a new one. The
 * version of a database is the highest row in schema_migrations; a database
 * whose version exceeds the number of migrations here is refused at start.
 */
#include "store/sqlite_schema.h"

#include <stddef.h>

static const char *const migrations[] = {
    /* 1: jobs, queues, lifetime counters */
    "CREATE TABLE jobs ("
    "  id TEXT PRIMARY KEY,"
    "  queue TEXT NOT NULL,"
    "  type TEXT NOT NULL,"
    "  state TEXT NOT NULL,"
    "  priority INTEGER NOT NULL,"
    "  created_at INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL,"
    "  run_at INTEGER,"
    "  doc TEXT NOT NULL"
    ");"
    "CREATE INDEX jobs_by_created ON jobs(created_at, id);"
    "CREATE INDEX jobs_by_queue ON jobs(queue, created_at, id);"
    "CREATE TABLE queues (name TEXT PRIMARY KEY, paused INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);",

    /* 2: job counts by queue and state, kept by triggers in the same
     * transaction as the change, so statistics need not scan every job */
    "CREATE TABLE state_counts (queue TEXT NOT NULL, state TEXT NOT NULL,"
    "  n INTEGER NOT NULL, PRIMARY KEY (queue, state)) WITHOUT ROWID;"
    "INSERT INTO state_counts SELECT queue, state, COUNT(*) FROM jobs GROUP BY queue, state;"
    "CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN"
    "  INSERT INTO state_counts VALUES (new.queue, new.state, 1)"
    "    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs"
    "  WHEN old.state <> new.state BEGIN"
    "  UPDATE state_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;"
    "  INSERT INTO state_counts VALUES (new.queue, new.state, 1)"
    "    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;"
    " END;"
    "CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN"
    "  UPDATE state_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;"
    " END;",

    /* 3: the journal generation last applied (store/journal.h) */
    "CREATE TABLE journal_state (id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  applied_gen INTEGER NOT NULL);"
    "INSERT INTO journal_state VALUES (1, 0);",
};

int sqlite_schema_latest(void) { return (int)(sizeof migrations / sizeof migrations[0]); }

const char *sqlite_schema_migration(int version)
{
    return (version >= 1 && version <= sqlite_schema_latest()) ? migrations[version - 1] : NULL;
}
