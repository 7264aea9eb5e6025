/* The job table and the transitions that do not involve a lessee. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/check.h"

static const char *job_key(const void *ej) { return eng_id(ej); }

engine_t *engine_new(const engine_hooks_t *hooks, const engine_options_t *opt)
{
    engine_t *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->h = *hooks;
    e->opt = *opt;
    if (e->opt.finished_in_memory < 1)
        e->opt.finished_in_memory = 1; /* the job just finished must outlive the call */
    pset_init(&e->jobs, job_key);
    hmap_init(&e->queues);
    hmap_init(&e->types);
    hmap_init(&e->keys);
    e->gate_wake = INT64_MAX;
    heap_init(&e->timers);
    heap_init(&e->waiter_deadlines);
    list_init(&e->waiters);
    list_init(&e->finished);
    list_init(&e->graveyard);
    e->reported_deadline = INT64_MAX;
    sbuf_init(&e->pack, 256);
    e->parked.cap = e->opt.thawed_max > 0 ? (size_t)e->opt.thawed_max : 256;
    if (!(e->parked.v = calloc(e->parked.cap, sizeof *e->parked.v))) {
        sbuf_free(&e->pack);
        free(e);
        return NULL;
    }
    return e;
}


void engine_free(engine_t *e)
{
    if (!e)
        return;
    ENG_ENTER(e); /* reaps the graveyard */
    eng_shared_free(e);
    ejob_t *ej;
    for (size_t i = 0; (ej = pset_next(&e->jobs, &i));) {
        eng_free_rec(e, ej);
        free(ej);
    }
    pset_free(&e->jobs);
    hmap_free_values(&e->queues, eng_queue_free);
    eng_gates_free(e);
    heap_free(&e->timers);
    heap_free(&e->waiter_deadlines);
    sbuf_free(&e->pack);
    free(e->parked.v);
    free(e);
}

/* Collect, then free: hmap cannot delete while iterating. */
static void sweep_queues(engine_t *e)
{
    size_t n = hmap_len(&e->queues), m = 0;
    equeue_t **unused = n ? calloc(n, sizeof *unused) : NULL;
    const char *k;
    void *v;
    for (size_t i = 0; unused && hmap_next(&e->queues, &i, &k, &v);)
        if (eng_queue_unused(e, v))
            unused[m++] = v;
    for (size_t i = 0; i < m; i++) {
        hmap_del(&e->queues, unused[i]->name);
        e->bytes -= ENG_QUEUE_BYTES(unused[i]->name);
        eng_queue_free(unused[i]);
    }
    free(unused);
    e->queues_swept = hmap_len(&e->queues);
}

equeue_t *eng_queue(engine_t *e, const char *name)
{
    equeue_t *q = hmap_get(&e->queues, name);
    if (q)
        return q;
    if (hmap_len(&e->queues) >= 2 * e->queues_swept + 64)
        sweep_queues(e);
    q = calloc(1, sizeof *q);
    if (!q || !(q->name = strdup(name))) {
        free(q);
        return NULL;
    }
    hmap_init(&q->lanes);
    list_init(&q->active);
    q->gate.name = q->name;
    if (hmap_put(&e->queues, q->name, q) != 0) {
        eng_queue_free(q);
        return NULL;
    }
    e->bytes += ENG_QUEUE_BYTES(q->name);
    return q;
}

void eng_set_state(engine_t *e, ejob_t *ej, job_state_t s)
{
    job_t *j = eng_thawed(ej);
    job_state_t was = j->state;
    eng_count_out(ej, was);
    j->state = s;
    eng_count_in(ej, s);
    if (was == JOB_RUNNING && s != JOB_RUNNING)
        eng_gates_running(e, ej, -1);
    else if (s == JOB_RUNNING && was != JOB_RUNNING)
        eng_gates_running(e, ej, +1);
}

void eng_persist(engine_t *e, ejob_t *ej, job_event_t ev)
{
    job_t *j = eng_thawed(ej);
    ENG_HOOK(e, e->h.persist(e->h.ud, j, ev));
    j->stored = true;
    j->stored_state = (unsigned char)j->state;
    eng_account(e, ej); /* after the hook: writing it filled the text caches */
    if (eng_shared(e) && j->state != JOB_RUNNING) {
        /* Given back to the database: no timer of it may fire and no
         * lessee take it in what is left of this call (a retry due at
         * once would otherwise be leased here with no claim). */
        eng_release_later(e, ej, 0);
        eng_unlink(e, ej);
    }
}

void eng_account(engine_t *e, ejob_t *ej)
{
    /* A frozen job: its record, bytes and id, its table slot and malloc's
     * headers. */
    size_t est = !eng_frozen(ej) ? job_memory_estimate(ej->rec.job)
                 : sizeof *ej + 48 + strlen(eng_id(ej)) + 1 +
                       (ej->spilled ? ENG_SPILL_HEAD : ej->frozen_len);
    uint32_t cap = (1u << 28) - 1, now = est > cap ? cap : (uint32_t)est;
    e->bytes += (int64_t)now - (int64_t)ej->bytes;
    ej->bytes = now;
}

void eng_drop(engine_t *e, ejob_t *ej)
{
    eng_release_cancel(e, ej);
    eng_unlink(e, ej);
    pset_del(&e->jobs, eng_id(ej));
    eng_count_out(ej, eng_state(ej));
    e->bytes -= (int64_t)ej->bytes;
    eng_unpark(e, ej);
    eng_free_rec(e, ej);
    free(ej);
}

int64_t engine_memory_bytes(const engine_t *e) { return e->bytes; }

void engine_set_finished_budget(engine_t *e, int64_t bytes)
{
    ENG_ENTER(e);
    e->opt.finished_budget_bytes = bytes;
    eng_settle(e);
}

/* "In no heap and no list", as both views of the shared bytes read it:
 * heap idx 0 (it overlays the list's prev) and a list node pointing at
 * itself. */
_Static_assert(offsetof(heap_node_t, idx) == offsetof(list_node_t, prev),
               "a job's timer idx must overlay its link's prev");
_Static_assert(sizeof(ejob_t) <= 56, "ejob_t grew past malloc's 64-byte chunk");
static void rest(ejob_t *ej)
{
    ej->link.prev = NULL;
    ej->link.next = &ej->link;
}

/* Takes a job out of whatever structure holds it for its state. */
void eng_unlink(engine_t *e, ejob_t *ej)
{
    job_state_t s = eng_state(ej);
    if (s == JOB_PENDING || s == JOB_RETRYING || s == JOB_RUNNING) {
        heap_remove(&e->timers, &ej->timer);
    } else if (list_linked(&ej->link)) {
        if (s == JOB_QUEUED) {
            eng_lane_remove(ej);
        } else {
            e->nfinished--;
            list_remove(&ej->link);
        }
    }
    rest(ej);
}

void eng_make_ready(engine_t *e, ejob_t *ej)
{
    eng_unlink(e, ej);
    eng_set_state(e, ej, JOB_QUEUED);
    eng_lane_push(e, ej);
    e->ready_added = true;
}

void eng_schedule(engine_t *e, ejob_t *ej, job_state_t state, int64_t at)
{
    eng_unlink(e, ej);
    eng_set_state(e, ej, state);
    eng_thawed(ej)->run_at = at;
    if (heap_push(&e->timers, &ej->timer, at) != 0) /* out of memory: run it now */
        eng_make_ready(e, ej);
}

static void clear_lease(job_t *j)
{
    j->lease_id[0] = '\0';
    free(j->lease_worker);
    j->lease_worker = NULL;
    j->lease_expires_at = 0;
}

void eng_finish(engine_t *e, ejob_t *ej, job_state_t state, job_event_t ev)
{
    eng_unlink(e, ej);
    job_t *j = eng_thawed(ej);
    eng_set_state(e, ej, state);
    eng_lane_detach(e, ej);
    j->finished_at = j->updated_at = eng_now(e);
    clear_lease(j);
    list_push_back(&e->finished, &ej->link);
    e->nfinished++;
    eng_persist(e, ej, ev);
}

ejob_t *eng_adopt(engine_t *e, job_t *job)
{
    ejob_t *ej = calloc(1, sizeof *ej);
    if (!ej)
        return NULL;
    ej->rec.job = job;
    rest(ej);
    ej->queue = eng_queue(e, job->queue);
    if (!ej->queue || (!job_state_terminal(job->state) && eng_lane_attach(e, ej) != 0)) {
        free(ej);
        return NULL;
    }
    if (pset_add(&e->jobs, ej) != 0) {
        eng_lane_detach(e, ej);
        free(ej);
        return NULL;
    }
    eng_count_in(ej, job->state);
    if (job->state == JOB_RUNNING)
        eng_gates_running(e, ej, +1);
    return ej;
}

static void place_loaded(engine_t *e, ejob_t *ej)
{
    job_t *j = eng_thawed(ej);
    switch (j->state) {
    case JOB_PENDING:
    case JOB_RETRYING: eng_schedule(e, ej, j->state, j->run_at); break;
    case JOB_QUEUED: eng_make_ready(e, ej); break;
    case JOB_RUNNING:
        if (heap_push(&e->timers, &ej->timer, j->lease_expires_at) != 0)
            eng_expire_lease(e, ej);
        break;
    default:
        list_push_back(&e->finished, &ej->link);
        e->nfinished++;
        break;
    }
}

void engine_load(engine_t *e, job_t *job)
{
    ENG_ENTER(e);
    ejob_t *had = pset_get(&e->jobs, job->id);
    if (had && eng_shared(e) && had->releasing) /* read again: it serves the next call too */
        eng_release_keep(e, had, 1);
    ejob_t *ej = had ? NULL : eng_adopt(e, job);
    if (!ej) {
        job_free(job);
        return;
    }
    /* Shared mode: a job read from the database is there to be read or
     * acted on by the next call, never leased or timed (that takes a claim:
     * engine_claimed, engine_take_over): it sits in no lane, no timer. */
    if (eng_shared(e))
        eng_release_later(e, ej, 1);
    else
        place_loaded(e, ej);
    eng_account(e, ej);
    eng_park(e, ej);
    eng_settle(e);
}

void engine_load_queue(engine_t *e, const char *queue, bool paused)
{
    ENG_ENTER(e);
    equeue_t *q = eng_queue(e, queue);
    if (q)
        q->paused = paused;
}

ejob_t *eng_find(engine_t *e, const char *id, problem_t *p)
{
    ejob_t *ej = pset_get(&e->jobs, id);
    if (!ej) {
        problem_set(p, ERR_NOT_FOUND, "id", "no job with id %s", id);
        return NULL;
    }
    if (!eng_job(e, ej)) {
        eng_thaw_problem(p, id);
        return NULL;
    }
    eng_park(e, ej); /* whatever the call does with it */
    return ej;
}

const job_t *engine_get(engine_t *e, const char *id)
{
    ejob_t *ej = pset_get(&e->jobs, id);
    if (!ej || !eng_job(e, ej))
        return NULL;
    eng_park(e, ej);
    /* Recently read: evicted last (a copy read in shared mode is on no list). */
    if (job_state_terminal(ej->rec.job->state) && list_linked(&ej->link)) {
        list_remove(&ej->link);
        list_push_back(&e->finished, &ej->link);
    }
    return ej->rec.job;
}

size_t engine_job_count(const engine_t *e) { return pset_len(&e->jobs); }
uint64_t engine_deletes(const engine_t *e) { return e->deletes; }

err_t engine_enqueue_check(engine_t *e, const job_t *job, problem_t *p)
{
    ejob_t *ej = pset_get(&e->jobs, job->id);
    if (!ej)
        return ERR_OK;
    const job_t *had = eng_job(e, ej);
    if (!had)
        return eng_thaw_problem(p, job->id);
    eng_park(e, ej);
    if (!job_same_spec(had, job))
        return problem_set(p, ERR_CONFLICT, "id",
                           "job %s already exists with different content", job->id);
    return ERR_OK;
}

err_t engine_enqueue(engine_t *e, job_t *job, bool *created, const job_t **out, problem_t *p)
{
    ENG_ENTER(e);
    err_t err = engine_enqueue_check(e, job, p);
    ejob_t *existing = pset_get(&e->jobs, job->id);
    if (err || existing) {
        *created = false;
        *out = existing && !eng_frozen(existing) ? existing->rec.job : NULL; /* the check thawed it */
        job_free(job);
        return err;
    }
    ejob_t *ej = eng_adopt(e, job);
    if (!ej) {
        job_free(job);
        return problem_set(p, ERR_UNAVAILABLE, "", "out of memory");
    }
    if (job->run_at > eng_now(e))
        eng_schedule(e, ej, JOB_PENDING, job->run_at);
    else
        eng_make_ready(e, ej);
    eng_persist(e, ej, JOB_EV_ENQUEUED);
    if (eng_shared(e))
        e->news = true; /* for this node's waiting lessees too (shared.c) */
    *created = true;
    *out = job;
    eng_park(e, ej);
    eng_settle(e);
    return ERR_OK;
}

err_t engine_cancel(engine_t *e, const char *id, const job_t **out, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = eng_find(e, id, p);
    if (!ej)
        return p->type;
    job_t *j = eng_thawed(ej);
    if (job_state_terminal(j->state))
        return problem_set(p, ERR_CONFLICT, "state", "job %s is already %s", id,
                           job_state_name(j->state));
    if (j->state == JOB_RUNNING) {
        /* The worker learns of it on its next heartbeat; its report settles it. */
        j->cancel_requested = true;
        j->updated_at = eng_now(e);
        eng_persist(e, ej, JOB_EV_UPDATED);
    } else {
        eng_finish(e, ej, JOB_CANCELLED, JOB_EV_CANCELLED);
    }
    *out = j;
    eng_settle(e);
    return ERR_OK;
}

err_t engine_retry(engine_t *e, const char *id, const job_t **out, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = eng_find(e, id, p);
    if (!ej)
        return p->type;
    job_t *j = eng_thawed(ej);
    if (j->state != JOB_FAILED && j->state != JOB_CANCELLED)
        return problem_set(p, ERR_CONFLICT, "state",
                           "only failed or cancelled jobs can be retried; job %s is %s", id,
                           job_state_name(j->state));
    if (eng_lane_attach(e, ej) != 0)
        return problem_set(p, ERR_UNAVAILABLE, "", "out of memory");
    /* A fresh budget of attempts; the error history stays. */
    j->attempts = 0;
    j->cancel_requested = false;
    j->finished_at = 0;
    job_set_result(j, NULL);
    j->run_at = j->updated_at = eng_now(e);
    eng_make_ready(e, ej);
    eng_persist(e, ej, JOB_EV_REQUEUED);
    *out = j;
    eng_settle(e);
    return ERR_OK;
}

err_t engine_delete(engine_t *e, const char *id, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = eng_find(e, id, p);
    if (!ej)
        return p->type;
    job_state_t s = eng_thawed(ej)->state;
    if (!job_state_terminal(s))
        return problem_set(p, ERR_CONFLICT, "state",
                           "only finished jobs can be deleted; job %s is %s (cancel it first)",
                           id, job_state_name(s));
    e->deletes++;
    ENG_HOOK(e, e->h.persist_delete(e->h.ud, eng_id(ej)));
    eng_drop(e, ej);
    return ERR_OK;
}

void engine_forget(engine_t *e, const char *id)
{
    ENG_ENTER(e);
    ejob_t *ej = pset_get(&e->jobs, id);
    if (!ej || !job_state_terminal(eng_state(ej)))
        return;
    e->deletes++;
    eng_drop(e, ej);
}

static void fire_job_timer(engine_t *e, ejob_t *ej)
{
    job_t *j = eng_job(e, ej);
    if (!j) { /* out of memory: look again in a second (a re-key allocates nothing) */
        (void)heap_push(&e->timers, &ej->timer, eng_now(e) + 1000);
        return;
    }
    heap_remove(&e->timers, &ej->timer);
    if (j->state == JOB_RUNNING) {
        eng_expire_lease(e, ej);
        return;
    }
    j->updated_at = eng_now(e);
    eng_make_ready(e, ej);
    eng_persist(e, ej, JOB_EV_UPDATED);
    eng_park(e, ej); /* a lessee may be waiting for it */
}

void engine_tick(engine_t *e)
{
    ENG_ENTER(e);
    int64_t now = eng_now(e);
    heap_node_t *n;
    while ((n = heap_peek(&e->timers)) && n->key <= now)
        fire_job_timer(e, LIST_ENTRY(n, ejob_t, timer));
    if (e->gate_wake <= now) { /* a held lane may have opened: look again */
        e->gate_wake = INT64_MAX;
        e->ready_added = true;
    }
    eng_dispatch(e); /* before expiring waiters: a job due now beats an empty answer */
    while ((n = heap_peek(&e->waiter_deadlines)) && n->key <= now)
        eng_expire_waiter(e, LIST_ENTRY(n, engine_waiter_t, deadline_));
    eng_settle(e);
}

int64_t engine_next_deadline(const engine_t *e)
{
    heap_node_t *a = heap_peek(&e->timers), *b = heap_peek(&e->waiter_deadlines);
    int64_t t = a ? a->key : INT64_MAX;
    if (b && b->key < t)
        t = b->key;
    if (e->opt.shared && e->demand && !list_empty(&e->waiters) && e->claim_at < t)
        t = e->claim_at; /* the next claim for the workers waiting */
    /* Only worth waking for while someone waits for work. */
    return (!list_empty(&e->waiters) && e->gate_wake < t) ? e->gate_wake : t;
}

static void evict_finished(engine_t *e)
{
    if (e->eviction_holds)
        return;
    int64_t budget = e->opt.finished_budget_bytes;
    while (e->nfinished > (size_t)e->opt.finished_in_memory ||
           (budget > 0 && e->bytes > budget && e->nfinished > 1)) {
        eng_drop(e, LIST_ENTRY(list_first(&e->finished), ejob_t, link));
    }
}

void engine_hold_eviction(engine_t *e) { e->eviction_holds++; }

void engine_release_eviction(engine_t *e)
{
    CHECK(e->eviction_holds > 0);
    if (--e->eviction_holds == 0)
        eng_settle(e);
}

void eng_settle(engine_t *e)
{
    if (eng_shared(e))
        eng_shared_settle(e);
    eng_dispatch(e);
    evict_finished(e);
    int64_t d = engine_next_deadline(e);
    if (d != e->reported_deadline) {
        e->reported_deadline = d;
        if (e->h.deadline_changed)
            ENG_HOOK(e, e->h.deadline_changed(e->h.ud, d));
    }
}
