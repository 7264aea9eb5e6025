/* The store thread: takes everything queued, applies it in order in one
 * transaction, commits, and hands the batch back to the loop (store.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "util/clock.h"
#include "util/log.h"

void store_free_op(op_t *op)
{
    free(op->doc);
    free(op->error);
    json_decref(op->result);
    free(op);
}

const char *store_statement_name(store_statement_t st)
{
    static const char *const names[STORE_ST_COUNT] = { "put_job", "delete_job", "put_queue",
                                                       "get_job", "list_jobs", "stats",
                                                       "purge", "commit" };
    return st < STORE_ST_COUNT ? names[st] : "?";
}

/* op kinds and statement kinds share their order up to STORE_ST_COMMIT */
static void timed(store_t *s, store_statement_t st, int64_t t0)
{
    histogram_observe(&s->st_private[st], (double)(clock_mono_ns() - t0) / 1e9);
}

static int purged_id(void *ud, const char *id)
{
    json_array_append_new(ud, json_string(id));
    return 0;
}

/* A write with a result; a retried batch runs it again from scratch. */
static int run_purge(store_t *s, op_t *op)
{
    json_decref(op->result);
    store_purged_t out = { 0 };
    json_t *ids = json_array();
    int rc = s->ops->purge(s->conn, &op->purge, purged_id, ids, &out);
    op->result = json_pack("{s:o, s:i, s:{s:I, s:s}}", "deleted", ids, "scanned", out.scanned,
                           "cursor", "created_at", (json_int_t)out.last_created_at, "id",
                           out.last_id);
    return rc;
}

static int run_write(store_t *s, op_t *op, int64_t *totals)
{
    switch (op->kind) {
    case OP_PUT:
        totals[op->ev]++;
        return s->ops->put_job(s->conn, &op->row);
    case OP_DELETE: return s->ops->delete_job(s->conn, op->name);
    case OP_QUEUE: return s->ops->put_queue(s->conn, op->name, op->paused);
    case OP_PURGE: return run_purge(s, op);
    default: return 0; /* reads go to the readers (reader.c) */
    }
}

static bool injected_failure(store_t *s)
{
    if (s->faults.commit_fail_ms <= 0)
        return false;
    int64_t now = clock_mono_ns();
    if (!s->fail_started_ns)
        s->fail_started_ns = now;
    s->injected = now - s->fail_started_ns < s->faults.commit_fail_ms * 1000000;
    return s->injected;
}

static int run_batch(store_t *s, op_t *batch)
{
    int64_t totals[ENGINE_EV_COUNT] = { 0 };
    s->injected = false;
    if (s->ops->begin(s->conn) != 0)
        return -1;
    for (op_t *op = batch; op; op = op->next) {
        int64_t t0 = clock_mono_ns();
        if (run_write(s, op, totals) != 0)
            return -1;
        timed(s, (store_statement_t)op->kind, t0);
    }
    for (int ev = 0; ev < ENGINE_EV_COUNT; ev++)
        if (ev != ENGINE_EV_UPDATED && totals[ev] &&
            s->ops->add_counter(s->conn, engine_event_name(ev), totals[ev]) != 0)
            return -1;
    if (s->faults.commit_delay_ms > 0) {
        int64_t ms = s->faults.commit_delay_ms;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
    if (injected_failure(s))
        return -1;
    int64_t t0 = clock_mono_ns();
    int rc = s->ops->commit(s->conn);
    timed(s, STORE_ST_COMMIT, t0);
    s->last_commit_s = (double)(clock_mono_ns() - t0) / 1e9;
    return rc;
}

static void set_health(store_t *s, bool ok)
{
    atomic_store(&s->healthy, ok);
    atomic_store(&s->disk_full, !ok && !s->injected && s->ops->err_is_full(s->conn));
    const char *why = ok           ? ""
                      : s->injected ? "injected fault: commit refused (JOBQ_FAULT_COMMIT_FAIL_MS)"
                                    : s->ops->errmsg(s->conn);
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_error, sizeof s->last_error, "%s", why);
    pthread_mutex_unlock(&s->mu);
}

/* Retries until the batch commits: an acknowledged job must never be lost,
 * and nothing in this batch has been acknowledged yet. */
static void apply_batch(store_t *s, op_t *batch)
{
    for (int attempt = 0;; attempt++) {
        if (run_batch(s, batch) == 0) {
            if (!atomic_load(&s->healthy))
                log_info("store recovered", LOG_I("attempts", attempt + 1));
            set_health(s, true);
            return;
        }
        set_health(s, false);
        pthread_mutex_lock(&s->mu);
        s->fig.failed_commits++;
        pthread_mutex_unlock(&s->mu);
        char why[512];
        store_last_error(s, why, sizeof why);
        log_error("store commit failed; will retry", LOG_S("error", why),
                  LOG_I("attempt", attempt + 1));
        s->ops->rollback(s->conn);
        int64_t ms = attempt < 6 ? 50LL << attempt : 2000;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
}

void *store_writer_main(void *arg)
{
    store_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        op_t *batch = s->head, *last = s->tail;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        if (!batch)
            break; /* stopping, and everything is committed */
        int64_t t0 = clock_mono_ns();
        apply_batch(s, batch);
        double secs = (double)(clock_mono_ns() - t0) / 1e9;
        uint64_t n = 0;
        for (op_t *op = batch; op; op = op->next)
            n++;
        if (s->slow_commit_ms && secs * 1e3 > (double)s->slow_commit_ms)
            log_warn("slow commit", LOG_D("duration_ms", secs * 1e3), LOG_I("batch", n),
                     LOG_D("commit_ms", s->st_private[STORE_ST_COMMIT].count
                                            ? s->last_commit_s * 1e3 : 0));
        pthread_mutex_lock(&s->mu);
        histogram_observe(&s->fig.commit_seconds, secs);
        histogram_observe(&s->fig.batch_size, (double)n);
        static const store_statement_t writes[] = { STORE_ST_PUT, STORE_ST_DELETE, STORE_ST_QUEUE,
                                                    STORE_ST_PURGE, STORE_ST_COMMIT };
        for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
            s->fig.statement_seconds[writes[i]] = s->st_private[writes[i]];
        if (s->done_tail)
            s->done_tail->next = batch;
        else
            s->done = batch;
        s->done_tail = last;
        s->committed = last->seq;
        pthread_cond_broadcast(&s->read_cv); /* reads waiting for these writes */
        pthread_mutex_unlock(&s->mu);
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_error("store notify failed", LOG_S("error", strerror(errno)));
    }
    return NULL;
}
