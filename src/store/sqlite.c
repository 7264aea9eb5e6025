/*
 * The SQLite backend: WAL journal, one connection, prepared statements kept
 * for the hot writes. Durability maps to synchronous=FULL / NORMAL / OFF.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store/backend.h"
#include "store/sqlite_counts.h"
#include "store/sqlite_file.h"
#include "store/sqlite_rows.h"
#include "store/sqlite_schema.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/mkdirs.h"

enum { S_BEGIN, S_COMMIT, S_ROLLBACK, S_DELETE, S_QUEUE, S_COUNTER, S_GET, S_JOURNAL_GET,
       S_JOURNAL_SET, S_OLD_STATE, S_STATE_COUNT, S_UPDATE, S_COUNT_ };

static const char *const stmt_sql[S_COUNT_] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_DELETE] = "DELETE FROM jobs WHERE id=?1",
    [S_QUEUE] = "INSERT INTO queues(name,paused) VALUES(?1,?2)"
                " ON CONFLICT(name) DO UPDATE SET paused=excluded.paused",
    [S_COUNTER] = "INSERT INTO counters(name,value) VALUES(?1,?2)"
                  " ON CONFLICT(name) DO UPDATE SET value=value+excluded.value",
    [S_GET] = "SELECT doc, created_at, id, queue, type FROM jobs WHERE id=?1",
    [S_JOURNAL_GET] = "SELECT applied_gen FROM journal_state WHERE id=1",
    [S_JOURNAL_SET] = "UPDATE journal_state SET applied_gen=?1 WHERE id=1",
    [S_OLD_STATE] = "SELECT queue, state FROM jobs WHERE id=?1",
    [S_STATE_COUNT] = "INSERT INTO state_counts(queue,state,n) VALUES(?1,?2,?3)"
                      " ON CONFLICT(queue,state) DO UPDATE SET n=n+excluded.n",
    /* The insert's update half (sqlite_rows.c), for a row known to be there: no insert attempt
     * that builds the row and its index entries only to conflict. */
    [S_UPDATE] = "UPDATE jobs SET state=?2, priority=?3, updated_at=?4, run_at=?5, doc=?6"
                 " WHERE id=?1",
};

typedef struct sq {
    sqlite3 *db;
    sqlite_file_t file; /* the writer's: lock and identity (lock_fd -1 for readers) */
    sqlite3_stmt *st[S_COUNT_];
    sqlite_counts_t counts; /* the writer's, for the open transaction */
    sqlite_rows_t rows;     /* the writer's new rows, not yet inserted */
    int last_rc;
    char err[512];
} sq_t;

static int fail(sq_t *c, const char *what)
{
    c->last_rc = sqlite3_extended_errcode(c->db);
    snprintf(c->err, sizeof c->err, "%s: %s", what, sqlite3_errmsg(c->db));
    return -1;
}

/* Writes the new rows that wait (sqlite_rows.h): before anything that
 * reads or changes rows of jobs. */
static int settle(sq_t *c)
{
    return c->rows.n && sqlite_rows_flush(&c->rows, c->db) != 0 ? fail(c, "insert jobs") : 0;
}

static int exec(sq_t *c, const char *sql)
{
    char *msg = NULL;
    if (settle(c) != 0)
        return -1;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        c->last_rc = sqlite3_extended_errcode(c->db);
        snprintf(c->err, sizeof c->err, "%s", msg ? msg : sqlite3_errmsg(c->db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* Runs a prepared statement that returns no rows, then resets it. */
static int step_done(sq_t *c, int which)
{
    sqlite3_stmt *s = c->st[which];
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return rc == SQLITE_DONE ? 0 : fail(c, stmt_sql[which]);
}

static const char *col(sqlite3_stmt *s, int i) { return (const char *)sqlite3_column_text(s, i); }

/* The folder the database file goes in, made if missing. */
static int mkdir_for(const char *path, char *err, size_t len)
{
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    return mkdirs(dir, 0700, err, len);
}

static const char *pragmas(backend_sync_t sync)
{
    switch (sync) {
    case BACKEND_SYNC_FULL: return "PRAGMA synchronous=FULL;";
    case BACKEND_SYNC_OS: return "PRAGMA synchronous=NORMAL;";
    case BACKEND_SYNC_OFF: break;
    }
    return "PRAGMA synchronous=OFF;";
}

static void sq_close(void *conn)
{
    sq_t *c = conn;
    if (!c)
        return;
    for (int i = 0; i < S_COUNT_; i++)
        sqlite3_finalize(c->st[i]);
    sqlite_rows_free(&c->rows); /* before the close, which refuses while statements live */
    sqlite3_close(c->db);
    sqlite_file_unlock(&c->file);
    sqlite_counts_free(&c->counts);
    free(c);
}

/* SQLite counts every allocation under a global mutex unless told not to,
 * and jobq reads no memory statistics from it: off, 7% of a row's
 * instructions (bench/sqlite_row.sh). It can only be set before SQLite
 * initializes, so in a program that used SQLite first (a test) it stays
 * on: SQLITE_MISUSE then, and nothing else changes. */
static pthread_once_t tuned = PTHREAD_ONCE_INIT;
static void tune(void) { (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

static int sq_open(const char *url, backend_sync_t sync, const backend_node_t *node, void **out,
                   char *err, size_t len)
{
    if (node)
        return snprintf(err, len, "cluster mode needs a PostgreSQL database "
                        "(JOBQ_DATABASE_URL=postgres://...)"), -1;
    pthread_once(&tuned, tune);
    const char *path = url + strlen("sqlite://");
    if (!*path) {
        snprintf(err, len, "JOBQ_DATABASE_URL=\"%s\" names no file", url);
        return -1;
    }
    if (mkdir_for(path, err, len) != 0)
        return -1;
    sq_t *c = calloc(1, sizeof *c);
    if (!c)
        return snprintf(err, len, "out of memory"), -1;
    sqlite_counts_init(&c->counts);
    if (sqlite_file_lock(&c->file, path, err, len) != 0) {
        free(c);
        return -1;
    }
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        exec(c, "PRAGMA journal_mode=WAL; PRAGMA busy_timeout=5000; PRAGMA foreign_keys=ON;"
                "PRAGMA cache_size=-8192;") ||
        exec(c, pragmas(sync))) {
        snprintf(err, len, "cannot open %s: %s", path, c->db ? sqlite3_errmsg(c->db) : "?");
        sq_close(c);
        return -1;
    }
    char why[8];
    sqlite_file_check(&c->file, why, sizeof why); /* learns what it opened */
    *out = c;
    return 0;
}

static int sq_check_file(void *conn, char *why, size_t len)
{
    sq_t *c = conn;
    return sqlite_file_check(&c->file, why, len);
}

static int sq_rescue(void *conn, char *where, size_t len)
{
    sq_t *c = conn;
    return sqlite_file_rescue(&c->file, c->db, where, len);
}

static int sq_open_reader(const char *url, void **out, char *err, size_t len)
{
    const char *path = url + strlen("sqlite://");
    sq_t *c = calloc(1, sizeof *c);
    if (!c)
        return snprintf(err, len, "out of memory"), -1;
    sqlite_counts_init(&c->counts);
    c->file.lock_fd = -1;
    if (sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        exec(c, "PRAGMA busy_timeout=5000; PRAGMA query_only=ON; PRAGMA cache_size=-16384;")) {
        snprintf(err, len, "cannot open %s to read: %s", path, c->db ? sqlite3_errmsg(c->db) : "?");
        sq_close(c);
        return -1;
    }
    *out = c;
    return 0;
}

/* The statements that see rows of jobs, which the new rows must be in
 * first (an update of a buffered row settles itself: update_job). */
static const bool reads_jobs[S_COUNT_] = {
    [S_COMMIT] = true, [S_DELETE] = true, [S_GET] = true, [S_OLD_STATE] = true,
    [S_STATE_COUNT] = true,
};

/* Statements are prepared lazily: before migration the tables do not exist. */
static sqlite3_stmt *stmt(sq_t *c, int which)
{
    if (reads_jobs[which] && settle(c) != 0)
        return NULL;
    if (!c->st[which] &&
        sqlite3_prepare_v3(c->db, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT, &c->st[which],
                           NULL) != SQLITE_OK) {
        fail(c, stmt_sql[which]);
        return NULL;
    }
    return c->st[which];
}

/* A one-off statement, after the new rows that wait: 0, or -1 with the
 * error said as `what`. */
static int prepare(sq_t *c, const char *sql, sqlite3_stmt **s, const char *what)
{
    if (settle(c) != 0)
        return -1;
    return sqlite3_prepare_v2(c->db, sql, -1, s, NULL) == SQLITE_OK ? 0 : fail(c, what);
}

static const char *sq_errmsg(void *conn) { return ((sq_t *)conn)->err; }

static bool sq_err_is_full(void *conn)
{
    int rc = ((sq_t *)conn)->last_rc & 0xff;
    return rc == SQLITE_FULL || rc == SQLITE_IOERR;
}

static int sq_schema_version(void *conn, int *current, int *latest)
{
    sq_t *c = conn;
    *latest = sqlite_schema_latest();
    *current = 0;
    if (exec(c, "CREATE TABLE IF NOT EXISTS schema_migrations("
                "version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"))
        return -1;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(c->db, "SELECT COALESCE(MAX(version),0) FROM schema_migrations", -1,
                           &s, NULL) != SQLITE_OK)
        return fail(c, "schema version");
    if (sqlite3_step(s) == SQLITE_ROW)
        *current = sqlite3_column_int(s, 0);
    sqlite3_finalize(s);
    return 0;
}

static int sq_migrate(void *conn)
{
    sq_t *c = conn;
    int cur, latest;
    if (sq_schema_version(c, &cur, &latest))
        return -1;
    for (int v = cur + 1; v <= latest; v++) {
        char mark[128];
        snprintf(mark, sizeof mark, "INSERT INTO schema_migrations VALUES(%d,%lld);", v,
                 (long long)clock_now_ms());
        if (exec(c, "BEGIN IMMEDIATE") || exec(c, sqlite_schema_migration(v)) || exec(c, mark) ||
            exec(c, "COMMIT")) {
            char why[sizeof c->err - 64];
            snprintf(why, sizeof why, "%.400s", c->err);
            exec(c, "ROLLBACK");
            snprintf(c->err, sizeof c->err, "migration %d failed: %s", v, why);
            return -1;
        }
    }
    return 0;
}

static int run_simple(sq_t *c, int which)
{
    return stmt(c, which) ? step_done(c, which) : -1;
}
static int sq_begin(void *c) { return run_simple(c, S_BEGIN); }

/* The transaction's count changes go in with it. */
static int sq_commit(void *conn)
{
    sq_t *c = conn;
    sqlite3_stmt *s = stmt(c, S_STATE_COUNT);
    if (!s) {
        sqlite_counts_clear(&c->counts);
        return -1;
    }
    if (sqlite_counts_flush(&c->counts, s) != 0)
        return fail(c, "state counts");
    return run_simple(c, S_COMMIT);
}

static int sq_rollback(void *conn)
{
    sq_t *c = conn;
    sqlite_counts_clear(&c->counts);
    sqlite_rows_discard(&c->rows);
    return sqlite3_get_autocommit(c->db) ? 0 : run_simple(c, S_ROLLBACK);
}

static int sq_journal_path(void *conn, char *buf, size_t len)
{
    sq_t *c = conn;
    return snprintf(buf, len, "%s.jlog", c->file.path) < (int)len ? 0 : -1;
}

static int sq_journal_applied(void *conn, uint64_t *gen)
{
    sq_t *c = conn;
    sqlite3_stmt *s = stmt(c, S_JOURNAL_GET);
    if (!s)
        return -1;
    int rc = sqlite3_step(s);
    *gen = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(s, 0) : 0;
    int out = rc == SQLITE_ROW ? 0 : fail(c, "journal state");
    sqlite3_reset(s);
    return out;
}

static int sq_set_journal_applied(void *conn, uint64_t gen)
{
    sq_t *c = conn;
    sqlite3_stmt *s = stmt(c, S_JOURNAL_SET);
    if (!s)
        return -1;
    sqlite3_bind_int64(s, 1, (sqlite3_int64)gen);
    return step_done(c, S_JOURNAL_SET);
}

/* The row's count leaves (queue, state) before the row changes or goes;
 * a row that is not there counts nowhere. *found: it was there. */
static int uncount_row(sq_t *c, const char *id, bool *found)
{
    sqlite3_stmt *s = stmt(c, S_OLD_STATE);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), r = 0;
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW && col(s, 0) && col(s, 1) &&
        sqlite_counts_add(&c->counts, col(s, 0), col(s, 1), -1) != 0) {
        snprintf(c->err, sizeof c->err, "state counts: out of memory");
        r = -1;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = fail(c, stmt_sql[S_OLD_STATE]);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return r;
}

#ifdef JOBQ_CHECKS
static bool row_exists(sq_t *c, const char *id)
{
    sqlite3_stmt *s = stmt(c, S_OLD_STATE);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    bool found = sqlite3_step(s) == SQLITE_ROW;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return found;
}

/* No row, or one in state `state`. */
static bool row_state_is(sq_t *c, const char *id, const char *state)
{
    sqlite3_stmt *s = stmt(c, S_OLD_STATE);
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    bool ok = sqlite3_step(s) != SQLITE_ROW || (col(s, 1) && strcmp(col(s, 1), state) == 0);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return ok;
}
#endif

/* A job's later writes update the row they found (queue, type and
 * created_at never change); only a first write inserts. */
static int update_job(sq_t *c, const store_row_t *r)
{
    sqlite3_stmt *s = stmt(c, S_UPDATE);
    if (!s || (sqlite_rows_has(&c->rows, r->id) && settle(c) != 0))
        return -1;
    sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->state, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 3, r->priority);
    sqlite3_bind_int64(s, 4, r->updated_at);
    sqlite3_bind_int64(s, 5, r->run_at);
    sqlite3_bind_blob(s, 6, r->doc, (int)r->doc_len, SQLITE_STATIC);
    return step_done(c, S_UPDATE);
}

/* The row whose state the writes before said (r->was): updated without
 * reading it first; *found says whether it was there (deleted since). */
static int update_known(sq_t *c, const store_row_t *r, bool *found)
{
#ifdef JOBQ_CHECKS
    CHECK(row_state_is(c, r->id, r->was));
#endif
    if (update_job(c, r) != 0)
        return -1;
    *found = sqlite3_changes(c->db) > 0;
    if (*found && sqlite_counts_add(&c->counts, r->queue, r->was, -1) != 0) {
        snprintf(c->err, sizeof c->err, "state counts: out of memory");
        return -1;
    }
    return 0;
}

/* A new row (fresh), the row the writes before named (r->was), or one
 * looked up first (its old state unknown): updated where it is there,
 * else inserted with the next new rows. */
static int sq_put_job(void *conn, const store_row_t *r)
{
    sq_t *c = conn;
    bool found = false;
    if (sqlite_counts_add(&c->counts, r->queue, r->state, 1) != 0) {
        snprintf(c->err, sizeof c->err, "state counts: out of memory");
        return -1;
    }
#ifdef JOBQ_CHECKS
    CHECK(!r->fresh || !row_exists(c, r->id));
#endif
    int rc = 0;
    if (!r->fresh && r->was)
        rc = update_known(c, r, &found);
    else if (!r->fresh && (rc = uncount_row(c, r->id, &found)) == 0 && found)
        rc = update_job(c, r);
    if (rc != 0 || found)
        return rc;
    return sqlite_rows_add(&c->rows, c->db, r) != 0 ? fail(c, "insert jobs") : 0;
}

static int sq_delete_job(void *conn, const char *id)
{
    sq_t *c = conn;
    sqlite3_stmt *s = stmt(c, S_DELETE);
    bool found;
    if (!s || uncount_row(c, id, &found) != 0)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    return step_done(c, S_DELETE);
}

static int sq_put_queue(void *conn, const char *name, bool paused)
{
    sq_t *c = conn;
    sqlite3_stmt *s = stmt(c, S_QUEUE);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 2, paused);
    return step_done(c, S_QUEUE);
}

static int sq_add_counter(void *conn, const char *name, int64_t delta)
{
    sq_t *c = conn;
    sqlite3_stmt *s = stmt(c, S_COUNTER);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, delta);
    return step_done(c, S_COUNTER);
}

/* The row of a statement selecting doc, created_at, id, queue, type. */
static int doc_row(sqlite3_stmt *s, backend_doc_cb cb, void *ud)
{
    const char *id = (const char *)sqlite3_column_text(s, 2);
    const char *queue = (const char *)sqlite3_column_text(s, 3);
    const char *type = (const char *)sqlite3_column_text(s, 4);
    const void *doc = sqlite3_column_blob(s, 0); /* before its length: SQLite's rule */
    store_doc_t d = { .doc = doc, .len = (size_t)sqlite3_column_bytes(s, 0),
                      .id = id ? id : "", .queue = queue ? queue : "", .type = type ? type : "",
                      .created_at = sqlite3_column_int64(s, 1) };
    return cb(ud, &d);
}

/* Steps a row-returning statement, handing each job to cb. */
static int each_doc(sq_t *c, sqlite3_stmt *s, backend_doc_cb cb, void *ud)
{
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
        r = doc_row(s, cb, ud);
    if (r == 0 && rc != SQLITE_DONE)
        r = fail(c, "query");
    return r;
}

static int sq_get_job(void *conn, const char *id, backend_doc_cb cb, void *ud)
{
    sq_t *c = conn;
    sqlite3_stmt *s = stmt(c, S_GET);
    if (!s)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    int r = each_doc(c, s, cb, ud);
    sqlite3_reset(s);
    return r;
}

/* Collects first and deletes after: deleting under an open SELECT would
 * make the scan's view of the index uncertain. */
static int sq_purge(void *conn, const store_purge_t *p, backend_id_cb cb, void *ud,
                    store_purged_t *out)
{
    sq_t *c = conn;
    char sql[BACKEND_PURGE_SQL_MAX];
    backend_purge_sql(p->has_cursor, '?', sql, sizeof sql);
    sqlite3_stmt *s;
    if (prepare(c, sql, &s, "purge scan") != 0)
        return -1;
    sqlite3_bind_int64(s, 1, backend_purge_horizon(p));
    sqlite3_bind_int64(s, 3, p->after_created_at);
    sqlite3_bind_text(s, 4, p->after_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, p->limit);
    char (*doomed)[201] = calloc((size_t)p->limit, sizeof *doomed);
    int n = 0, rc;
    out->scanned = 0;
    while (doomed && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        out->scanned++;
        snprintf(out->last_id, sizeof out->last_id, "%s", col(s, 0));
        out->last_created_at = sqlite3_column_int64(s, 3);
        if (backend_purge_due(col(s, 1), sqlite3_column_int64(s, 2), p))
            snprintf(doomed[n++], sizeof doomed[0], "%s", col(s, 0));
    }
    int r = (!doomed || rc != SQLITE_DONE) ? fail(c, "purge scan") : 0;
    sqlite3_finalize(s);
    for (int i = 0; r == 0 && i < n; i++) {
        r = sq_delete_job(c, doomed[i]);
        if (r == 0)
            r = cb(ud, doomed[i]);
    }
    free(doomed);
    return r;
}

static int sq_list_jobs(void *conn, const store_query_t *q, backend_doc_cb cb, void *ud)
{
    sq_t *c = conn;
    char sql[BACKEND_LIST_SQL_MAX];
    backend_list_sql(q, "jobs", '?', sql, sizeof sql);
    sqlite3_stmt *s;
    if (prepare(c, sql, &s, "list jobs") != 0)
        return -1;
    sqlite3_bind_text(s, 1, q->queue, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, q->state, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, q->type, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 4, q->cursor_created_at);
    sqlite3_bind_text(s, 5, q->cursor_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 6, q->limit);
    sqlite3_bind_int(s, 7, q->priority);
    sqlite3_bind_int64(s, 8, q->created_from);
    sqlite3_bind_int64(s, 9, q->created_to);
    int r = each_doc(c, s, cb, ud);
    sqlite3_finalize(s);
    return r;
}

/* A one-off statement: prepare, hand each row to row_fn, finalize. The
 * caller's callback travels as a generic function pointer and is cast back
 * to its own type by the matching row_fn. */
typedef void (*any_fn)(void);
typedef int (*row_fn)(sqlite3_stmt *s, any_fn cb, void *ud);

static int query(sq_t *c, const char *sql, row_fn fn, any_fn cb, void *ud)
{
    sqlite3_stmt *s;
    if (prepare(c, sql, &s, sql) != 0)
        return -1;
    int rc, r = 0;
    while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW)
        r = fn(s, cb, ud);
    if (r == 0 && rc != SQLITE_DONE)
        r = fail(c, sql);
    sqlite3_finalize(s);
    return r;
}


static int load_row(sqlite3_stmt *s, any_fn cb, void *ud)
{
    return doc_row(s, (backend_doc_cb)cb, ud);
}

static int queue_row(sqlite3_stmt *s, any_fn cb, void *ud)
{
    return ((backend_queue_cb)cb)(ud, col(s, 0), sqlite3_column_int(s, 1) != 0);
}

static int count_row(sqlite3_stmt *s, any_fn cb, void *ud)
{
    return ((backend_count_cb)cb)(ud, col(s, 0), col(s, 1), sqlite3_column_int64(s, 2));
}

static int counter_row(sqlite3_stmt *s, any_fn cb, void *ud)
{
    return ((backend_counter_cb)cb)(ud, col(s, 0), sqlite3_column_int64(s, 1));
}

static int sq_load_active(void *conn, backend_doc_cb cb, void *ud)
{
    return query(conn,
                 "SELECT doc, created_at, id, queue, type FROM jobs WHERE state IN"
                 " ('pending','queued','running','retrying') ORDER BY run_at, created_at, id",
                 load_row, (any_fn)cb, ud);
}

static int sq_load_queues(void *conn, backend_queue_cb cb, void *ud)
{
    return query(conn, "SELECT name, paused FROM queues", queue_row, (any_fn)cb, ud);
}

static int sq_count_states(void *conn, backend_count_cb cb, void *ud)
{
    /* Kept by triggers (schema version 2): no scan of the jobs. */
    return query(conn, "SELECT queue, state, n FROM state_counts WHERE n <> 0 ORDER BY queue",
                 count_row, (any_fn)cb, ud);
}

static int sq_counters(void *conn, backend_counter_cb cb, void *ud)
{
    return query(conn, "SELECT name, value FROM counters", counter_row, (any_fn)cb, ud);
}

static int id_row(sqlite3_stmt *s, any_fn cb, void *ud)
{
    return ((backend_id_cb)cb)(ud, col(s, 0));
}

/* A covering scan of jobs_by_created (the planner's choice: the narrowest
 * index holding the key), not of the table with its documents. */
static int sq_scan_ids(void *conn, backend_id_cb cb, void *ud)
{
    return query(conn, "SELECT id FROM jobs", id_row, (any_fn)cb, ud);
}

const backend_ops_t backend_sqlite = {
    .scheme = "sqlite",
    .open = sq_open,
    .open_reader = sq_open_reader,
    .close = sq_close,
    .check_file = sq_check_file,
    .rescue = sq_rescue,
    .errmsg = sq_errmsg,
    .err_is_full = sq_err_is_full,
    .schema_version = sq_schema_version,
    .migrate = sq_migrate,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .put_job = sq_put_job,
    .delete_job = sq_delete_job,
    .put_queue = sq_put_queue,
    .add_counter = sq_add_counter,
    .journal_path = sq_journal_path,
    .journal_applied = sq_journal_applied,
    .set_journal_applied = sq_set_journal_applied,
    .purge = sq_purge,
    .get_job = sq_get_job,
    .list_jobs = sq_list_jobs,
    .load_active = sq_load_active,
    .load_queues = sq_load_queues,
    .count_states = sq_count_states,
    .counters = sq_counters,
    .scan_ids = sq_scan_ids,
};
