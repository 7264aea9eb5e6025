/* Gates: what jobs sharing a queue, a type or a breaker key have in common
 * (limits, a breaker, a rate-limit hold), whether they hold a lane back,
 * and the settings and reports about them. Lanes and the choice of the next
 * job are in lane.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

/* ---- gates ---- */

egate_t *eng_gate_get(hmap_t *map, const char *name)
{
    egate_t *g = hmap_get(map, name);
    if (g)
        return g;
    g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(name)) || hmap_put(map, g->name, g) != 0) {
        if (g)
            free(g->name);
        free(g);
        return NULL;
    }
    return g;
}

static bool gate_limited(const egate_t *g) { return g->limit.concurrency > 0 || g->limit.rate > 0; }

/* Whether a gate can go: no lanes, no limit, nothing its breaker must
 * remember. The options are for the breaker's window. */
static bool gate_unused(const egate_t *g, const engine_breaker_options_t *o, int64_t now)
{
    return !g->refs && !g->running && !gate_limited(g) && g->held_until <= now &&
           breaker_idle(&g->breaker, o, now);
}

bool eng_queue_unused(engine_t *e, const equeue_t *q)
{
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        if (q->count[s])
            return false;
    return !q->paused && !hmap_len(&q->lanes) && list_empty(&q->active) &&
           gate_unused(&q->gate, &e->opt.breaker, eng_now(e));
}

static void gate_free(hmap_t *map, egate_t *g)
{
    hmap_del(map, g->name);
    free(g->name);
    free(g);
}

/* Frees the gates nothing needs, a map at a time (collect, then free:
 * hmap cannot delete while iterating). */
static void sweep(engine_t *e, hmap_t *map)
{
    int64_t now = eng_now(e);
    size_t n = hmap_len(map), m = 0;
    egate_t **unused = n ? calloc(n, sizeof *unused) : NULL;
    const char *k;
    void *v;
    for (size_t i = 0; unused && hmap_next(map, &i, &k, &v);)
        if (gate_unused(v, &e->opt.breaker, now))
            unused[m++] = v;
    for (size_t i = 0; i < m; i++)
        gate_free(map, unused[i]);
    free(unused);
}

void eng_gate_release(engine_t *e, hmap_t *map, egate_t *g)
{
    if (gate_unused(g, &e->opt.breaker, eng_now(e)))
        gate_free(map, g);
}

/* A key whose breaker still remembers outcomes outlives its jobs; sweeping
 * whenever the map has doubled keeps the cost per new key constant. */
egate_t *eng_key_gate(engine_t *e, const char *name)
{
    if (!hmap_get(&e->keys, name) && hmap_len(&e->keys) >= 2 * e->keys_swept + 64) {
        sweep(e, &e->keys);
        e->keys_swept = hmap_len(&e->keys);
    }
    return eng_gate_get(&e->keys, name);
}

static void lower(int64_t *wake, int64_t t)
{
    if (t < *wake)
        *wake = t;
}

eng_hold_t eng_gate_limits(egate_t *g, int64_t now, int64_t *wake)
{
    if (g->limit.concurrency > 0 && g->running >= g->limit.concurrency)
        return ENG_HOLD_CONCURRENCY;
    const engine_limit_t *l = &g->limit;
    if (l->rate > 0 && !tb_ready(&g->bucket, l->rate, tb_default_depth(l->rate, l->burst), now)) {
        lower(wake, now + tb_wait_ms(&g->bucket, l->rate));
        return ENG_HOLD_RATE;
    }
    return ENG_HOLD_NONE;
}

static void shared(engine_t *e, const char *key, engine_shared_change_t change)
{
    if (e->h.breaker_shared)
        ENG_HOOK(e, e->h.breaker_shared(e->h.ud, key, change));
}

/* In shared mode the database holds an open breaker for the cluster (its
 * claims pass over the breaker's jobs): this node's breaker only counts
 * the failures it sees, so it is closed again here at once, or it would
 * keep holding jobs back after another node's probe closed it. */
static void report(engine_t *e, egate_t *g, engine_breaker_state_t was)
{
    engine_breaker_state_t now = g->breaker.state;
    if (was == now)
        return;
    if (e->h.breaker_changed)
        ENG_HOOK(e, e->h.breaker_changed(e->h.ud, g->name, was, now));
    if (!e->opt.shared)
        return;
    if (now == ENGINE_BREAKER_OPEN) {
        shared(e, g->name, was == ENGINE_BREAKER_HALF_OPEN ? ENGINE_SHARED_REOPEN
                                                           : ENGINE_SHARED_OPEN);
        breaker_reset(&g->breaker);
    } else if (now == ENGINE_BREAKER_CLOSED && was == ENGINE_BREAKER_HALF_OPEN) {
        shared(e, g->name, ENGINE_SHARED_CLOSE);
    }
}

void eng_gates_probe(engine_t *e, ejob_t *ej)
{
    egate_t *k = ej->lane ? ej->lane->key : NULL;
    if (!k || k->breaker.state == ENGINE_BREAKER_HALF_OPEN)
        return;
    engine_breaker_state_t was = k->breaker.state;
    k->breaker.state = ENGINE_BREAKER_HALF_OPEN;
    k->breaker.probes_out = 0;
    if (e->h.breaker_changed)
        ENG_HOOK(e, e->h.breaker_changed(e->h.ud, k->name, was, ENGINE_BREAKER_HALF_OPEN));
}

void eng_gates_probe_unused(engine_t *e, ejob_t *ej)
{
    egate_t *k = ej->lane ? ej->lane->key : NULL;
    if (!k || k->breaker.state != ENGINE_BREAKER_HALF_OPEN || k->breaker.probes_out > 0)
        return;
    breaker_reset(&k->breaker); /* the probe lapses in the database; another claim takes it */
    if (e->h.breaker_changed)
        ENG_HOOK(e, e->h.breaker_changed(e->h.ud, k->name, ENGINE_BREAKER_HALF_OPEN,
                                         ENGINE_BREAKER_CLOSED));
}

static eng_hold_t key_holds(engine_t *e, egate_t *g, int64_t now, int64_t *wake)
{
    if (g->held_until > now) {
        lower(wake, g->held_until);
        return ENG_HOLD_KEY;
    }
    engine_breaker_state_t was = g->breaker.state;
    bool ok = breaker_allows(&g->breaker, &e->opt.breaker, now, wake);
    report(e, g, was);
    return ok ? eng_gate_limits(g, now, wake) : ENG_HOLD_BREAKER;
}

/* What holds a lane back, and which gate: type first, then key. */
eng_hold_t eng_lane_holds(engine_t *e, elane_t *l, int64_t now, int64_t *wake, egate_t **by)
{
    eng_hold_t h = eng_gate_limits(l->type, now, wake);
    *by = l->type;
    if (h == ENG_HOLD_NONE) {
        h = key_holds(e, l->key, now, wake);
        *by = l->key;
    }
    return h;
}

/* Every gate a job passes: its queue's, its type's and its key's. One list,
 * so that counting a running job and taking a rate token cannot disagree
 * about which limits apply (the key's bucket was once left out). */
#define JOB_GATES 3
static void job_gates(ejob_t *ej, egate_t *gates[JOB_GATES])
{
    elane_t *l = ej->lane;
    gates[0] = &ej->queue->gate;
    gates[1] = l ? l->type : NULL;
    gates[2] = l ? l->key : NULL;
}

void eng_gates_running(engine_t *e, ejob_t *ej, int delta)
{
    egate_t *gates[JOB_GATES];
    job_gates(ej, gates);
    for (int i = 0; i < JOB_GATES; i++) {
        if (!gates[i])
            continue;
        gates[i]->running += delta;
        /* A freed slot may let a held lane go. */
        if (delta < 0 && (gates[i]->limit.concurrency > 0 ||
                          gates[i]->breaker.state == ENGINE_BREAKER_HALF_OPEN))
            e->ready_added = true;
    }
}

void eng_gates_leased(engine_t *e, ejob_t *ej)
{
    egate_t *gates[JOB_GATES];
    job_gates(ej, gates);
    for (int i = 0; i < JOB_GATES; i++) {
        const engine_limit_t *l = &gates[i]->limit;
        if (l->rate > 0) /* checked by eng_next_ready just before */
            (void)tb_take(&gates[i]->bucket, l->rate, tb_default_depth(l->rate, l->burst),
                          eng_now(e));
    }
    egate_t *k = ej->lane->key;
    ej->probe = k->breaker.state == ENGINE_BREAKER_HALF_OPEN;
    breaker_leased(&k->breaker);
}

void eng_gates_outcome(engine_t *e, ejob_t *ej, eng_outcome_t o)
{
    egate_t *k = ej->lane->key;
    bool probe = ej->probe;
    ej->probe = false;
    if (o == ENG_OUTCOME_NONE) {
        if (probe && k->breaker.probes_out > 0)
            k->breaker.probes_out--;
        e->ready_added = true;
        return;
    }
    engine_breaker_state_t was = k->breaker.state;
    breaker_record(&k->breaker, &e->opt.breaker, eng_now(e), o == ENG_OUTCOME_FAILED, probe);
    report(e, k, was);
    if (k->breaker.state == ENGINE_BREAKER_CLOSED && was != ENGINE_BREAKER_CLOSED)
        e->ready_added = true;
}

void eng_gates_hold(engine_t *e, ejob_t *ej, int64_t until)
{
    egate_t *k = ej->lane->key;
    if (until > k->held_until)
        k->held_until = until;
    lower(&e->gate_wake, until);
}

/* ---- settings and reports ---- */

void engine_set_options(engine_t *e, const engine_breaker_options_t *b, int64_t aging_ms)
{
    ENG_ENTER(e);
    e->opt.breaker = *b;
    e->opt.aging_ms = aging_ms;
    e->ready_added = true;
    eng_settle(e);
}

static void apply_limit(egate_t *g, const engine_limit_t *l, int64_t now)
{
    bool was_rated = g->limit.rate > 0;
    g->limit = *l;
    if (l->rate > 0 && !was_rated)
        tb_init(&g->bucket, tb_default_depth(l->rate, l->burst), now);
}

int engine_set_limit(engine_t *e, engine_limit_kind_t kind, const char *name,
                     const engine_limit_t *limit)
{
    ENG_ENTER(e);
    egate_t *g;
    if (kind == ENGINE_LIMIT_QUEUE) {
        equeue_t *q = eng_queue(e, name);
        g = q ? &q->gate : NULL;
    } else {
        g = eng_gate_get(kind == ENGINE_LIMIT_TYPE ? &e->types : &e->keys, name);
    }
    if (!g)
        return -1;
    apply_limit(g, limit, eng_now(e));
    e->claim_limits_stale = true;
    if (kind != ENGINE_LIMIT_QUEUE)
        eng_gate_release(e, kind == ENGINE_LIMIT_TYPE ? &e->types : &e->keys, g);
    e->ready_added = true;
    eng_settle(e);
    return 0;
}

void engine_clear_limits(engine_t *e)
{
    ENG_ENTER(e);
    static const engine_limit_t none;
    int64_t now = eng_now(e);
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&e->queues, &i, &k, &v);)
        apply_limit(&((equeue_t *)v)->gate, &none, now);
    hmap_t *maps[2] = { &e->types, &e->keys };
    for (int mi = 0; mi < 2; mi++) {
        for (size_t i = 0; hmap_next(maps[mi], &i, &k, &v);)
            apply_limit(v, &none, now);
        sweep(e, maps[mi]);
    }
    e->claim_limits_stale = true;
    e->ready_added = true;
    eng_settle(e);
}

static void report_limit(engine_limit_kind_t kind, egate_t *g, int64_t now,
                         void (*fn)(void *ud, const engine_limit_info_t *l), void *ud)
{
    if (!gate_limited(g))
        return;
    const engine_limit_t *l = &g->limit;
    if (l->rate > 0)
        (void)tb_ready(&g->bucket, l->rate, tb_default_depth(l->rate, l->burst), now);
    engine_limit_info_t info = { .kind = kind, .name = g->name, .limit = *l,
                                 .running = g->running, .queued = g->queued,
                                 .tokens = l->rate > 0 ? g->bucket.tokens : 0 };
    fn(ud, &info);
}

void engine_limit_foreach(engine_t *e, void (*fn)(void *ud, const engine_limit_info_t *l),
                          void *ud)
{
    int64_t now = eng_now(e);
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&e->queues, &i, &k, &v);)
        report_limit(ENGINE_LIMIT_QUEUE, &((equeue_t *)v)->gate, now, fn, ud);
    for (size_t i = 0; hmap_next(&e->types, &i, &k, &v);)
        report_limit(ENGINE_LIMIT_TYPE, v, now, fn, ud);
    for (size_t i = 0; hmap_next(&e->keys, &i, &k, &v);)
        report_limit(ENGINE_LIMIT_KEY, v, now, fn, ud);
}

const char *engine_breaker_state_name(engine_breaker_state_t s)
{
    return s == ENGINE_BREAKER_OPEN ? "open" : s == ENGINE_BREAKER_HALF_OPEN ? "half_open"
                                                                            : "closed";
}

void engine_breaker_foreach(engine_t *e, void (*fn)(void *ud, const engine_breaker_info_t *b),
                            void *ud)
{
    int64_t now = eng_now(e), wake = INT64_MAX;
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&e->keys, &i, &k, &v);) {
        egate_t *g = v;
        engine_breaker_state_t was = g->breaker.state;
        breaker_allows(&g->breaker, &e->opt.breaker, now, &wake); /* open -> half-open due? */
        report(e, g, was);
        breaker_t *b = &g->breaker;
        engine_breaker_info_t info = {
            .key = g->name, .state = b->state, .consecutive_failures = b->consecutive,
            .failures = b->failures, .successes = b->successes, .opened_at = b->opened_at,
            .next_probe_at = b->state == ENGINE_BREAKER_OPEN ? b->probe_at : 0,
            .cooldown_ms = b->cooldown_ms ? b->cooldown_ms : e->opt.breaker.cooldown_ms,
            .held_until = g->held_until > now ? g->held_until : 0,
            .probes_in_flight = b->probes_out, .queued = g->queued,
        };
        breaker_window(b, &e->opt.breaker, now, &info.window_failures, &info.window_total);
        fn(ud, &info);
    }
}

err_t engine_breaker_reset(engine_t *e, const char *key, problem_t *p)
{
    ENG_ENTER(e);
    egate_t *g = hmap_get(&e->keys, key);
    if (e->opt.shared) /* the cluster's breaker, whatever this node remembers */
        shared(e, key, ENGINE_SHARED_RESET);
    if (!g && e->opt.shared)
        return ERR_OK;
    if (!g)
        return problem_set(p, ERR_NOT_FOUND, "key", "no breaker with key %s", key);
    engine_breaker_state_t was = g->breaker.state;
    breaker_reset(&g->breaker);
    g->held_until = 0;
    report(e, g, was);
    eng_gate_release(e, &e->keys, g);
    e->ready_added = true;
    eng_settle(e);
    return ERR_OK;
}

static void free_gate(void *v)
{
    free(((egate_t *)v)->name);
    free(v);
}

void eng_gates_free(engine_t *e)
{
    hmap_free_values(&e->types, free_gate);
    hmap_free_values(&e->keys, free_gate);
}
