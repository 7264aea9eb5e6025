/*
 * The store thread: takes everything queued as one batch and makes it
 * durable, then hands it back to the loop (store.h); and compacts what is
 * pending, including what the loop journaled itself (store_flush, in
 * "os" durability).
 *
 * With a journal (the SQLite backend), a batch is durable once journaled:
 * one write (and in "fsync" durability one fdatasync) for the whole batch,
 * whatever it holds. The batch then waits in `pending` until a compaction
 * applies everything pending to the database in one transaction, where a
 * job written several times (enqueued, leased, completed) costs one row.
 * Compaction runs when pending grows past COMPACT_OPS or COMPACT_BYTES, is
 * compact_ms old (JOBQ_COMPACT_INTERVAL), a read waits for it (reads see the database), a purge
 * arrives (it reads rows), the journal file was lost, or the store stops.
 * Its transaction runs in steps of COMPACT_STEP writes, and a batch that
 * arrives meanwhile is journaled between two steps: in "fsync" durability
 * this thread does both, and a whole compaction (tens of milliseconds)
 * would otherwise hold every acknowledgement back. A compaction that ran
 * only because pending writes grew old may carry running jobs past it
 * (carry.c).
 *
 * Without one, every batch is applied to the database directly.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store_internal.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/log.h"

#define IDLE_CHECK_MS 1000
#define COMPACT_OPS 16384
#define COMPACT_BYTES (32u << 20)
#define COMPACT_STEP 32 /* writes of a compaction between looks for a batch to journal */

void store_free_op(op_t *op)
{
    if (op->ids) {
        bloom_free(op->ids);
        free(op->ids);
    }
    free(op->doc);
    free(op->joined);
    free(op->error);
    json_decref(op->result);
    store_free_claimed(op);
    free(op);
}

void store_free_ops(op_t *list)
{
    while (list) {
        op_t *next = list->next;
        store_free_op(list);
        list = next;
    }
}

bool store_compaction_due(const store_t *s, int64_t now)
{
    return s->pending &&
           (s->stopping || s->read_wants > s->applied || s->npending >= COMPACT_OPS ||
            s->pending_bytes >= COMPACT_BYTES ||
            now - s->pending_since_ns >= s->compact_ms * 1000000);
}

/* Waits on s->cv until there is work, a compaction is due, or the idle
 * check's second has passed (then nonzero). The deadline is computed again
 * after each wake-up: the loop signals when it journals the first pending
 * write itself (store.c). Called with mu. */
static int wait_for_work(store_t *s)
{
    int64_t now = clock_mono_ns(), idle = now + (int64_t)IDLE_CHECK_MS * 1000000;
    while (!s->head && !s->stopping && !s->compacting && !store_compaction_due(s, now)) {
        int64_t until = idle;
        if (s->pending && s->pending_since_ns + s->compact_ms * 1000000 < until)
            until = s->pending_since_ns + s->compact_ms * 1000000;
        struct timespec ts = { (time_t)(until / 1000000000), (long)(until % 1000000000) };
        if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT && until == idle)
            return !s->pending;
        now = clock_mono_ns();
    }
    return 0;
}

static void idle_check(store_t *s)
{
    char why[sizeof s->lost_why];
    if (!atomic_load(&s->dead) && s->ops->check_file(s->conn, why, sizeof why) != 0)
        store_file_lost(s, why);
}

/* The database statements' timings, for store_figures(). Called with mu. */
static void publish_statements(store_t *s)
{
    static const store_statement_t writes[] = { STORE_ST_PUT, STORE_ST_DELETE, STORE_ST_QUEUE,
                                                STORE_ST_PURGE, STORE_ST_COMMIT };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++)
        s->fig.statement_seconds[writes[i]] = s->st_private[writes[i]];
}

/* Hands ops back to the loop, which frees them and answers any callback
 * (store_notify() after unlocking wakes it). They leave the index of
 * unapplied writes first, since the database has them now (or never will:
 * the store is dead); a later write of the same job, indexed since, stays.
 * Called with mu. */
static void hand_back(store_t *s, op_t *first, op_t *last)
{
    for (op_t *op = first; op; op = op->next) {
        const char *id = store_op_id(op);
        uint64_t h = id ? store_op_hash(op, id) : 0;
        if (id && hmap_get_h(&s->pending_ids, id, h) == op)
            hmap_del_h(&s->pending_ids, id, h);
    }
    store_done_append(s, first, last);
}

/* The journal's batch written, retried until it is: nothing in it has
 * been acknowledged, and nothing after it may be. */
static void commit_retrying(store_t *s)
{
    for (int attempt = 0;; attempt++) {
        char why[256];
        s->injected = false;
        store_fault_delay(s);
        int rc = store_injected_failure(s) ? -1 : journal_commit(s->journal, why, sizeof why);
        if (rc == 0) {
            if (!atomic_load(&s->healthy))
                log_info("store recovered", LOG_I("attempts", attempt + 1));
            store_set_health(s, true, NULL);
            return;
        }
        store_set_health(s, false, why);
        pthread_mutex_lock(&s->mu);
        s->fig.failed_commits++;
        pthread_mutex_unlock(&s->mu);
        log_error("journal commit failed; will retry", LOG_S("error", why),
                  LOG_I("attempt", attempt + 1));
        store_backoff(attempt);
    }
}

/* Whether a timed compaction may carry new jobs past it (carry.c):
 * nothing waits for the database, the store is well, no fault seam is on.
 * Called with mu. */
static bool may_carry(const store_t *s)
{
    return s->journal && !s->stopping && s->read_wants <= s->applied &&
           s->npending < COMPACT_OPS && s->pending_bytes < COMPACT_BYTES &&
           atomic_load(&s->healthy) && s->faults.commit_fail_ms <= 0;
}

/* The carried jobs' copies are journaled (carry.c) before the compaction
 * can commit the generation that held them; they stay pending. Meanwhile
 * the loop journals nothing (writer_owns), so no later write of theirs
 * lands before them. */
static void journal_carried(store_t *s, op_t *carried, op_t *carried_last)
{
    commit_retrying(s);
    pthread_mutex_lock(&s->mu);
    store_add_pending(s, carried, carried_last);
    s->writer_owns = false;
    pthread_mutex_unlock(&s->mu);
}

/* Everything pending into the database (timed: but new jobs may be
 * carried past it, carry.c). New writes go to the journal's other file
 * from here on (journal.h), so that batches may go on being journaled
 * while this transaction runs: by the loop (`os` durability), or by this
 * thread between the compaction's steps (compaction_step). Once it
 * commits, the generation it closed is applied and its file free, even if
 * every write in it was carried. A lost database stops compactions, which
 * leaves that generation on disk to be replayed. */
static void compaction_start(store_t *s, bool timed)
{
    if (atomic_load(&s->dead))
        return;
    pthread_mutex_lock(&s->mu);
    CHECK(!timed || !s->writer_owns);
    timed = timed && may_carry(s);
    op_t *first = s->pending, *last = s->pending_tail, *carried = NULL, *carried_last = NULL;
    s->pending = s->pending_tail = NULL;
    s->npending = s->pending_bytes = 0;
    uint64_t gen = first && s->journal ? journal_rotate(s->journal) : 0;
    uint64_t upto = last ? last->seq : 0;
    size_t ncarried = timed ? store_carry(s, &first, &last, &carried, &carried_last) : 0;
    if (ncarried) {
        upto = carried->seq - 1; /* the database lacks it and what follows it (reads) */
        s->writer_owns = true;
        s->fig.carried += ncarried;
    }
    pthread_mutex_unlock(&s->mu);
    if (carried)
        journal_carried(s, carried, carried_last);
    if (!gen && !first)
        return;
    store_apply_start(&s->compaction, first, true, gen);
    s->compaction_last = last;
    s->compaction_upto = upto;
    s->compacting = true;
}

/* Whether a batch waits to be journaled: a step of the compaction then
 * ends, so that an acknowledgement never waits for a whole transaction. */
static bool batch_waiting(store_t *s)
{
    pthread_mutex_lock(&s->mu);
    bool waiting = s->head != NULL && !s->stopping;
    pthread_mutex_unlock(&s->mu);
    return waiting;
}

/* What a purge of the batch just committed asked for (backend.h:
 * history_upkeep): after the commit, so that no transaction of this node
 * holds a lock its DDL waits for; before the batch is handed back, so that
 * a FLUSH answered finds its jobs gone. Its first purge's result says how
 * many partitions went. */
static void upkeep(store_t *s, op_t *batch)
{
    s->upkeep_due = false;
    int dropped = 0;
    if (s->ops->history_upkeep(s->conn, &s->upkeep, &dropped) != 0) {
        char why[512];
        store_last_error(s, why, sizeof why);
        log_warn("history's partitions: upkeep failed; the next sweep tries again",
                 LOG_S("error", why));
    }
    for (op_t *op = batch; op; op = op->next)
        if (op->kind == OP_PURGE && op->result) {
            json_object_set_new(op->result, "dropped", json_integer(dropped));
            break; /* counted once, on the batch's first purge */
        }
}

/* Runs the compaction under way COMPACT_STEP writes at a time until it
 * commits, or (yield) until a batch waits. */
static void compaction_step(store_t *s, bool yield)
{
    while (s->compacting) {
        if (!store_apply_step(s, &s->compaction, COMPACT_STEP)) {
            if (yield && batch_waiting(s))
                return;
            continue;
        }
        s->compacting = false;
        op_t *first = s->compaction.batch, *last = s->compaction_last;
        if (s->upkeep_due)
            upkeep(s, first);
        pthread_mutex_lock(&s->mu);
        if (s->compaction_upto > s->applied)
            s->applied = s->compaction_upto;
        publish_statements(s);
        if (first)
            hand_back(s, first, last);
        pthread_cond_broadcast(&s->read_cv); /* reads waiting for these writes */
        pthread_mutex_unlock(&s->mu);
        store_notify(s);
    }
}

/* Everything pending into the database, now: the compaction under way
 * first, then what came since. */
static void compact(store_t *s)
{
    compaction_step(s, false);
    compaction_start(s, false);
    compaction_step(s, false);
}

/* The bytes are copied under the lock and read outside it: the writer
 * may free the op as soon as the lock is let go. */
int store_pending_doc(store_t *s, const char *id, json_t **doc, size_t *len)
{
    *doc = NULL;
    *len = 0;
    pthread_mutex_lock(&s->mu);
    const op_t *op = hmap_get(&s->pending_ids, id);
    int rc = op ? 1 : 0;
    char *copy = NULL;
    store_doc_t d = { 0 };
    if (op && op->kind == OP_PUT) {
        const store_row_t *r = &op->row;
        size_t nq = strlen(r->queue) + 1, nt = strlen(r->type) + 1;
        if ((copy = malloc(r->doc_len + nq + nt))) {
            memcpy(copy, r->doc, r->doc_len);
            memcpy(copy + r->doc_len, r->queue, nq);
            memcpy(copy + r->doc_len + nq, r->type, nt);
            d = (store_doc_t){ .doc = copy, .len = r->doc_len, .id = id,
                               .queue = copy + r->doc_len, .type = copy + r->doc_len + nq,
                               .created_at = r->created_at };
        } else {
            rc = -1;
        }
    }
    pthread_mutex_unlock(&s->mu);
    if (copy && !(*doc = store_doc_json(&d)))
        rc = -1;
    *len = d.len;
    free(copy);
    return rc;
}

void store_add_pending(store_t *s, op_t *batch, op_t *last)
{
    if (!s->pending)
        s->pending_since_ns = clock_mono_ns();
    for (op_t *op = batch; op; op = op->next) {
        s->npending++;
        s->pending_bytes += sizeof *op + (op->doc ? op->row.doc_len : 0);
    }
    store_ops_append(&s->pending, &s->pending_tail, batch, last);
}

/* The batch into the journal, retried until it is written: nothing in it
 * has been acknowledged, and nothing after it may be. 0, or -1 when the
 * journal cannot take it (out of memory): the caller applies it directly. */
static int journal_batch(store_t *s, op_t *batch)
{
    for (op_t *op = batch; op; op = op->next)
        if (store_record_write(s->journal, op) != 0) {
            journal_discard(s->journal);
            return -1;
        }
    commit_retrying(s);
    return 0;
}

static void pending_locked(store_t *s, op_t *batch, op_t *last)
{
    pthread_mutex_lock(&s->mu);
    store_add_pending(s, batch, last);
    pthread_mutex_unlock(&s->mu);
}

bool store_has_purge(const op_t *batch)
{
    for (; batch; batch = batch->next)
        if (batch->kind == OP_PURGE)
            return true;
    return false;
}

/* The journal file was deleted or replaced: what it held is pending, so
 * the database takes it all now, and a new journal begins. */
static bool journal_lost(store_t *s)
{
    char why[1200];
    if (journal_check(s->journal, why, sizeof why) == 0)
        return false;
    log_error("journal file lost: everything it held goes to the database now",
              LOG_S("error", why));
    return true;
}

static void recreate_journal(store_t *s)
{
    char err[1200];
    pthread_mutex_lock(&s->mu);
    int rc = journal_recreate(s->journal, err, sizeof err);
    pthread_mutex_unlock(&s->mu);
    if (rc != 0)
        log_error("cannot recreate the journal; will try again", LOG_S("error", err));
}

/* One batch made durable: journaled (then pending), or applied directly.
 * false: it could not be (applying what was pending found the database
 * lost, so nothing commits any more) and the batch is still the caller's.
 * A loss found by the batch's own commit is found after it: the rescue
 * that writes the database back then holds it (apply.c). */
static bool durable(store_t *s, op_t *batch, op_t *last)
{
    bool direct = !s->journal || store_has_purge(batch);
    bool lost = !direct && journal_lost(s);
    if (direct || lost || journal_batch(s, batch) != 0) {
        compact(s); /* a purge reads the rows that pending writes would leave */
        if (atomic_load(&s->dead))
            return false;
        pending_locked(s, batch, last);
        compact(s);
        if (lost)
            recreate_journal(s);
    } else {
        pending_locked(s, batch, last);
    }
    return true;
}

/* After durable(): the batch may be back with the loop by now, so only
 * what was counted before. */
static void record_figures(store_t *s, uint64_t n, uint64_t last_seq, double secs)
{
    if (s->slow_commit_ms && secs * 1e3 > (double)s->slow_commit_ms)
        log_warn("slow commit", LOG_D("duration_ms", secs * 1e3), LOG_I("batch", n));
    pthread_mutex_lock(&s->mu);
    histogram_observe(&s->fig.commit_seconds, secs);
    histogram_observe(&s->fig.batch_size, (double)n);
    s->committed = last_seq;
    s->writer_owns = false;
    pthread_mutex_unlock(&s->mu);
    store_notify(s);
}

/* A batch that cannot be made durable (the store is dead): back to the
 * loop, where store_dispatch fails its waiters; `committed` does not move. */
static void hand_back_failed(store_t *s, op_t *batch, op_t *last)
{
    pthread_mutex_lock(&s->mu);
    for (op_t *op = batch; op; op = op->next)
        if (op->cb && !op->error) /* a purge: its callback learns why */
            op->error = strdup(s->last_error);
    hand_back(s, batch, last);
    s->writer_owns = false;
    pthread_mutex_unlock(&s->mu);
    store_notify(s);
}

void *store_writer_main(void *arg)
{
    store_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        if (wait_for_work(s) != 0) { /* a quiet second: is the file still there? */
            pthread_mutex_unlock(&s->mu);
            idle_check(s);
            continue;
        }
        op_t *batch = s->head, *last = s->tail;
        s->head = s->tail = NULL;
        s->writer_owns = batch != NULL; /* the loop journals nothing until it is done */
        bool stopping = s->stopping, due = store_compaction_due(s, clock_mono_ns());
        pthread_mutex_unlock(&s->mu);
        if (batch && atomic_load(&s->dead)) {
            hand_back_failed(s, batch, last);
        } else if (batch) {
            uint64_t n = 0, last_seq = last->seq;
            for (op_t *op = batch; op; op = op->next)
                n++;
            int64_t t0 = clock_mono_ns();
            atomic_store(&s->batch_since_ns, t0);
            bool done = durable(s, batch, last);
            atomic_store(&s->batch_since_ns, 0);
            if (done)
                record_figures(s, n, last_seq, (double)(clock_mono_ns() - t0) / 1e9);
            else
                hand_back_failed(s, batch, last);
        }
        if (stopping && !batch)
            compact(s);
        else if (due && !s->compacting)
            compaction_start(s, true);
        compaction_step(s, true);
        if (stopping && !batch && (!s->pending || atomic_load(&s->dead)))
            break; /* stopping, and everything is in the database (or cannot be) */
    }
    atomic_store(&s->writer_exited, true);
    return NULL;
}
