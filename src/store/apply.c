/* Applying writes to the database: one transaction per call, writes of one
 * job merged, lifetime counters, the journal generation they complete,
 * the file check, and retries until it commits (store_internal.h). The
 * store thread's loop and the journal are in writer.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "util/clock.h"
#include "util/hmap.h"
#include "util/log.h"

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
    if (rc == 0 && s->ops->history_upkeep) {
        s->upkeep_due = true;
        s->upkeep = (store_purge_t){ .completed_before = op->purge.completed_before,
                                     .failed_before = op->purge.failed_before,
                                     .partition_min_ms = op->purge.partition_min_ms };
    }
    /* "dropped": set by the upkeep after the commit (writer.c) */
    op->result = json_pack("{s:o, s:i, s:i, s:{s:I, s:s}}", "deleted", ids, "scanned",
                           out.scanned, "dropped", 0, "cursor", "created_at",
                           (json_int_t)out.last_created_at, "id", out.last_id);
    return rc;
}

static bool is_enqueue(const op_t *op) { return op->kind == OP_PUT && op->ev == JOB_EV_ENQUEUED; }

/* A job written several times in one batch (enqueued and leased in the
 * same loop iteration, leased and completed before the commit) needs only
 * its last row: the batch commits as one, so no reader and no recovery can
 * see the ones before. A delete supersedes the puts before it too. A purge
 * in the batch turns this off (it reads rows the earlier puts would write);
 * so does running out of memory (every put then runs, as before). The
 * last put of a job whose first write in the batch is its enqueue is
 * marked fresh when the batch is live: no older row can exist. The row's
 * state before the batch is what its first write found (op->was). In
 * cluster mode a delete supersedes nothing: the put before it is a
 * holder's give-back, and the delete of a free row needs it done. */
static void mark_superseded(op_t *batch, bool live, bool cluster)
{
    bool purge = false;
    for (op_t *op = batch; op; op = op->next) {
        op->superseded = op->first_seen = op->row.fresh = op->refused = false;
        op->row.was = op->kind == OP_PUT ? op->was : NULL;
        purge = purge || op->kind == OP_PURGE;
    }
    if (batch && !batch->next)
        batch->row.fresh = live && is_enqueue(batch); /* a batch of one has nothing to merge */
    if (purge || !batch || !batch->next)
        return;
    hmap_t last; /* each id's last write in the batch */
    hmap_init(&last);
    for (op_t *op = batch; op; op = op->next) {
        const char *id = store_op_id(op);
        if (id && hmap_put_h(&last, id, store_op_hash(op, id), op) != 0) {
            hmap_free(&last);
            return;
        }
    }
    for (op_t *op = batch; op; op = op->next) {
        const char *id = store_op_id(op);
        op_t *final = id ? hmap_get_h(&last, id, store_op_hash(op, id)) : NULL;
        if (!final)
            continue;
        if (!final->first_seen) {
            final->first_seen = true;
            final->row.fresh = live && is_enqueue(op);
            final->row.was = op->kind == OP_PUT ? op->was : NULL;
        }
        if (op->kind == OP_PUT && final != op && !(cluster && final->kind == OP_DELETE))
            op->superseded = true;
    }
    hmap_free(&last);
}

static int run_write(store_t *s, op_t *op, int64_t *totals)
{
    switch (op->kind) {
    case OP_PUT:
        totals[op->ev]++;
        return s->ops->put_job(s->conn, &op->row);
    case OP_DELETE:
        return s->cluster ? s->ops->delete_fenced(s->conn, op->name, op->row.token,
                                                  op->row.free_token, &op->refused)
                          : s->ops->delete_job(s->conn, op->name);
    case OP_QUEUE: return s->ops->put_queue(s->conn, op->name, op->paused);
    case OP_PURGE: return run_purge(s, op);
    case OP_CLAIM: return store_run_claim(s, op);
    case OP_BEAT: return store_run_beat(s, op);
    case OP_LEAVE: return store_run_leave(s);
    case OP_BREAKER:
        return s->ops->put_breaker ? s->ops->put_breaker(s->conn, op->name, op->change,
                                                         op->cooldown_ms, op->cooldown_max_ms)
                                   : 0;
    default: return 0; /* reads go to the readers (reader.c) */
    }
}

bool store_injected_failure(store_t *s)
{
    if (s->faults.commit_fail_ms <= 0)
        return false;
    int64_t now = clock_mono_ns();
    if (!s->fail_started_ns)
        s->fail_started_ns = now;
    s->injected = now - s->fail_started_ns < s->faults.commit_fail_ms * 1000000;
    s->injected_why = "injected fault: commit refused (JOBQ_FAULT_COMMIT_FAIL_MS)";
    return s->injected;
}

/* A transaction opens: flags of the batch set again (a retry starts over). */
static int apply_begin(store_t *s, store_applying_t *a)
{
    s->injected = false;
    memset(a->totals, 0, sizeof a->totals);
    a->next = a->batch;
    if (s->ops->begin(s->conn) != 0)
        return -1;
    mark_superseded(a->batch, a->live, s->cluster);
    for (op_t *op = a->batch; op; op = op->next)
        op->row.again = a->attempt > 0;
    a->open = true;
    return 0;
}

/* Claims and beats (cluster mode) only ask for something: a batch that
 * keeps failing goes on without them, so that a statement of theirs that
 * cannot succeed never holds the writes back; their callbacks hear why.
 * One whose earlier run took jobs stays: it must take them back (held). */
static void drop_asks(store_t *s, store_applying_t *a)
{
    for (op_t *op = a->batch; op; op = op->next)
        if ((op->kind == OP_CLAIM || op->kind == OP_BEAT) && !op->dropped && !op->njobs) {
            op->dropped = true;
            char why[600];
            store_last_error(s, why, sizeof why);
            free(op->error);
            op->error = strdup(why);
        }
}

/* Up to max writes of the batch, from where the last call stopped. */
static int apply_writes(store_t *s, store_applying_t *a, size_t max)
{
    for (; a->next && max; a->next = a->next->next, max--) {
        op_t *op = a->next;
        if (op->dropped)
            continue;
        if (op->superseded) {
            a->totals[op->ev]++; /* every event counts, written or not */
            continue;
        }
        int64_t t0 = clock_mono_ns();
        if (run_write(s, op, a->totals) != 0)
            return -1;
        if (op->kind <= OP_PURGE)
            timed(s, (store_statement_t)op->kind, t0);
    }
    return 0;
}

/* Counters, the generation applied, the file check, the commit. */
static int apply_commit(store_t *s, store_applying_t *a)
{
    for (int ev = 0; ev < JOB_EV_COUNT; ev++)
        if (ev != JOB_EV_UPDATED && a->totals[ev] &&
            s->ops->add_counter(s->conn, job_event_name(ev), a->totals[ev]) != 0)
            return -1;
    if (a->gen && s->ops->set_journal_applied(s->conn, a->gen) != 0)
        return -1;
    store_fault_delay(s);
    if (store_injected_failure(s))
        return -1;
    /* Checked before the commit, acted on after it: this batch is then in
     * what file_lost() writes back, so it may still be acknowledged. */
    s->lost = s->ops->check_file(s->conn, s->lost_why, sizeof s->lost_why) != 0;
    int64_t t0 = clock_mono_ns();
    int rc = s->ops->commit(s->conn);
    timed(s, STORE_ST_COMMIT, t0);
    s->last_commit_s = (double)(clock_mono_ns() - t0) / 1e9;
    if (rc == 0 && !s->journal && s->faults.commit_lost_every > 0 &&
        ++s->commits % (uint64_t)s->faults.commit_lost_every == 0) {
        s->injected = true; /* committed, but this process is told otherwise */
        s->injected_why = "injected fault: a commit's outcome was lost "
                          "(JOBQ_FAULT_COMMIT_LOST_EVERY)";
        return -1;
    }
    return rc;
}

void store_fault_delay(const store_t *s)
{
    if (s->faults.commit_delay_ms > 0) {
        int64_t ms = s->faults.commit_delay_ms;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
}

void store_set_health(store_t *s, bool ok, const char *why)
{
    if (atomic_load(&s->dead) || (ok && atomic_load(&s->healthy) && !s->last_error[0]))
        return; /* healthy and staying so: every batch comes here (last_error is
                 * written only by this thread, so reading it needs no lock) */
    atomic_store(&s->healthy, ok);
    bool full = why ? s->journal && journal_full(s->journal) : s->ops->err_is_full(s->conn);
    atomic_store(&s->disk_full, !ok && !s->injected && full);
    if (!why)
        why = s->ops->errmsg(s->conn);
    if (ok)
        why = "";
    else if (s->injected)
        why = s->injected_why;
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_error, sizeof s->last_error, "%s", why);
    pthread_cond_broadcast(&s->read_cv); /* reads waiting for a commit answer now (reader.c) */
    pthread_mutex_unlock(&s->mu);
}

/* The database file was deleted or replaced under the writer. Whatever is
 * committed lives on only in this connection: write it back where it
 * belongs, then refuse everything from here on, so that nothing more is
 * acknowledged into a file no restart will read. */
void store_file_lost(store_t *s, const char *why)
{
    char where[600];
    int rc = s->ops->rescue(s->conn, where, sizeof where);
    if (rc == 0)
        log_error("database file lost: everything committed was written back; writes are "
                  "refused until jobq is restarted", LOG_S("error", why),
                  LOG_S("written_to", where));
    else
        log_error("database file lost and could not be written back; writes are refused",
                  LOG_S("error", why), LOG_S("rescue_error", where));
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_error, sizeof s->last_error, "%.200s; %s %.250s; restart jobq", why,
             rc == 0 ? "everything committed was written to" : "rescue failed:", where);
    atomic_store(&s->healthy, false);
    atomic_store(&s->dead, true);
    pthread_cond_broadcast(&s->read_cv);
    pthread_mutex_unlock(&s->mu);
}

void store_apply_start(store_applying_t *a, op_t *batch, bool live, uint64_t gen)
{
    *a = (store_applying_t){ .batch = batch, .next = batch, .live = live, .gen = gen };
}

/* A failed attempt: rolled back, said, and waited for; the next step
 * starts the batch over. */
static void apply_failed(store_t *s, store_applying_t *a)
{
    store_set_health(s, false, NULL);
    pthread_mutex_lock(&s->mu);
    s->fig.failed_commits++;
    pthread_mutex_unlock(&s->mu);
    char why[512];
    store_last_error(s, why, sizeof why);
    log_error("store commit failed; will retry", LOG_S("error", why),
              LOG_I("attempt", a->attempt + 1));
    s->ops->rollback(s->conn);
    a->open = false;
    store_backoff(a->attempt++);
    if (a->attempt >= 2)
        drop_asks(s, a);
}

bool store_apply_step(store_t *s, store_applying_t *a, size_t max)
{
    if (s->faults.step_delay_ms > 0)
        nanosleep(&(struct timespec){ s->faults.step_delay_ms / 1000,
                                      (s->faults.step_delay_ms % 1000) * 1000000 }, NULL);
    if ((!a->open && apply_begin(s, a) != 0) || apply_writes(s, a, max) != 0) {
        apply_failed(s, a);
        return false;
    }
    if (a->next)
        return false;
    if (apply_commit(s, a) != 0) {
        apply_failed(s, a);
        return false;
    }
    a->open = false;
    if (!atomic_load(&s->healthy))
        log_info("store recovered", LOG_I("attempts", a->attempt + 1));
    store_set_health(s, true, NULL);
    if (s->lost)
        store_file_lost(s, s->lost_why);
    return true;
}

/* Retries until the batch commits: nothing may be lost, whether it was
 * acknowledged from the journal already or is waiting for this commit. */
void store_apply(store_t *s, op_t *batch, bool live, uint64_t gen)
{
    store_applying_t a;
    store_apply_start(&a, batch, live, gen);
    while (!store_apply_step(s, &a, SIZE_MAX))
        ;
}

void store_backoff(int attempt)
{
    int64_t ms = attempt < 6 ? 50LL << attempt : 2000;
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
}

