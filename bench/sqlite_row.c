/* The SQLite cost of one job row as the writer applies it: the upsert of
 * schema's latest `jobs` table, in transactions of 500, with the job counts
 * kept one of three ways. Count instructions with bench/sqlite_row.sh.
 *
 *   usage: sqlite_row ROWS MODE DB   MODE: none | triggers | select
 *   triggers: the counting triggers of schema 2-4, per row in SQL
 *   select:   what the writer does since schema 5 (one lookup of the old
 *             state per row; the sums are written once per transaction)
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/sqlite_schema.h"

static const char triggers[] =
    "CREATE TRIGGER jobs_count_insert AFTER INSERT ON jobs BEGIN"
    "  INSERT INTO state_counts VALUES (new.queue, new.state, 1)"
    "    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1; END;"
    "CREATE TRIGGER jobs_count_update AFTER UPDATE OF state ON jobs"
    "  WHEN old.state <> new.state BEGIN"
    "  UPDATE state_counts SET n = n - 1 WHERE queue = old.queue AND state = old.state;"
    "  INSERT INTO state_counts VALUES (new.queue, new.state, 1)"
    "    ON CONFLICT (queue, state) DO UPDATE SET n = n + 1; END;";

static const char upsert[] =
    "INSERT INTO jobs(id,queue,type,state,priority,created_at,updated_at,run_at,doc)"
    " VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) ON CONFLICT(id) DO UPDATE SET"
    " state=excluded.state, priority=excluded.priority,"
    " updated_at=excluded.updated_at, run_at=excluded.run_at, doc=excluded.doc";

static void row(sqlite3_stmt *s, sqlite3_stmt *q, int i)
{
    static const char blob[141]; /* a packed 100-byte job's size */
    char id[40];
    snprintf(id, sizeof id, "%012x%020d", 0x19ad0000 + i, i * 7919);
    if (q) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        while (sqlite3_step(q) == SQLITE_ROW) {
        }
        sqlite3_reset(q);
    }
    sqlite3_bind_text(s, 1, id, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s, 2, "default", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, "bench", -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, "completed", -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, 2);
    for (int c = 6; c <= 8; c++)
        sqlite3_bind_int64(s, c, 1764590000000LL + i);
    sqlite3_bind_blob(s, 9, blob, sizeof blob, SQLITE_STATIC);
    if (sqlite3_step(s) != SQLITE_DONE)
        exit(1);
    sqlite3_reset(s);
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: sqlite_row ROWS none|nostats|triggers|select DB\n"), 2;
    if (!strcmp(argv[2], "nostats")) /* as jobq opens it (store/sqlite.c) */
        sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    int n = atoi(argv[1]);
    remove(argv[3]);
    sqlite3 *db;
    sqlite3_stmt *s, *q = NULL;
    if (sqlite3_open(argv[3], &db) != SQLITE_OK ||
        sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", 0, 0, 0))
        return 1;
    for (int v = 1; v <= sqlite_schema_latest(); v++)
        if (sqlite3_exec(db, sqlite_schema_migration(v), 0, 0, 0) != SQLITE_OK)
            return fprintf(stderr, "%s\n", sqlite3_errmsg(db)), 1;
    if (!strcmp(argv[2], "triggers") && sqlite3_exec(db, triggers, 0, 0, 0) != SQLITE_OK)
        return 1;
    if (!strcmp(argv[2], "select") &&
        sqlite3_prepare_v2(db, "SELECT queue, state FROM jobs WHERE id=?1", -1, &q, 0))
        return 1;
    if (sqlite3_prepare_v2(db, upsert, -1, &s, 0) != SQLITE_OK)
        return 1;
    for (int b = 0; b < n; b += 500) {
        sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0);
        for (int i = b; i < b + 500 && i < n; i++)
            row(s, q, i);
        sqlite3_exec(db, "COMMIT", 0, 0, 0);
    }
    sqlite3_finalize(q);
    sqlite3_finalize(s);
    sqlite3_close(db);
    remove(argv[3]);
    return 0;
}
