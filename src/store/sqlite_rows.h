/*
 * sqlite_rows: new job rows inserted SQLITE_ROWS_MANY to a statement. A
 * statement costs SQLite ~5 k instructions of its own (setting up and
 * halting the program, binding, resetting) beside the row's B-tree work:
 * one INSERT of 32 rows cost 20.1 k instructions a row where 32 INSERTs
 * cost 26.2 k (random ids, bench/sqlite_rows.sh).
 *
 * The writer adds the rows it would insert; they are written when the
 * batch is full and whenever the writer flushes: before any statement
 * that reads or changes rows of jobs (a lookup, an update of a buffered
 * id, a delete, a purge, the commit). The rows' strings and bytes must
 * stay valid until then: the store keeps every op of a transaction until
 * it commits or rolls back (store/apply.c).
 *
 * Threads and ownership: one per writer connection, used by its thread
 * only; it prepares and finalizes its own statements.
 */
#ifndef JOBQ_SQLITE_ROWS_H
#define JOBQ_SQLITE_ROWS_H

#include <sqlite3.h>
#include <stdbool.h>

#include "store/backend.h"

#define SQLITE_ROWS_MANY 32

typedef struct sqlite_rows {
    store_row_t row[SQLITE_ROWS_MANY];
    int n;
    sqlite3_stmt *one, *many;
} sqlite_rows_t;

void sqlite_rows_init(sqlite_rows_t *b);
void sqlite_rows_free(sqlite_rows_t *b);
/* Adds a row to insert (an upsert, as a single INSERT was); writes the
 * batch once it is full. 0, or -1: sqlite3_errmsg(db) says why. */
int sqlite_rows_add(sqlite_rows_t *b, sqlite3 *db, const store_row_t *r);
/* Whether a row with this id waits in the batch. */
bool sqlite_rows_has(const sqlite_rows_t *b, const char *id);
/* Writes what waits. 0, or -1: sqlite3_errmsg(db) says why; the batch is
 * empty either way (the transaction fails and is rolled back). */
int sqlite_rows_flush(sqlite_rows_t *b, sqlite3 *db);
/* Forgets what waits (a rolled-back transaction). */
void sqlite_rows_discard(sqlite_rows_t *b);

#endif
