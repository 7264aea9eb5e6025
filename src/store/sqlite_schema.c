/*
 * The SQLite schema, as an ordered list of migrations embedded in the binary.
 *
 * Procedure: never edit a migration that has shipped; append a new one. The
 * version of a database is the highest row in schema_migrations; a database
 * whose version exceeds the number of migrations here is refused at start.
 */
#include "store/sqlite_schema.h"

#include <stddef.h>

/* The columns of jobs but doc (migration 1; made again by 4). */
#define JOBS_COLUMNS \
    "  id TEXT PRIMARY KEY," \
    "  queue TEXT NOT NULL," \
    "  type TEXT NOT NULL," \
    "  state TEXT NOT NULL," \
    "  priority INTEGER NOT NULL," \
    "  created_at INTEGER NOT NULL," \
    "  updated_at INTEGER NOT NULL," \
    "  run_at INTEGER,"

/* Job counts by queue and state, kept in the same transaction as the
 * change (migration 2; made again by 4 with the table they belong to). */
#define COUNT_TRIGGERS \
    "CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN" \
    "  INSERT INTO state_counts VALUES (new.queue, new.state, 1)" \
    "    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;" \
    " END;" \
    "CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs" \
    "  WHEN old.state <> new.state BEGIN" \
    "  UPDATE state_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;" \
    "  INSERT INTO state_counts VALUES (new.queue, new.state, 1)" \
    "    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1;" \
    " END;" \
    "CREATE TRIGGER jobs_count_delete AFTER DELETE ON jobs BEGIN" \
    "  UPDATE state_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;" \
    " END;"

static const char *const migrations[] = {
    /* 1: jobs, queues, lifetime counters */
    "CREATE TABLE jobs ("
    JOBS_COLUMNS
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
    COUNT_TRIGGERS,

    /* 3: the journal generation last applied (store/journal.h) */
    "CREATE TABLE journal_state (id INTEGER PRIMARY KEY CHECK (id = 1),"
    "  applied_gen INTEGER NOT NULL);"
    "INSERT INTO journal_state VALUES (1, 0);",

    /* 4: jobs keyed by id itself (WITHOUT ROWID): a rowid table kept the
     * id twice, in the row and in the index behind its primary key, ~45
     * bytes a job; doc is a BLOB, the packed form (core/job.h), which
     * rows written before keep as JSON text (both are read). The
     * indexes and the counting triggers go with the old table and are
     * made again, the same. */
    "CREATE TABLE jobs_v4 ("
    JOBS_COLUMNS
    "  doc BLOB NOT NULL"
    ") WITHOUT ROWID;"
    "INSERT INTO jobs_v4 SELECT id, queue, type, state, priority, created_at, updated_at,"
    "  run_at, doc FROM jobs;"
    "DROP TABLE jobs;"
    "ALTER TABLE jobs_v4 RENAME TO jobs;"
    "CREATE INDEX jobs_by_created ON jobs(created_at, id);"
    "CREATE INDEX jobs_by_queue ON jobs(queue, created_at, id);"
    COUNT_TRIGGERS,

    /* 5: the writer keeps state_counts itself, summed per transaction
     * (store/sqlite_counts.h): the triggers ran a statement per row
     * written, a third of a row's cost. Anything else that writes jobs
     * must now keep state_counts too. */
    "DROP TRIGGER jobs_count_insert;"
    "DROP TRIGGER jobs_count_update;"
    "DROP TRIGGER jobs_count_delete;",
};

int sqlite_schema_latest(void) { return (int)(sizeof migrations / sizeof migrations[0]); }

const char *sqlite_schema_migration(int version)
{
    return (version >= 1 && version <= sqlite_schema_latest()) ? migrations[version - 1] : NULL;
}
