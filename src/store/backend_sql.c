/* What both backends say alike (backend.h): the list's SQL, and
 * retention's scan and which jobs it takes. */
#include <stdio.h>
#include <string.h>

#include "store/backend.h"

/* Parameter numbers: 1 queue, 2 state, 3 type, 4 and 5 the cursor's
 * created_at and id, 6 the limit, 7 priority, 8 and 9 the created range. */
void backend_list_sql(const store_query_t *q, const char *table, char mark, char *sql, size_t n)
{
    const struct {
        bool on;
        const char *cond;
        char param;
    } parts[] = {
        { q->queue != NULL, "queue=", '1' },         { q->state != NULL, "state=", '2' },
        { q->type != NULL, "type=", '3' },           { q->by_priority, "priority=", '7' },
        { q->created_from != 0, "created_at>=", '8' }, { q->created_to != 0, "created_at<", '9' },
    };
    size_t used = (size_t)snprintf(sql, n, "SELECT doc, created_at, id, queue, type FROM %s"
                                           " WHERE 1=1", table);
    for (size_t i = 0; i < sizeof parts / sizeof parts[0] && used < n; i++)
        if (parts[i].on)
            used += (size_t)snprintf(sql + used, n - used, " AND %s%c%c", parts[i].cond, mark,
                                     parts[i].param);
    /* A row value: both databases seek the (created_at, id) index to it. */
    if (q->has_cursor && used < n)
        used += (size_t)snprintf(sql + used, n - used, " AND (created_at, id) < (%c4, %c5)",
                                 mark, mark);
    if (used < n)
        snprintf(sql + used, n - used, " ORDER BY created_at DESC, id DESC LIMIT %c6", mark);
}

/* Parameters: 1 the horizon (backend_purge_horizon), 3 and 4 the
 * cursor's created_at and id, 5 the limit. The row value lets both
 * databases seek the (created_at, id) index to the cursor: with an OR
 * instead, every batch rescanned from the start and a sweep over 200k
 * jobs took 30x longer (bench/retention.sh). */
void backend_purge_sql(bool has_cursor, char mark, char *sql, size_t n)
{
    if (has_cursor)
        snprintf(sql, n,
                 "SELECT id, state, updated_at, created_at FROM jobs WHERE (created_at, id) >"
                 " (%c3, %c4) AND created_at < %c1 ORDER BY created_at, id LIMIT %c5",
                 mark, mark, mark, mark);
    else
        snprintf(sql, n,
                 "SELECT id, state, updated_at, created_at FROM jobs WHERE created_at < %c1"
                 " ORDER BY created_at, id LIMIT %c5",
                 mark, mark);
}

int64_t backend_purge_horizon(const store_purge_t *p)
{
    return p->completed_before > p->failed_before ? p->completed_before : p->failed_before;
}

bool backend_purge_due(const char *state, int64_t updated_at, const store_purge_t *p)
{
    if (p->waiting && (!strcmp(state, "queued") || !strcmp(state, "pending") ||
                       !strcmp(state, "retrying")))
        return true;
    if (!strcmp(state, "failed"))
        return p->failed_before && updated_at < p->failed_before;
    if (!strcmp(state, "completed") || !strcmp(state, "cancelled"))
        return p->completed_before && updated_at < p->completed_before;
    return false;
}
