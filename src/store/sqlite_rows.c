/* New job rows, many to an INSERT (sqlite_rows.h). */
#include "store/sqlite_rows.h"

#include <stdio.h>
#include <string.h>

#define COLUMNS 9
#define HEAD "INSERT INTO jobs(id,queue,type,state,priority,created_at,updated_at,run_at,doc) VALUES"
#define TUPLE "(?,?,?,?,?,?,?,?,?)"
/* A row already there (a caller unsure of it) is updated, as before. */
#define TAIL                                                                             \
    " ON CONFLICT(id) DO UPDATE SET state=excluded.state, priority=excluded.priority," \
    " updated_at=excluded.updated_at, run_at=excluded.run_at, doc=excluded.doc"

void sqlite_rows_init(sqlite_rows_t *b) { *b = (sqlite_rows_t){ 0 }; }

void sqlite_rows_free(sqlite_rows_t *b)
{
    sqlite3_finalize(b->one);
    sqlite3_finalize(b->many);
    *b = (sqlite_rows_t){ 0 };
}

void sqlite_rows_discard(sqlite_rows_t *b) { b->n = 0; }

bool sqlite_rows_has(const sqlite_rows_t *b, const char *id)
{
    for (int i = 0; i < b->n; i++)
        if (strcmp(b->row[i].id, id) == 0)
            return true;
    return false;
}

static sqlite3_stmt *prepared(sqlite3 *db, sqlite3_stmt **st, int rows)
{
    if (*st)
        return *st;
    char sql[sizeof HEAD + SQLITE_ROWS_MANY * sizeof TUPLE + sizeof TAIL];
    size_t n = (size_t)snprintf(sql, sizeof sql, "%s", HEAD);
    for (int i = 0; i < rows; i++)
        n += (size_t)snprintf(sql + n, sizeof sql - n, "%s" TUPLE, i ? "," : "");
    snprintf(sql + n, sizeof sql - n, "%s", TAIL);
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        *st = NULL;
    return *st;
}

static void bind(sqlite3_stmt *s, int at, const store_row_t *r)
{
    sqlite3_bind_text(s, at + 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, at + 2, r->queue, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, at + 3, r->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, at + 4, r->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, at + 5, r->priority);
    sqlite3_bind_int64(s, at + 6, r->created_at);
    sqlite3_bind_int64(s, at + 7, r->updated_at);
    sqlite3_bind_int64(s, at + 8, r->run_at);
    sqlite3_bind_blob(s, at + 9, r->doc, (int)r->doc_len, SQLITE_STATIC);
}

/* rows (1 or SQLITE_ROWS_MANY) from first on, in one statement. */
static int insert(sqlite_rows_t *b, sqlite3 *db, int first, int rows)
{
    sqlite3_stmt *s = prepared(db, rows == 1 ? &b->one : &b->many, rows);
    if (!s)
        return -1;
    for (int i = 0; i < rows; i++)
        bind(s, i * COLUMNS, &b->row[first + i]);
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : -1;
}

int sqlite_rows_flush(sqlite_rows_t *b, sqlite3 *db)
{
    int rc = 0, i = 0;
    if (b->n == SQLITE_ROWS_MANY) {
        rc = insert(b, db, 0, SQLITE_ROWS_MANY);
        i = SQLITE_ROWS_MANY;
    }
    for (; i < b->n && rc == 0; i++)
        rc = insert(b, db, i, 1);
    b->n = 0;
    return rc;
}

int sqlite_rows_add(sqlite_rows_t *b, sqlite3 *db, const store_row_t *r)
{
    b->row[b->n++] = *r;
    return b->n == SQLITE_ROWS_MANY ? sqlite_rows_flush(b, db) : 0;
}
