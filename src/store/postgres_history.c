/*
 * History's partitions (schema version 5): made ahead of the jobs that
 * will finish into them, dropped whole once retention has passed their
 * end, their jobs' payloads with them (version 8: drop_part); and the rows
 * of the default partition, deleted one by one when due.
 *
 * Each kind (completed and cancelled; failed) has its own retention, so
 * its own partitions, named history_<c|f>_<from>_<to> (milliseconds of
 * updated_at, the finishing time): the name is all the state there is, so
 * any node can take over. A partition spans an eighth of its kind's
 * retention (at most a day): a job is kept at least its retention and at
 * most an eighth longer, and a kind has about ten partitions, which a
 * lookup by id walks. Narrower than JOBQ_HISTORY_PARTITION_MIN (a short
 * retention), the kind gets none: its jobs stay in the default partition,
 * deleted one by one. A partition made and one dropped every second cost
 * more than the deletes (bench/cluster.py --ab --retain 3s: 626 against
 * 380 us of PostgreSQL CPU a job): each DDL statement waits for the
 * table's lock, and makes every session plan its statements again.
 *
 * Asked for by retention's batches on every node, run after them, each
 * statement its own transaction (backend.h: history_upkeep): inside a
 * batch, the parent table's lock would be held to its commit, and every
 * read and move of history in the cluster would wait that long. A DDL
 * statement waits for the lock behind every transaction using history,
 * and all that comes after waits behind it: with a short lock_timeout it
 * gives up instead of stalling the cluster, and the next sweep tries
 * again. Two nodes making the same partition: the second fails likewise.
 * The default partition's due rows go by DML, in the purge's batch.
 */
#include <stdio.h>
#include <string.h>

#include "store/postgres_internal.h"
#include "util/clock.h"

#define PARTS_MAX 512
#define CREATE_MAX 16             /* per batch: a long outage is caught up over several */
#define WIDTH_MAX_MS 86400000LL
#define AHEAD_MIN_MS 10000LL      /* made this far ahead at least: past retention's rest */

typedef struct part {
    bool failed;
    int64_t from, to;
} part_t;

typedef struct parts {
    part_t v[PARTS_MAX];
    int n;
} parts_t;

/* A partition of ours, by its name; anything else is left alone. */
static int part_row(const PGresult *r, int row, void *ud)
{
    parts_t *ps = ud;
    const char *name = PQgetvalue(r, row, 0);
    char kind = 0;
    long long from = 0, to = 0;
    int end = 0;
    if (ps->n < PARTS_MAX &&
        sscanf(name, "history_%c_%lld_%lld%n", &kind, &from, &to, &end) == 3 && !name[end] &&
        (kind == 'c' || kind == 'f') && from < to)
        ps->v[ps->n++] = (part_t){ kind == 'f', from, to };
    return 0;
}

static void part_name(char *buf, size_t len, bool failed, int64_t from, int64_t to)
{
    snprintf(buf, len, "history_%c_%lld_%lld", failed ? 'f' : 'c', (long long)from,
             (long long)to);
}

static int int8_row(const PGresult *r, int row, void *ud)
{
    *(int64_t *)ud = pg_int8_at(r, row, 0);
    return 0;
}

/* A partition detached from history, its jobs' payloads deleted
 * (migration 8), and the table dropped: each step its own transaction.
 * Once detached, no statement reaches its rows through history (a retry
 * could otherwise move a job out between the deletes and the drop, its
 * payload gone), and a sweep stopped midway finds the table detached
 * (drop_detached) and ends the work. */
static int drop_part(pg_t *c, const char *name, bool attached)
{
    char sql[512];
    if (attached) {
        snprintf(sql, sizeof sql, "ALTER TABLE history DETACH PARTITION %s", name);
        if (pg_exec(c, sql) != 0)
            return -1;
    }
    snprintf(sql, sizeof sql, PG_PAYLOADS_GONE("SELECT id, origin, args_at FROM %s"), name);
    if (pg_exec(c, sql) != 0)
        return -1;
    snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS %s", name);
    return pg_exec(c, sql);
}

static int drop_due(pg_t *c, const parts_t *ps, bool failed, int64_t before, int *dropped)
{
    for (int i = 0; i < ps->n; i++) {
        if (ps->v[i].failed != failed || ps->v[i].to > before)
            continue;
        char name[64];
        part_name(name, sizeof name, failed, ps->v[i].from, ps->v[i].to);
        if (drop_part(c, name, true) != 0)
            return -1;
        ++*dropped;
    }
    return 0;
}

/* Partitions of ours detached and not yet dropped (drop_part stopped
 * midway, on this node or another). */
static int drop_detached(pg_t *c)
{
    parts_t ps = { .n = 0 };
    if (pg_each_row(c, NULL, "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND"
                    " NOT relispartition AND relnamespace = current_schema()::regnamespace"
                    " AND relname LIKE 'history\\_%'", 0, NULL, NULL, part_row, &ps) != 0)
        return -1;
    for (int i = 0; i < ps.n; i++) {
        char name[64];
        part_name(name, sizeof name, ps.v[i].failed, ps.v[i].from, ps.v[i].to);
        if (drop_part(c, name, false) != 0)
            return -1;
    }
    return 0;
}

/* The counts of partitions no longer there (migration 7): dropped here,
 * by another node or by an operator. Statistics pass over them already;
 * this keeps the table small. In a statement of its own, after the
 * drops: a DDL statement's transaction holds history's lock to its end. */
static int forget_counts(pg_t *c)
{
    return pg_exec(c, "DELETE FROM history_counts WHERE part NOT IN (" PG_HISTORY_PARTS ")");
}

/* Partitions of one kind from just before now to AHEAD past it,
 * contiguous with the last one, and starting after anything the default
 * partition holds in their range (PostgreSQL refuses a partition whose
 * rows are in the default one). */
static int make_ahead(pg_t *c, const parts_t *ps, bool failed, int64_t width, int64_t now)
{
    int64_t ahead = now + (2 * width > AHEAD_MIN_MS ? 2 * width : AHEAD_MIN_MS);
    int64_t start = (now - width) / width * width, last = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->v[i].failed == failed && ps->v[i].to > last)
            last = ps->v[i].to;
    if (last > start)
        start = last;
    if (start >= ahead)
        return 0;
    int64_t stray = 0;
    const char *kind[1] = { failed ? "t" : "f" };
    static const Oid t_kind[1] = { 16 };
    if (pg_each_row(c, NULL, "SELECT coalesce(max(updated_at), 0) FROM history_default"
                    " WHERE failed = $1", 1, t_kind, kind, int8_row, &stray) != 0)
        return -1;
    if (stray >= start)
        start = stray + 1;
    for (int made = 0; start < ahead && made < CREATE_MAX; made++) {
        int64_t end = (start / width + 1) * width;
        char sql[256], name[64];
        part_name(name, sizeof name, failed, start, end);
        snprintf(sql, sizeof sql, "CREATE TABLE %s PARTITION OF history FOR VALUES FROM"
                 " (%s, %lld) TO (%s, %lld)", name, failed ? "true" : "false",
                 (long long)start, failed ? "true" : "false", (long long)end);
        if (pg_exec(c, sql) != 0)
            return -1;
        start = end;
    }
    return 0;
}

static int upkeep(pg_t *c, const store_purge_t *p, int64_t now, int *dropped)
{
    parts_t ps = { .n = 0 };
    if (pg_each_row(c, NULL, "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c"
                    " ON c.oid = i.inhrelid WHERE i.inhparent = 'history'::regclass",
                    0, NULL, NULL, part_row, &ps) != 0 || drop_detached(c) != 0)
        return -1;
    const struct {
        bool failed;
        int64_t before;
    } kinds[2] = { { false, p->completed_before }, { true, p->failed_before } };
    for (int k = 0; k < 2; k++) {
        if (kinds[k].before <= 0)
            continue; /* kept for good: in the default partition */
        if (drop_due(c, &ps, kinds[k].failed, kinds[k].before, dropped) != 0)
            return -1;
        /* FLUSH (a horizon past now) says nothing of a retention. */
        int64_t width = (now - kinds[k].before) / 8;
        width = width > WIDTH_MAX_MS ? WIDTH_MAX_MS : width;
        if (kinds[k].before <= now &&
            width >= (p->partition_min_ms > 1000 ? p->partition_min_ms : 1000) &&
            make_ahead(c, &ps, kinds[k].failed, width, now) != 0)
            return -1;
    }
    return forget_counts(c);
}

/* A lock not granted at once (55P03) is for the next sweep; any other
 * failure is said. */
int pg_history_upkeep(void *conn, const store_purge_t *p, int *dropped)
{
    pg_t *c = conn;
    if (PQstatus(c->db) != CONNECTION_OK || c->in_tx)
        return 0; /* the next batch makes the session again */
    if (pg_exec(c, "SET lock_timeout = '100ms'") != 0)
        return -1;
    int rc = upkeep(c, p, clock_now_ms(), dropped);
    bool busy = rc != 0 && !strcmp(c->sqlstate, "55P03");
    if (pg_restore_lock_wait(c) != 0)
        rc = -1;
    return busy ? 0 : rc;
}

typedef struct id_call {
    backend_id_cb cb;
    void *ud;
    int n;
} id_call_t;

static int id_row(const PGresult *r, int row, void *ud)
{
    id_call_t *call = ud;
    call->n++;
    return call->cb(call->ud, PQgetvalue(r, row, 0));
}

/* Each kind a range of the (failed, updated_at) index; an OR of the two
 * read the whole partition. */
int pg_history_purge_default(pg_t *c, const store_purge_t *p, backend_id_cb cb, void *ud,
                             int *deleted)
{
    char done[24], failed[24], lim[16];
    snprintf(done, sizeof done, "%lld", (long long)p->completed_before);
    snprintf(failed, sizeof failed, "%lld", (long long)p->failed_before);
    snprintf(lim, sizeof lim, "%d", p->limit > 0 ? p->limit : 1);
    const char *vals[3] = { done, failed, lim };
    static const Oid types[3] = { 20, 20, 23 };
    id_call_t call = { cb, ud, 0 };
    int rc = pg_each_row(c, NULL, "WITH d AS (DELETE FROM history_default WHERE ctid = ANY"
                         " (ARRAY((SELECT ctid FROM history_default WHERE $1 > 0 AND NOT failed"
                         " AND updated_at < $1 LIMIT $3) UNION ALL (SELECT ctid FROM"
                         " history_default WHERE $2 > 0 AND failed AND updated_at < $2 LIMIT"
                         " $3) LIMIT $3)) RETURNING id, tableoid, queue, state, origin, args_at),"
                         " k AS (" PG_COUNT(PG_OUT("d")) "), g AS (" PG_PAYLOADS_GONE(
                         "SELECT id, origin, args_at FROM d") ") SELECT id FROM d",
                         3, types, vals, id_row, &call);
    *deleted = call.n;
    return rc;
}
