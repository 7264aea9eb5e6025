/*
 * Cluster mode: an enqueue checked against history before its commit.
 * A node looks an id up before it enqueues (an idempotent replay is
 * answered from what it finds), then inserts into jobs, whose key refuses
 * a second live row. Between that read and the insert another node may
 * have enqueued, run and finished the same id: its row has left jobs for
 * history, so the insert finds no conflict and would make the job again.
 * The transaction's last statement before COMMIT looks, for every insert
 * it made, for a row of that id in history that another insert made (its
 * origin), and deletes its own: that enqueue is refused as a conflicting
 * one is. A statement of its own, after the inserts, because it needs a
 * snapshot taken after them: an insert that waited for another node's
 * move to commit saw history without it. One statement for the whole
 * batch, its ids as an array, in the pipeline with the rest, prepared
 * once a session (planned each time, it cost ~0.5 ms of the server a
 * batch: bench/cluster.py --ab, PostgreSQL 601 -> 834 us a job).
 *
 * History is partitioned by finishing time; the row looked for finished
 * after the read, which came just before the job's creation on this node,
 * so the lookup reads only partitions from PG_DUPES_SKEW_MS before the
 * oldest insert's creation on (nodes' clocks may differ that much).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/postgres_internal.h"
#include "util/grow.h"

#define PG_DUPES_SKEW_MS (3600 * 1000LL)

/* A kind each (failed or not): partitions are pruned only by a condition
 * on both of their key's columns. */
#define PG_DUPE_IN(kind)                                                                    \
    "SELECT 1 FROM history h WHERE " kind " AND h.updated_at >= $3"                         \
    " AND h.id = n.id COLLATE \"C\" AND h.origin IS DISTINCT FROM n.origin"
/* An insert undone takes its payload along (the other job's, of another
 * origin, stays). */
static const char dupes_sql[] =
    "WITH d AS (DELETE FROM jobs j USING unnest($1::text[], $2::int8[]) WITH ORDINALITY AS"
    " n(id, origin, k) WHERE j.id = n.id COLLATE \"C\" AND j.origin = n.origin AND EXISTS ("
    PG_DUPE_IN("NOT h.failed") " UNION ALL " PG_DUPE_IN("h.failed") ") RETURNING n.k + $4 AS k,"
    " j.id, j.origin, j.args_at), g AS (" PG_PAYLOADS_GONE("SELECT id, origin, args_at FROM d")
    ") SELECT k FROM d";

void pg_dupes_reset(pg_dupes_t *d)
{
    d->n = d->from = 0;
    d->ids.len = d->origins.len = 0;
    d->oldest = INT64_MAX;
}

void pg_dupes_free(pg_dupes_t *d)
{
    sbuf_free(&d->ids);
    sbuf_free(&d->origins);
    free(d->refused);
    *d = (pg_dupes_t){ 0 };
}

/* An array literal's element: quoted, with its quotes and backslashes
 * escaped (ids may hold any character but NUL). */
static void add_quoted(sbuf_t *s, const char *str)
{
    sbuf_addc(s, '"');
    for (const char *p = str; *p; p++) {
        if (*p == '"' || *p == '\\')
            sbuf_addc(s, '\\');
        sbuf_addc(s, *p);
    }
    sbuf_addc(s, '"');
}

int pg_dupes_note(pg_dupes_t *d, const store_row_t *r)
{
    bool **v = grow_array(d->refused, &d->cap, d->n, sizeof *v, 64);
    if (!v)
        return -1;
    d->refused = v;
    bool first = d->n == d->from;
    sbuf_addc(&d->ids, first ? '{' : ',');
    add_quoted(&d->ids, r->id);
    sbuf_addc(&d->origins, first ? '{' : ',');
    sbuf_add_int(&d->origins, r->origin);
    d->refused[d->n++] = r->refused;
    if (r->created_at < d->oldest)
        d->oldest = r->created_at;
    return 0;
}

/* A row of the check: the ordinal of an insert it undid, among all the
 * transaction's (the arrays' ordinal plus their first's index). */
static int undone(const PGresult *r, int row, void *ud)
{
    pg_dupes_t *d = ud;
    int64_t k = pg_int8_at(r, row, 0);
    if (k >= 1 && (size_t)k <= d->n && d->refused[k - 1])
        *d->refused[k - 1] = true;
    return 0;
}

int pg_dupes_check(pg_t *c)
{
    pg_dupes_t *d = &c->dupes;
    if (d->n == d->from)
        return 0;
    sbuf_addc(&d->ids, '}');
    sbuf_addc(&d->origins, '}');
    char since[24], from[24];
    snprintf(since, sizeof since, "%lld", (long long)(d->oldest - PG_DUPES_SKEW_MS));
    snprintf(from, sizeof from, "%zu", d->from);
    const char *vals[4] = { d->ids.p, d->origins.p, since, from };
    static const Oid types[4] = { 1009, 1016, 20, 20 }; /* text[], int8[], int8, int8 */
    int rc = pg_pipe_rows(c, "dupes", dupes_sql, 4, types, vals,
                          (doc_call_t){ .ud = d, .fn = undone });
    d->from = d->n; /* libpq has copied the arrays: the next check starts new ones */
    d->ids.len = d->origins.len = 0;
    d->oldest = INT64_MAX;
    return rc;
}
