/*
 * The PostgreSQL schema, as an ordered list of migrations embedded in the
 * binary (the procedure of sqlite_schema.c: never edit a migration that
 * has shipped; append a new one).
 *
 * Ids, queues and types compare bytewise (COLLATE "C"), as in SQLite:
 * keyset cursors then order the same whatever the database's locale, and
 * comparisons skip the locale's rules.
 */
#include "store/postgres_schema.h"

#include <stddef.h>

static const char *const migrations[] = {
    /* 1: jobs (the packed form in doc), queues, lifetime counters */
    "CREATE TABLE jobs ("
    "  id text COLLATE \"C\" PRIMARY KEY,"
    "  queue text COLLATE \"C\" NOT NULL,"
    "  type text COLLATE \"C\" NOT NULL,"
    "  state text COLLATE \"C\" NOT NULL,"
    "  priority integer NOT NULL,"
    "  created_at bigint NOT NULL,"
    "  updated_at bigint NOT NULL,"
    "  run_at bigint NOT NULL,"
    "  doc bytea NOT NULL"
    ");"
    "CREATE INDEX jobs_by_created ON jobs(created_at, id);"
    "CREATE INDEX jobs_by_queue ON jobs(queue, created_at, id);"
    "CREATE INDEX jobs_by_state ON jobs(queue, state);"
    "CREATE TABLE queues (name text COLLATE \"C\" PRIMARY KEY, paused boolean NOT NULL);"
    "CREATE TABLE counters (name text COLLATE \"C\" PRIMARY KEY, value bigint NOT NULL);",
};

int postgres_schema_latest(void) { return (int)(sizeof migrations / sizeof migrations[0]); }

const char *postgres_schema_migration(int version)
{
    return (version >= 1 && version <= postgres_schema_latest()) ? migrations[version - 1] : NULL;
}
