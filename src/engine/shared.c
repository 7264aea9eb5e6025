/* Shared mode (engine.h: engine_options_t.shared): the database holds the
 * jobs, this engine only those its node runs. Jobs given back leave memory
 * at the end of the call; waiting lessees turn into claims, and what the
 * claims bring goes to them or straight back. */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/grow.h"

#define CLAIMS_PER_ROUND 64 /* claims out at once; the rest wait for some to come back */
#define CLAIM_MAX 1000     /* jobs one claim asks for, lessees of the same queues together */

void eng_release_later(engine_t *e, ejob_t *ej, int age)
{
    if (ej->releasing) { /* a copy read before, now written: it goes sooner */
        for (size_t i = 0; i < e->nreleasing; i++)
            if (e->releasing[i].ej == ej && e->releasing[i].age > age)
                e->releasing[i].age = age;
        return;
    }
    struct eng_release *v =
        grow_array(e->releasing, &e->releasing_cap, e->nreleasing, sizeof *v, 16);
    if (!v)
        return; /* it stays in memory, as in single mode: a cache of the database */
    e->releasing = v;
    ej->releasing = 1;
    e->releasing[e->nreleasing++] = (struct eng_release){ ej, age };
}

void eng_release_keep(engine_t *e, ejob_t *ej, int age)
{
    for (size_t i = 0; i < e->nreleasing; i++)
        if (e->releasing[i].ej == ej && e->releasing[i].age < age)
            e->releasing[i].age = age;
}

void eng_release_cancel(engine_t *e, ejob_t *ej)
{
    if (!ej->releasing)
        return;
    ej->releasing = 0;
    for (size_t i = 0; i < e->nreleasing; i++)
        if (e->releasing[i].ej == ej) {
            e->releasing[i] = e->releasing[--e->nreleasing];
            return;
        }
}

/* Out of every structure and the table; the record lives in the graveyard
 * until the next call, for the pointers this one handed out. */
static void release(engine_t *e, ejob_t *ej)
{
    job_state_t s = eng_state(ej);
    eng_count_out(ej, s); /* reads the lane's priority: before the lane goes */
    eng_unlink(e, ej);
    if (s == JOB_RUNNING)
        eng_gates_running(e, ej, -1);
    if (!job_state_terminal(s))
        eng_lane_detach(e, ej);
    pset_del(&e->jobs, eng_id(ej));
    e->bytes -= (int64_t)ej->bytes;
    eng_unpark(e, ej);
    eng_release_cancel(e, ej);
    list_push_back(&e->graveyard, &ej->link);
}

static void release_due(engine_t *e)
{
    size_t keep = 0;
    for (size_t i = 0; i < e->nreleasing; i++) {
        struct eng_release r = e->releasing[i];
        if (pset_get(&e->jobs, eng_id(r.ej)) != r.ej) /* discarded meanwhile (graveyard) */
            continue;
        if (eng_state(r.ej) == JOB_RUNNING) { /* claimed again and leased: ours */
            r.ej->releasing = 0;
        } else if (r.age > 0 && e->eviction_holds) {
            e->releasing[keep++] = r; /* a batch still needs what it loaded */
        } else if (r.age > 0) {
            e->releasing[keep++] = (struct eng_release){ r.ej, r.age - 1 };
        } else {
            r.ej->releasing = 0; /* so release() leaves this array alone */
            release(e, r.ej);
        }
    }
    e->nreleasing = keep;
}

static bool same_queues(const engine_waiter_t *a, const engine_waiter_t *b)
{
    if (a->nqueues != b->nqueues || a->queue_order != b->queue_order)
        return false;
    for (int i = 0; i < a->nqueues; i++)
        if (strcmp(a->queues[i], b->queues[i]) != 0)
            return false;
    return true;
}

/* w's claim, for every lessee waiting without one on the same queues: one
 * statement for all of them (up to CLAIM_MAX jobs), not one each. */
static int coalesce(engine_t *e, engine_waiter_t *w)
{
    int max = w->max;
    w->asked_ = true;
    for (list_node_t *n = w->link_.next; n != &e->waiters && max < CLAIM_MAX; n = n->next) {
        engine_waiter_t *o = LIST_ENTRY(n, engine_waiter_t, link_);
        if (!o->asked_ && same_queues(w, o) && max + o->max <= CLAIM_MAX) {
            o->asked_ = true;
            max += o->max;
        }
    }
    return max;
}

/* The concurrency limits of types, then keys, for claims to carry. */
static int collect_limits(engine_t *e, const hmap_t *gates, int at)
{
    const char *k;
    void *v;
    int n = 0;
    for (size_t i = 0; hmap_next(gates, &i, &k, &v) && n < ENGINE_CLAIM_LIMITS;) {
        const egate_t *g = v;
        if (g->limit.concurrency > 0) {
            e->claim_limited[at + n] = g->name;
            e->claim_limits[at + n++] = g->limit.concurrency;
        }
    }
    return n;
}

static void refresh_limits(engine_t *e)
{
    if (!e->claim_limits_stale)
        return;
    e->claim_ntypes = collect_limits(e, &e->types, 0);
    e->claim_nkeys = collect_limits(e, &e->keys, e->claim_ntypes);
    e->claim_limits_stale = false;
}

/* A claim for every lessee waiting without one, even while others are
 * out: demand that builds meanwhile joins the store's next transaction
 * (its group commit) instead of waiting for the last round to end. */
static void ask(engine_t *e)
{
    e->demand = false;
    refresh_limits(e);
    for (list_node_t *n = e->waiters.next; n != &e->waiters; n = n->next) {
        engine_waiter_t *w = LIST_ENTRY(n, engine_waiter_t, link_);
        if (w->asked_)
            continue;
        if (e->claims_in_flight >= CLAIMS_PER_ROUND) {
            e->demand = true; /* the rest when some come back */
            return;
        }
        int caps[ENGINE_LEASE_MAX];
        CHECK(w->nqueues <= ENGINE_LEASE_MAX); /* both front ends refuse more */
        for (int i = 0; i < w->nqueues; i++) {
            const equeue_t *q = hmap_get(&e->queues, w->queues[i]);
            caps[i] = q ? q->gate.limit.concurrency : 0;
        }
        engine_claim_t c = { w->queues, caps, w->nqueues, w->queue_order, coalesce(e, w),
                             e->claim_limited, e->claim_limits, e->claim_ntypes,
                             e->claim_nkeys };
        e->claims_in_flight++;
        ENG_HOOK(e, e->h.claim(e->h.ud, &c));
    }
}

void eng_shared_settle(engine_t *e)
{
    release_due(e);
    if (e->h.claim && e->demand && !list_empty(&e->waiters) && eng_now(e) >= e->claim_at)
        ask(e);
}

/* A round is over when no claim is out: every lessee still waiting may
 * be asked for again (at claim_at). */
static void round_over(engine_t *e)
{
    for (list_node_t *n = e->waiters.next; n != &e->waiters; n = n->next)
        LIST_ENTRY(n, engine_waiter_t, link_)->asked_ = false;
    e->demand = true;
}

void eng_shared_free(engine_t *e) { free(e->releasing); }

static int64_t poll_delay(engine_t *e)
{
    int64_t poll = e->opt.claim_poll_ms > 0 ? e->opt.claim_poll_ms : 500;
    return poll / 2 + (int64_t)(e->h.rand_unit(e->h.ud) * (double)poll); /* jitter: 0.5-1.5x */
}

/* Lessees that asked once are answered when the round they started is. */
static void answer_once(engine_t *e)
{
    list_node_t *n = e->waiters.next;
    while (n != &e->waiters) {
        engine_waiter_t *w = LIST_ENTRY(n, engine_waiter_t, link_);
        n = n->next;
        if (w->once_) {
            eng_expire_waiter(e, w);
            n = e->waiters.next; /* the callback may have changed the list */
        }
    }
}

/* A job this node now holds, in place of any copy read before. */
static ejob_t *replace(engine_t *e, job_t *job)
{
    ejob_t *old = pset_get(&e->jobs, job->id);
    if (old)
        release(e, old);
    return eng_adopt(e, job);
}

void engine_take_over(engine_t *e, job_t *job)
{
    ENG_ENTER(e);
    ejob_t *ej = job->state == JOB_RUNNING ? replace(e, job) : NULL;
    if (!ej) {
        job_free(job);
        return;
    }
    eng_expire_lease(e, ej);
    eng_settle(e);
}

void engine_claimed(engine_t *e, job_t **jobs, const bool *probe, int n, int asked)
{
    ENG_ENTER(e);
    CHECK(e->claims_in_flight > 0);
    e->claims_in_flight--;
    ejob_t *got[CLAIM_MAX]; /* 8 KB: the loop thread's stack has room */
    bool probes[CLAIM_MAX];
    int ngot = 0;
    for (int i = 0; i < n; i++) {
        job_t *job = jobs[i];
        ejob_t *ej = ngot < CLAIM_MAX && !job_state_terminal(job->state) &&
                             job->state != JOB_RUNNING
                         ? replace(e, job)
                         : NULL;
        if (!ej) { /* out of memory, or a bug: it stays claimed until this node's row goes */
            job_free(job);
            continue;
        }
        job->updated_at = eng_now(e);
        eng_make_ready(e, ej); /* due by the database's clock, whatever ours says */
        probes[ngot] = probe && probe[i];
        if (probes[ngot])
            eng_gates_probe(e, ej);
        got[ngot++] = ej;
    }
    eng_dispatch(e);
    int back = 0;
    for (int i = 0; i < ngot; i++)
        if (eng_state(got[i]) == JOB_QUEUED) { /* no lessee took it: the database's again */
            if (probes[i])
                eng_gates_probe_unused(e, got[i]);
            eng_persist(e, got[i], JOB_EV_UPDATED);
            back++;
        }
    /* Short: nothing more is due, so the next round waits a poll, unless
     * a job was enqueued here since (a claim after its insert finds it). */
    int64_t now = eng_now(e);
    if ((n < asked || back > 0) && !e->news)
        e->claim_at = now + poll_delay(e);
    else
        e->claim_at = now;
    e->news = false;
    if (!e->claims_in_flight) {
        answer_once(e);
        round_over(e);
    } else if (e->claims_in_flight < CLAIMS_PER_ROUND) {
        e->demand = true; /* room for a lessee the cap held back */
    }
    eng_settle(e);
}

void engine_drop(engine_t *e, const char *id)
{
    ENG_ENTER(e);
    ejob_t *ej = pset_get(&e->jobs, id);
    if (ej)
        release(e, ej);
    eng_settle(e);
}

void engine_drop_all(engine_t *e)
{
    ENG_ENTER(e);
    ejob_t *ej;
    for (size_t i = 0; (ej = pset_next(&e->jobs, &i));) {
        release(e, ej);
        i = 0; /* the set changed under the cursor */
    }
    e->nreleasing = 0;
    eng_settle(e);
}

static bool waits_on(const engine_waiter_t *w, const char *const *queues, int n)
{
    for (int i = 0; i < w->nqueues; i++)
        for (int j = 0; j < n; j++)
            if (!strcmp(w->queues[i], queues[j]))
                return true;
    return n == 0;
}

void engine_woken(engine_t *e, const char *const *queues, int n)
{
    ENG_ENTER(e);
    for (list_node_t *l = e->waiters.next; e->h.claim && l != &e->waiters; l = l->next)
        if (waits_on(LIST_ENTRY(l, engine_waiter_t, link_), queues, n)) {
            e->claim_at = eng_now(e);
            e->demand = true;
            e->news = true; /* a claim out now may have read before the job was there */
            break;
        }
    eng_settle(e);
}
