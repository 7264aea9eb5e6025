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
};

int sqlite_schema_latest(void) { return (int)(sizeof migrations / sizeof migrations[0]); }

const char *sqlite_schema_migration(int version)
{
    return (version >= 1 && version <= sqlite_schema_latest()) ? migrations[version - 1] : NULL;
}
