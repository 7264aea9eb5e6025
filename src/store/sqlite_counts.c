/* Job counts by queue and state, summed per transaction (sqlite_counts.h). */
#include "store/sqlite_counts.h"

#include <stdlib.h>
#include <string.h>

#include "core/job.h"

typedef struct qcounts {
    int64_t n[JOB_STATE_COUNT];
    char name[]; /* the hmap key */
} qcounts_t;

void sqlite_counts_init(sqlite_counts_t *c)
{
    hmap_init(&c->queues);
    c->last = NULL;
}

void sqlite_counts_clear(sqlite_counts_t *c)
{
    hmap_free_values(&c->queues, free);
    sqlite_counts_init(c);
}

void sqlite_counts_free(sqlite_counts_t *c) { hmap_free_values(&c->queues, free); }

/* queue's entry, made when new: the last one's without a lookup when it
 * is the same queue (a row's old and new state, a run of one queue's
 * jobs). */
static qcounts_t *entry(sqlite_counts_t *c, const char *queue)
{
    if (c->last && !strcmp(c->last->name, queue))
        return c->last;
    qcounts_t *q = hmap_get(&c->queues, queue);
    if (!q) {
        size_t len = strlen(queue) + 1;
        if (!(q = calloc(1, sizeof *q + len)))
            return NULL;
        memcpy(q->name, queue, len);
        if (hmap_put(&c->queues, q->name, q) != 0) {
            free(q);
            return NULL;
        }
    }
    return c->last = q;
}

int sqlite_counts_add(sqlite_counts_t *c, const char *queue, const char *state, int64_t d)
{
    job_state_t st;
    if (job_state_parse(state, &st) != 0)
        return 0;
    qcounts_t *q = entry(c, queue);
    if (!q)
        return -1;
    q->n[st] += d;
    return 0;
}

int sqlite_counts_flush(sqlite_counts_t *c, sqlite3_stmt *upsert)
{
    const char *name;
    void *v;
    int rc = SQLITE_DONE;
    for (size_t i = 0; rc == SQLITE_DONE && hmap_next(&c->queues, &i, &name, &v);) {
        const qcounts_t *q = v;
        for (int st = 0; rc == SQLITE_DONE && st < JOB_STATE_COUNT; st++) {
            if (!q->n[st])
                continue;
            sqlite3_bind_text(upsert, 1, q->name, -1, SQLITE_STATIC);
            sqlite3_bind_text(upsert, 2, job_state_name((job_state_t)st), -1, SQLITE_STATIC);
            sqlite3_bind_int64(upsert, 3, q->n[st]);
            rc = sqlite3_step(upsert);
            sqlite3_reset(upsert);
        }
    }
    sqlite3_clear_bindings(upsert);
    sqlite_counts_clear(c);
    return rc == SQLITE_DONE ? 0 : rc;
}
