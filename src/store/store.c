/* The store, the loop thread's side of the group-commit writer (queueing,
 * durability waits, hand-back) and its reads; opening, recovery, start and
 * stop are in store_open.c, the store thread itself in writer.c. See
 * store.h. */
#include "store/store_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/check.h"
#include "util/clock.h"
#include "util/grow.h"
#include "util/jsonb.h"
#include "util/log.h"
#include "util/sbuf.h"
#include "util/url.h"

/* Called with mu. */
static void queue_read(store_t *s, op_t *op)
{
    s->reads_queued++;
    store_ops_append(&s->rhead, &s->rtail, op, op);
    pthread_cond_broadcast(&s->read_cv);
}

/* The filter of stored ids starts with a scan of the database by a
 * reader; until it lands, store_may_hold says "maybe" to everything. */
void store_scan_ids(store_t *s)
{
    if (!s->ops->scan_ids)
        return;
    const char *in[4] = { 0 }, *out[4];
    op_t *op = store_new_op(OP_IDS, in, out);
    op->queued_ns = clock_mono_ns();
    pthread_mutex_lock(&s->mu);
    queue_read(s, op);
    pthread_mutex_unlock(&s->mu);
}

bool store_may_hold(const store_t *s, const char *id)
{
    CHECK_LOOP_THREAD();
    return !s->ids_stored || bloom_maybe(s->ids_stored, id) || bloom_maybe(&s->ids_written, id);
}

bool store_id_filter_ready(const store_t *s) { return s->ids_stored != NULL; }

size_t store_id_filter_bytes(const store_t *s)
{
    return bloom_bytes(&s->ids_written) + (s->ids_stored ? bloom_bytes(s->ids_stored) : 0);
}

/* ---- the loop thread's side ---- */

/* Answers every waiter whose write is durable now (or never will be: the
 * store is dead). A waiter's callback may write, and a write may flush
 * (with no kick set) and come back here: the outer call goes on instead. */
static void run_waiters(store_t *s)
{
    if (s->dispatching)
        return;
    s->dispatching = true;
    bool dead = atomic_load(&s->dead);
    while (!list_empty(&s->waiters)) {
        store_waiter_t *w = LIST_ENTRY(list_first(&s->waiters), store_waiter_t, link);
        if (w->seq > s->committed_seen && !dead)
            break;
        list_remove(&w->link);
        w->failed = w->seq > s->committed_seen;
        w->refused = s->nrefused && store_cluster_refused(s, w->seq);
        w->cb(w);
    }
    if (s->nrefused)
        store_cluster_prune(s);
    s->dispatching = false;
}

op_t *store_new_op_n(op_kind_t kind, const char *const *in, const char **out, int nstr)
{
    size_t n = 0, lens[STORE_OP_STRS];
    if (nstr > STORE_OP_STRS)
        abort(); /* a caller's bug: every caller passes a constant */
    for (int i = 0; i < nstr; i++)
        n += lens[i] = in[i] ? strlen(in[i]) + 1 : 0;
    op_t *op = calloc(1, sizeof *op + n);
    if (!op)
        abort(); /* the write path cannot report it; see docs/architecture.md */
    op->kind = kind;
    char *p = op->str;
    for (int i = 0; i < nstr; i++) {
        out[i] = NULL;
        if (!in[i])
            continue;
        memcpy(p, in[i], lens[i]);
        out[i] = p;
        p += lens[i];
    }
    return op;
}

void store_set_kick(store_t *s, void (*kick)(void *ud), void *ud)
{
    s->kick = kick;
    s->kick_ud = ud;
}

/* In `os` durability a batch is durable once write() has it, which costs
 * less than handing it to the store thread and waiting for it to say so
 * (two thread switches and an eventfd a batch): the loop journals it here,
 * while the store thread has nothing queued or in hand, so that order
 * holds, and compactions run beside it (journal_rotate). Anything unusual
 * (a purge, the failure seam, an unhealthy store, a failed or lost write)
 * goes to the store thread, which knows how to retry and say why. Called
 * with mu; false leaves the batch to the caller. */
static bool journal_here(store_t *s, op_t *batch, op_t *last)
{
    if (s->durability != DURABILITY_OS || !s->journal || !s->journal_ready || !s->running ||
        s->head || s->writer_owns || s->stopping || !atomic_load(&s->healthy) ||
        s->faults.commit_fail_ms > 0 || store_has_purge(batch))
        return false;
    int64_t t0 = clock_mono_ns();
    size_t n = 0;
    char why[1200];
    for (op_t *op = batch; op; op = op->next, n++)
        if (store_record_write(s->journal, op) != 0) {
            journal_discard(s->journal);
            return false;
        }
    if (journal_check(s->journal, why, sizeof why) != 0 ||
        journal_commit(s->journal, why, sizeof why) != 0) {
        journal_discard(s->journal);
        return false;
    }
    bool first = !s->pending;
    store_add_pending(s, batch, last);
    int64_t now = clock_mono_ns();
    if (first || store_compaction_due(s, now))
        pthread_cond_signal(&s->cv); /* the writer's deadline starts now */
    histogram_observe(&s->fig.commit_seconds, (double)(now - t0) / 1e9);
    histogram_observe(&s->fig.batch_size, (double)n);
    s->committed = last->seq;
    return true;
}

/* answer: run the waiters the journal write made durable now; else leave
 * them to store_dispatch (the caller is inside something they may call
 * back into). */
static void flush(store_t *s, bool answer)
{
    if (!s->local)
        return;
    op_t *batch = s->local, *last = s->local_tail;
    s->local = s->local_tail = NULL;
    pthread_mutex_lock(&s->mu);
    for (op_t *op = batch; op; op = op->next) {
        const char *id = store_op_id(op);
        if (id && hmap_put_h(&s->pending_ids, id, store_op_hash(op, id), op) != 0)
            s->index_gap_seq = op->seq;
    }
    bool here = journal_here(s, batch, last);
    if (!here) {
        store_ops_append(&s->head, &s->tail, batch, last);
        pthread_cond_signal(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    if (!here)
        return;
    s->committed_seen = last->seq;
    if (answer)
        run_waiters(s);
    else if (!list_empty(&s->waiters) &&
             LIST_ENTRY(list_first(&s->waiters), store_waiter_t, link)->seq <= s->committed_seen)
        store_notify(s); /* they run from store_dispatch */
}

void store_flush(store_t *s) { flush(s, true); }

static uint64_t submit_as(store_t *s, op_t *op, uint64_t seq)
{
    CHECK_LOOP_THREAD();
    op->queued_ns = clock_mono_ns();
    op->seq = seq;
    bool first = !s->local;
    store_ops_append(&s->local, &s->local_tail, op, op);
    if (!s->kick)
        store_flush(s);
    else if (first)
        s->kick(s->kick_ud);
    return op->seq;
}

static uint64_t submit(store_t *s, op_t *op) { return submit_as(s, op, ++s->next_seq); }

void store_submit_unnumbered(store_t *s, op_t *op) { submit_as(s, op, s->next_seq); }

/* Reads skip the write stream: straight to the readers' queue, or, past
 * the bound, straight back with an error. */
static void submit_read(store_t *s, op_t *op)
{
    CHECK_LOOP_THREAD();
    op->queued_ns = clock_mono_ns();
    /* It must see every write queued so far. Those still collecting on the
     * loop reach the writer at this iteration's flush, and the reader waits
     * for them to reach the database; but a point lookup waits for nothing
     * (reader.c), so its writes are handed over, and indexed, first. */
    if (op->kind == OP_GET)
        flush(s, false);
    op->seq = s->next_seq;
    pthread_mutex_lock(&s->mu);
    bool busy = s->reads_queued >= STORE_READS_MAX;
    if (busy) { /* answered from store_dispatch, never from inside this call */
        op->error = strdup(STORE_BUSY);
        store_done_append(s, op, op);
    } else {
        queue_read(s, op);
    }
    pthread_mutex_unlock(&s->mu);
    if (busy)
        store_notify(s);
}

uint64_t store_put_job(store_t *s, const job_t *job, job_event_t ev)
{
    const char *in[5] = { job->id, job->queue, job->type, job_state_name(job->state),
                          job->breaker_key }, *out[5];
    op_t *op = store_new_op_n(OP_PUT, in, out, 5);
    sbuf_t packed;
    sbuf_init(&packed, 192);
    job_pack_args_t args;
    job_pack_at(job, &packed, &args);
    size_t len = packed.len;
    op->doc = sbuf_take(&packed);
    op->ev = ev;
    op->was = job->stored ? job_state_name((job_state_t)job->stored_state) : NULL;
    if (!bloom_maybe(&s->ids_written, job->id)) /* a job writes its id many times */
        bloom_add(&s->ids_written, job->id);
    op->row = (store_row_t){ .id = out[0], .queue = out[1], .type = out[2], .state = out[3],
                             .priority = job->priority, .created_at = job->created_at,
                             .updated_at = job->updated_at, .run_at = job->run_at,
                             .doc = op->doc, .doc_len = len, .args = args, .bkey = out[4] };
    if (s->cluster)
        store_cluster_row(s, op, job);
    return submit(s, op);
}

uint64_t store_delete_job(store_t *s, const char *id)
{
    const char *in[4] = { id }, *out[4];
    op_t *op = store_new_op(OP_DELETE, in, out);
    op->name = out[0];
    if (s->cluster)
        store_cluster_delete(s, op);
    return submit(s, op);
}

uint64_t store_put_queue(store_t *s, const char *name, bool paused)
{
    const char *in[4] = { name }, *out[4];
    op_t *op = store_new_op(OP_QUEUE, in, out);
    op->name = out[0];
    op->paused = paused;
    return submit(s, op);
}

uint64_t store_put_breaker(store_t *s, const char *key, store_breaker_change_t change,
                           int64_t cooldown_ms, int64_t cooldown_max_ms)
{
    if (!s->cluster) /* a single node's breakers live in its memory alone */
        return s->next_seq;
    const char *in[4] = { key }, *out[4];
    op_t *op = store_new_op(OP_BREAKER, in, out);
    op->name = out[0];
    op->change = change;
    op->cooldown_ms = cooldown_ms;
    op->cooldown_max_ms = cooldown_max_ms;
    if (change == STORE_BREAKER_OPEN || change == STORE_BREAKER_REOPEN) {
        s->breakers_open = true;
        s->breakers_gen++;
    }
    return submit(s, op);
}

uint64_t store_last_seq(const store_t *s) { return s->next_seq; }

void store_when_durable(store_t *s, store_waiter_t *w, uint64_t seq)
{
    CHECK_LOOP_THREAD();
    w->seq = seq;
    w->failed = false;
    w->refused = s->nrefused && store_cluster_refused(s, seq);
    if (seq <= s->committed_seen || s->durability == DURABILITY_MEMORY) {
        list_init(&w->link);
        w->cb(w);
        return;
    }
    list_node_t *at = s->waiters.prev; /* keep the list sorted by seq */
    while (at != &s->waiters && LIST_ENTRY(at, store_waiter_t, link)->seq > seq)
        at = at->prev;
    list_push_back(at->next, &w->link);
}

void store_when_durable_now(store_t *s, store_waiter_t *w, uint64_t seq)
{
    if (s->durability == DURABILITY_OS && seq > s->committed_seen)
        flush(s, false);
    store_when_durable(s, w, seq);
}

/* One read for n ids: a batch of explicit ids costs one slot of the read
 * bound, not n, and is answered all at once or not at all. */
static void get_op(store_t *s, const char *const *ids, size_t n, bool many, size_t max_bytes,
                   store_read_cb cb, void *ud)
{
    CHECK_LOOP_THREAD();
    CHECK(n > 0);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(ids[i]) + 1;
    op_t *op = calloc(1, sizeof *op + len);
    if (!op)
        abort(); /* as new_op */
    op->kind = OP_GET;
    char *p = op->str;
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(ids[i]) + 1;
        memcpy(p, ids[i], l);
        p += l;
    }
    op->name = op->str;
    op->nids = n;
    op->many = many;
    op->max_bytes = max_bytes;
    op->cb = cb;
    op->ud = ud;
    submit_read(s, op);
}

void store_get_job(store_t *s, const char *id, store_read_cb cb, void *ud)
{
    get_op(s, &id, 1, false, SIZE_MAX, cb, ud);
}

void store_get_jobs(store_t *s, const char *const *ids, size_t n, size_t max_bytes,
                    store_read_cb cb, void *ud)
{
    get_op(s, ids, n, true, max_bytes, cb, ud);
}

void store_list_jobs(store_t *s, const store_query_t *q, store_read_cb cb, void *ud)
{
    const char *in[7] = { q->queue, q->state, q->type, q->cursor_id, q->text, q->breaker_key,
                          q->worker }, *out[7];
    op_t *op = store_new_op_n(OP_LIST, in, out, 7);
    op->q = *q;
    op->q.queue = out[0];
    op->q.state = out[1];
    op->q.type = out[2];
    op->q.cursor_id = out[3];
    op->q.text = out[4];
    op->q.breaker_key = out[5];
    op->q.worker = out[6];
    op->cb = cb;
    op->ud = ud;
    submit_read(s, op);
}

/* A stats read already queued serves a caller that comes before it is
 * answered, if it will see every write queued before that caller: none
 * was queued since it was, or no reader has taken it yet (it then waits
 * for them too). Statistics on PostgreSQL count every row (a scan), and a
 * dashboard, a scrape and a flood of /v1/stats would each run their own. */
static bool join_stats(store_t *s, op_t *op, store_read_cb cb, void *ud)
{
    struct store_joined *v = grow_array(op->joined, &op->joined_cap, op->njoined, sizeof *v, 4);
    if (!v)
        return false;
    op->joined = v;
    pthread_mutex_lock(&s->mu);
    bool ok = op->seq == s->next_seq || !op->taken;
    if (ok)
        op->seq = s->next_seq;
    pthread_mutex_unlock(&s->mu);
    if (ok)
        op->joined[op->njoined++] = (struct store_joined){ cb, ud };
    return ok;
}

void store_stats(store_t *s, store_read_cb cb, void *ud)
{
    CHECK_LOOP_THREAD();
    if (s->stats_read && join_stats(s, s->stats_read, cb, ud))
        return;
    const char *in[4] = { 0 }, *out[4];
    op_t *op = store_new_op(OP_STATS, in, out);
    op->cb = cb;
    op->ud = ud;
    s->stats_read = op;
    submit_read(s, op);
}

/* The callers that joined a stats read, each with a copy of its result
 * (a caller may keep or change what it is given). */
static void answer_joined(const op_t *op)
{
    for (size_t i = 0; i < op->njoined; i++) {
        json_t *copy = op->result ? json_deep_copy(op->result) : NULL;
        const char *error = op->result && !copy ? "out of memory" : op->error;
        op->joined[i].cb(op->joined[i].ud, copy, error);
        json_decref(copy);
    }
}

void store_breakers(store_t *s, store_read_cb cb, void *ud)
{
    const char *in[4] = { 0 }, *out[4];
    op_t *op = store_new_op(OP_BREAKERS, in, out);
    op->cb = cb;
    op->ud = ud;
    submit_read(s, op);
}

void store_purge(store_t *s, const store_purge_t *p, store_read_cb cb, void *ud)
{
    const char *in[4] = { p->has_cursor ? p->after_id : NULL }, *out[4];
    op_t *op = store_new_op(OP_PURGE, in, out);
    op->purge = *p;
    op->purge.after_id = out[0];
    op->cb = cb;
    op->ud = ud;
    submit(s, op);
}

void store_waiter_cancel(store_waiter_t *w)
{
    CHECK_LOOP_THREAD();
    if (w->link.next && list_linked(&w->link))
        list_remove(&w->link);
}

void store_done_append(store_t *s, op_t *first, op_t *last)
{
    store_ops_append(&s->done, &s->done_tail, first, last);
}

void store_notify(store_t *s)
{
    uint64_t one = 1;
    if (write(s->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        log_error("store notify failed", LOG_S("error", strerror(errno)));
}

int store_notify_fd(const store_t *s) { return s->efd; }

static void ids_scanned(store_t *s, op_t *op)
{
    if (!op->ids) {
        log_warn("the filter of stored ids could not be built: every lookup of an id not "
                 "in memory asks the database", LOG_S("error", op->error ? op->error : "memory"));
        return;
    }
    s->ids_stored = op->ids;
    op->ids = NULL;
    log_info("filter of stored ids ready", LOG_I("bytes", (int64_t)store_id_filter_bytes(s)),
             LOG_D("ms", (double)(clock_mono_ns() - op->queued_ns) / 1e6));
}

void store_dispatch(store_t *s)
{
    CHECK_LOOP_THREAD();
    uint64_t n;
    while (read(s->efd, &n, sizeof n) > 0)
        ;
    pthread_mutex_lock(&s->mu);
    op_t *done = s->done;
    s->done = s->done_tail = NULL;
    s->committed_seen = s->committed;
    pthread_mutex_unlock(&s->mu);
    int64_t now = clock_mono_ns();
    if (s->cluster) {
        store_cluster_done(s, done);
        store_wake_dispatch(s);
    }
    while (done) {
        op_t *next = done->next;
        histogram_observe(&s->roundtrip, (double)(now - done->queued_ns) / 1e9);
        if (done->kind == OP_IDS)
            ids_scanned(s, done);
        if (done == s->stats_read)
            s->stats_read = NULL; /* a caller answered here may read again */
        if (done->cb)
            done->cb(done->ud, done->result, done->error);
        answer_joined(done);
        store_free_op(done);
        done = next;
    }
    run_waiters(s);
}

void store_figures(store_t *s, store_figures_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->fig;
    pthread_mutex_unlock(&s->mu);
    out->roundtrip_seconds = s->roundtrip; /* the caller is the loop thread */
}

void store_quarantine_note(store_t *s, const char *id, const char *why)
{
    CHECK_LOOP_THREAD();
    for (size_t i = 0; i < s->nquarantine; i++)
        if (strcmp(s->quarantine[i].id, id) == 0)
            return;
    s->quarantine_seen++;
    if (s->nquarantine == STORE_QUARANTINE_MAX)
        return;
    if (s->nquarantine % 16 == 0) {
        struct quarantined *q = realloc(s->quarantine, (s->nquarantine + 16) * sizeof *q);
        if (!q)
            return;
        s->quarantine = q;
    }
    struct quarantined *q = &s->quarantine[s->nquarantine++];
    snprintf(q->id, sizeof q->id, "%s", id);
    snprintf(q->why, sizeof q->why, "%.199s", why);
    q->at_ms = clock_now_ms();
}

void store_quarantine_forget(store_t *s, const char *id)
{
    CHECK_LOOP_THREAD();
    for (size_t i = 0; i < s->nquarantine; i++)
        if (strcmp(s->quarantine[i].id, id) == 0) {
            s->quarantine[i] = s->quarantine[--s->nquarantine];
            s->quarantine_seen--;
            return;
        }
}

void store_quarantine_foreach(const store_t *s, store_quarantine_fn fn, void *ud)
{
    for (size_t i = 0; i < s->nquarantine; i++)
        fn(ud, s->quarantine[i].id, s->quarantine[i].why, s->quarantine[i].at_ms);
}

size_t store_quarantine_count(const store_t *s) { return s->quarantine_seen; }

/* How long the store thread has been in its batch, 0 if within bounds. */
static int64_t stalled_ns(const store_t *s)
{
    int64_t since = atomic_load(&s->batch_since_ns);
    int64_t held = since ? clock_mono_ns() - since : 0;
    return held > STORE_STALL_NS ? held : 0;
}

/* In cluster mode, a node whose row may have expired (its last renewal
 * was asked for a TTL ago, by its own clock) acknowledges nothing more. */
bool store_healthy(const store_t *s)
{
    return atomic_load(&s->healthy) && !stalled_ns(s) &&
           (!s->cluster || clock_mono_ns() < s->node_ok_until_ns);
}
bool store_disk_full(const store_t *s) { return atomic_load(&s->disk_full); }

void store_last_error(store_t *s, char *buf, size_t len)
{
    pthread_mutex_lock(&s->mu);
    snprintf(buf, len, "%s", s->last_error);
    pthread_mutex_unlock(&s->mu);
    int64_t stalled = stalled_ns(s);
    if (!buf[0] && stalled)
        snprintf(buf, len, "the store has been committing one batch for %lld s",
                 (long long)(stalled / 1000000000));
    if (!buf[0] && s->cluster && clock_mono_ns() >= s->node_ok_until_ns)
        snprintf(buf, len, "this cluster node's row is not renewed (JOBQ_NODE_TTL)");
}
