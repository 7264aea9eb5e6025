/* Lanes of ready jobs, one per (queue, priority, type, breaker key), and
 * the choice of the next job to lease across them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

#define KEY_SEP '\x1f' /* cannot occur in names (job_name_valid) */

/* ---- lanes ---- */

static const char *key_of(const job_t *j) { return j->breaker_key ? j->breaker_key : j->type; }

static void lane_free(engine_t *e, elane_t *l)
{
    hmap_del(&l->queue->lanes, l->name);
    e->bytes -= ENG_LANE_BYTES(l->name);
    l->type->refs--;
    l->key->refs--;
    eng_gate_release(e, &e->types, l->type);
    eng_gate_release(e, &e->keys, l->key);
    free(l->name);
    free(l);
}

static elane_t *lane_new(engine_t *e, equeue_t *q, const job_t *j, char *name)
{
    elane_t *l = calloc(1, sizeof *l);
    egate_t *t = eng_gate_get(&e->types, j->type);
    egate_t *k = t ? eng_key_gate(e, key_of(j)) : NULL;
    if (!l || !k || !(l->name = strdup(name)) || hmap_put(&q->lanes, l->name, l) != 0) {
        if (l)
            free(l->name);
        free(l);
        if (t)
            eng_gate_release(e, &e->types, t);
        if (k)
            eng_gate_release(e, &e->keys, k);
        return NULL;
    }
    e->bytes += ENG_LANE_BYTES(l->name);
    l->queue = q;
    l->type = t;
    l->key = k;
    t->refs++;
    k->refs++;
    l->priority = j->priority;
    list_init(&l->ready);
    list_init(&l->active);
    return l;
}

/* priority, type and key, separated: put together by hand, since every
 * enqueue makes one (snprintf was 1.4 k instructions of it). Names are
 * at most JOB_NAME_MAX and the priority one digit (0-4). */
static void lane_name(char *out, const job_t *j)
{
    const char *key = key_of(j);
    size_t nt = strlen(j->type), nk = strlen(key);
    *out++ = (char)('0' + j->priority);
    *out++ = KEY_SEP;
    memcpy(out, j->type, nt);
    out += nt;
    *out++ = KEY_SEP;
    memcpy(out, key, nk + 1);
}

int eng_lane_attach(engine_t *e, ejob_t *ej)
{
    const job_t *j = eng_thawed(ej);
    char name[2 * JOB_NAME_MAX + 8];
    CHECK(j->priority >= 0 && j->priority < JOB_PRIORITIES && strlen(j->type) <= JOB_NAME_MAX &&
          strlen(key_of(j)) <= JOB_NAME_MAX);
    lane_name(name, j);
    elane_t *l = hmap_get(&ej->queue->lanes, name);
    if (!l && !(l = lane_new(e, ej->queue, j, name)))
        return -1;
    l->refs++;
    ej->lane = l;
    return 0;
}

void eng_lane_detach(engine_t *e, ejob_t *ej)
{
    elane_t *l = ej->lane;
    if (!l)
        return;
    ej->lane = NULL;
    if (--l->refs == 0)
        lane_free(e, l);
}

void eng_lane_push(engine_t *e, ejob_t *ej)
{
    elane_t *l = ej->lane;
    ej->seq = ++e->ready_seq;
    list_push_back(&l->ready, &ej->link);
    if (!list_linked(&l->active))
        list_push_back(&l->queue->active, &l->active);
    l->key->queued++;
}

void eng_lane_remove(ejob_t *ej)
{
    elane_t *l = ej->lane;
    list_remove(&ej->link);
    l->key->queued--;
    if (list_empty(&l->ready))
        list_remove(&l->active);
}

/* ---- choosing ---- */

static int effective_priority(engine_t *e, const ejob_t *ej, int64_t now)
{
    int p = ej->lane->priority;
    int64_t run_at = e->opt.aging_ms > 0 ? eng_run_at(e, ej) : 0;
    if (e->opt.aging_ms > 0 && now > run_at) {
        int64_t levels = (now - run_at) / e->opt.aging_ms;
        p = levels >= p ? 0 : p - (int)levels;
    }
    return p;
}

ejob_t *eng_next_ready(engine_t *e, const engine_waiter_t *w)
{
    int64_t now = eng_now(e);
    ejob_t *best = NULL;
    int best_p = JOB_PRIORITIES, best_q = 0;
    for (int i = 0; i < w->nqueues; i++) {
        equeue_t *q = hmap_get(&e->queues, w->queues[i]);
        if (!q || q->paused || list_empty(&q->active) ||
            eng_gate_limits(&q->gate, now, &e->gate_wake) != ENG_HOLD_NONE)
            continue;
        for (list_node_t *n = q->active.next; n != &q->active; n = n->next) {
            elane_t *l = LIST_ENTRY(n, elane_t, active);
            egate_t *by;
            if (eng_lane_holds(e, l, now, &e->gate_wake, &by) != ENG_HOLD_NONE)
                continue;
            ejob_t *ej = LIST_ENTRY(list_first(&l->ready), ejob_t, link);
            int p = effective_priority(e, ej, now);
            /* Strict (effective) priority; ties to the queue listed first,
             * then to the job that became ready first. */
            if (!best || p < best_p || (p == best_p && i == best_q && ej->seq < best->seq))
                best = ej, best_p = p, best_q = i;
        }
        if (best && w->queue_order)
            break; /* the first listed queue with a ready job wins */
    }
    return best;
}

const char *engine_blocked_by(engine_t *e, const job_t *job, char *buf, size_t len)
{
    ejob_t *ej = pset_get(&e->jobs, job->id);
    if (!ej || eng_frozen(ej) || ej->rec.job != job || job->state != JOB_QUEUED || !ej->lane)
        return NULL;
    int64_t now = eng_now(e), wake = INT64_MAX;
    static const char *const what[] = { "", "concurrency", "rate", "breaker", "held" };
    equeue_t *q = ej->queue;
    eng_hold_t h;
    egate_t *by;
    if (q->paused)
        snprintf(buf, len, "paused:%s", q->name);
    else if ((h = eng_gate_limits(&q->gate, now, &wake)) != ENG_HOLD_NONE)
        snprintf(buf, len, "%s:queue:%s", what[h], q->name);
    else if ((h = eng_lane_holds(e, ej->lane, now, &wake, &by)) == ENG_HOLD_NONE)
        return NULL;
    else if (h == ENG_HOLD_CONCURRENCY || h == ENG_HOLD_RATE)
        snprintf(buf, len, "%s:%s:%s", what[h], by == ej->lane->type ? "type" : "key", by->name);
    else
        snprintf(buf, len, "%s:%s", what[h], by->name);
    return buf;
}

static void free_lane(void *v)
{
    free(((elane_t *)v)->name);
    free(v);
}

void eng_queue_free(void *v)
{
    equeue_t *q = v;
    hmap_free_values(&q->lanes, free_lane);
    free(q->name);
    free(q);
}

