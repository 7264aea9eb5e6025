/* Lessees: leasing, long-poll waiters, and the outcomes a lease can have. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/randid.h"

static void start_lease(engine_t *e, ejob_t *ej, const char *worker)
{
    job_t *j = eng_thawed(ej);
    int64_t now = eng_now(e);
    eng_unlink(e, ej);
    eng_set_state(e, ej, JOB_RUNNING);
    eng_gates_leased(e, ej);
    j->attempts++;
    j->started_at = j->updated_at = now;
    j->lease_expires_at = now + j->timeout_ms;
    free(j->lease_worker);
    j->lease_worker = worker ? strdup(worker) : NULL;
    if (randid_hex(j->lease_id, JOB_LEASE_ID_LEN / 2) != 0)
        abort(); /* no kernel randomness: fencing tokens would be guessable */
    if (heap_push(&e->timers, &ej->timer, j->lease_expires_at) != 0)
        abort(); /* cannot track the lease; losing it would strand the job */
    eng_persist(e, ej, JOB_EV_LEASED);
}

static int take(engine_t *e, engine_waiter_t *w, job_t **out)
{
    int n = 0;
    ejob_t *ej;
    while (n < w->max && (ej = eng_next_ready(e, w))) {
        if (!eng_job(e, ej))
            break; /* out of memory: it stays first in line */
        start_lease(e, ej, w->worker);
        out[n++] = ej->rec.job;
    }
    return n;
}

int engine_lease(engine_t *e, engine_waiter_t *w, int64_t wait_ms, job_t **out)
{
    ENG_ENTER(e);
    list_init(&w->link_);
    w->deadline_.idx = 0;
    int n = take(e, w, out);
    /* Shared mode: nothing here is news only once the database says so. */
    w->once_ = eng_shared(e) && e->h.claim && wait_ms <= 0;
    w->asked_ = false;
    if (w->once_)
        wait_ms = ENG_ONCE_WAIT_MS;
    if (n == 0 && wait_ms > 0) {
        list_push_back(&e->waiters, &w->link_);
        if (heap_push(&e->waiter_deadlines, &w->deadline_, eng_now(e) + wait_ms) != 0)
            list_remove(&w->link_); /* out of memory: answer empty now */
        else if (eng_shared(e))
            e->claim_at = eng_now(e), e->demand = true; /* new demand: ask at once */
    }
    eng_settle(e);
    return n;
}

bool engine_waiter_waiting(const engine_waiter_t *w) { return list_linked(&w->link_); }

void engine_waiter_cancel(engine_t *e, engine_waiter_t *w)
{
    if (list_linked(&w->link_))
        list_remove(&w->link_);
    heap_remove(&e->waiter_deadlines, &w->deadline_);
}

void eng_expire_waiter(engine_t *e, engine_waiter_t *w)
{
    engine_waiter_cancel(e, w);
    ENG_HOOK(e, w->cb(w, NULL, 0));
}

void engine_release_waiters(engine_t *e)
{
    ENG_ENTER(e);
    while (!list_empty(&e->waiters))
        eng_expire_waiter(e, LIST_ENTRY(list_first(&e->waiters), engine_waiter_t, link_));
    eng_settle(e);
}

void eng_dispatch(engine_t *e)
{
    if (!e->ready_added)
        return;
    e->ready_added = false;
    job_t *jobs[ENGINE_LEASE_MAX];
    list_node_t *n = e->waiters.next;
    while (n != &e->waiters) {
        engine_waiter_t *w = LIST_ENTRY(n, engine_waiter_t, link_);
        n = n->next;
        if (!eng_next_ready(e, w))
            continue;
        if (w->alive && !w->alive(w)) {
            eng_expire_waiter(e, w);
            n = e->waiters.next; /* the callback may have changed the list */
            continue;
        }
        int got = take(e, w, jobs);
        if (got > 0) {
            engine_waiter_cancel(e, w);
            ENG_HOOK(e, w->cb(w, jobs, got));
        }
    }
}

/* Finds a running job whose lease the caller holds. */
static ejob_t *leased(engine_t *e, const char *id, const char *lease_id, problem_t *p)
{
    ejob_t *ej = eng_find(e, id, p);
    if (!ej)
        return NULL;
    const job_t *j = eng_thawed(ej); /* eng_find thawed it */
    if (j->state != JOB_RUNNING) {
        problem_set(p, ERR_CONFLICT, "lease_id", "job %s is %s, not running", id,
                    job_state_name(j->state));
        return NULL;
    }
    if (!lease_id || strcmp(j->lease_id, lease_id) != 0) {
        problem_set(p, ERR_CONFLICT, "lease_id", "lease_id does not hold job %s's current lease",
                    id);
        return NULL;
    }
    return ej;
}

err_t engine_heartbeat(engine_t *e, const char *id, const char *lease_id, json_t *progress,
                       int64_t extend_ms, const job_t **out, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = leased(e, id, lease_id, p);
    if (!ej)
        return p->type;
    job_t *j = eng_thawed(ej);
    int64_t now = eng_now(e);
    if (progress)
        job_set_progress(j, progress);
    j->lease_expires_at = now + (extend_ms > 0 ? extend_ms : j->timeout_ms);
    j->updated_at = now;
    if (heap_push(&e->timers, &ej->timer, j->lease_expires_at) != 0)
        abort();
    eng_persist(e, ej, JOB_EV_UPDATED);
    *out = j;
    eng_settle(e);
    return ERR_OK;
}

err_t engine_complete(engine_t *e, const char *id, const char *lease_id, json_t *result,
                      const job_t **out, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = leased(e, id, lease_id, p);
    if (!ej)
        return p->type;
    job_set_result(eng_thawed(ej), result);
    eng_gates_outcome(e, ej, ENG_OUTCOME_OK);
    /* Finished work is reported as done even if a cancel arrived meanwhile. */
    eng_finish(e, ej, JOB_COMPLETED, JOB_EV_COMPLETED);
    *out = eng_thawed(ej);
    eng_settle(e);
    return ERR_OK;
}

/* What an attempt's failure says about its dependency: timeouts, outages
 * and internal errors count against the breaker; an answer that refuses
 * the job (not found, invalid, unauthorized, conflict) proves it is up.
 * A lease that ran out says nothing: the worker may simply have died. */
static eng_outcome_t dependency_outcome(err_t type, bool cancelled, bool reported)
{
    if (cancelled || !reported || type == ERR_RATE_LIMITED)
        return ENG_OUTCOME_NONE;
    if (type == ERR_TIMEOUT || type == ERR_UNAVAILABLE || type == ERR_INTERNAL)
        return ENG_OUTCOME_FAILED;
    return ENG_OUTCOME_OK;
}

/* A rate-limited attempt that says when to come back holds its key's lanes
 * until then and spends no attempt: the dependency asked us to slow down.
 * (Without a retry-after it is an ordinary retryable failure.) */
static void hold_attempt(engine_t *e, ejob_t *ej, int64_t delay)
{
    job_t *j = eng_thawed(ej);
    int64_t now = eng_now(e);
    j->attempts--;
    j->lease_id[0] = '\0';
    j->updated_at = now;
    eng_gates_hold(e, ej, now + delay);
    eng_schedule(e, ej, JOB_RETRYING, now + delay);
    eng_persist(e, ej, JOB_EV_RETRIED);
}

/* Records a failed attempt and decides: cancelled, held, retrying or failed. */
static void fail_attempt(engine_t *e, ejob_t *ej, err_t type, const char *message,
                         json_t *context, int retry, int64_t retry_after_ms, bool reported)
{
    job_t *j = eng_thawed(ej);
    int64_t now = eng_now(e);
    job_add_error(j, type, message, context, j->lease_worker, now);
    eng_gates_outcome(e, ej, dependency_outcome(type, j->cancel_requested, reported));
    bool retryable = retry < 0 ? err_retried(type) : retry > 0;
    if (type == ERR_RATE_LIMITED && retry_after_ms > 0 && retry != 0 && !j->cancel_requested) {
        hold_attempt(e, ej, retry_after_ms);
    } else if (j->cancel_requested) {
        eng_finish(e, ej, JOB_CANCELLED, JOB_EV_CANCELLED);
    } else if (retryable && j->attempts <= j->max_retries) {
        int64_t delay = backoff_delay_ms(&j->backoff, j->attempts, e->h.rand_unit(e->h.ud));
        if (retry_after_ms > delay)
            delay = retry_after_ms;
        j->lease_id[0] = '\0';
        j->updated_at = now;
        eng_schedule(e, ej, JOB_RETRYING, now + delay);
        eng_persist(e, ej, JOB_EV_RETRIED);
    } else {
        eng_finish(e, ej, JOB_FAILED, JOB_EV_FAILED);
        if (j->discard_failed)
            eng_discard(e, ej);
    }
}

err_t engine_fail(engine_t *e, const char *id, const char *lease_id, err_t type,
                  const char *message, json_t *context, int retry, const job_t **out,
                  problem_t *p)
{
    return engine_fail_after(e, id, lease_id, type, message, context, retry, 0, out, p);
}

err_t engine_fail_after(engine_t *e, const char *id, const char *lease_id, err_t type,
                        const char *message, json_t *context, int retry, int64_t retry_after_ms,
                        const job_t **out, problem_t *p)
{
    ENG_ENTER(e);
    ejob_t *ej = leased(e, id, lease_id, p);
    if (!ej)
        return p->type;
    fail_attempt(e, ej, type, message, context, retry, retry_after_ms, true);
    *out = eng_thawed(ej); /* parked by eng_find */
    eng_settle(e);
    return ERR_OK;
}

void eng_expire_lease(engine_t *e, ejob_t *ej)
{
    fail_attempt(e, ej, ERR_TIMEOUT, ENGINE_LEASE_EXPIRED, NULL, -1, 0, false);
    eng_park(e, ej);
}

void engine_pause(engine_t *e, const char *queue, bool paused)
{
    ENG_ENTER(e);
    equeue_t *q = eng_queue(e, queue);
    if (!q || q->paused == paused)
        return;
    q->paused = paused;
    ENG_HOOK(e, e->h.persist_queue(e->h.ud, queue, paused));
    if (!paused)
        e->ready_added = true;
    eng_settle(e);
}

bool engine_queue_paused(engine_t *e, const char *queue)
{
    equeue_t *q = hmap_get(&e->queues, queue);
    return q && q->paused;
}

void engine_queue_foreach(engine_t *e, void (*fn)(void *ud, const engine_queue_info_t *q),
                          void *ud)
{
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&e->queues, &i, &k, &v);) {
        equeue_t *q = v;
        engine_queue_info_t info = { .name = q->name, .paused = q->paused };
        memcpy(info.count, q->count, sizeof info.count);
        memcpy(info.by_priority, q->by_priority, sizeof info.by_priority);
        for (list_node_t *n = q->active.next; n != &q->active; n = n->next) {
            elane_t *l = LIST_ENTRY(n, elane_t, active);
            int64_t t = eng_run_at(e, LIST_ENTRY(list_first(&l->ready), ejob_t, link));
            if (t && (!info.oldest_ready_at || t < info.oldest_ready_at))
                info.oldest_ready_at = t;
        }
        fn(ud, &info);
    }
}
