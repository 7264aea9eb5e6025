/* GET /metrics: a snapshot of what the engine, the store, the caches and
 * the listeners hold, rendered by the metrics module (which knows none of
 * them). */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "api/cache.h"
#include "engine/engine.h"
#include "metrics/metrics.h"
#include "net/admit.h"
#include "util/grow.h"

typedef struct queues {
    metrics_queue_t *v;
    size_t n, cap;
} queues_t;

static void add_queue(void *ud, const engine_queue_info_t *q)
{
    queues_t *l = ud;
    metrics_queue_t *v = grow_array(l->v, &l->cap, l->n, sizeof *v, 16);
    if (!v)
        return; /* a scrape short of some queues, rather than none */
    l->v = v;
    metrics_queue_t *m = &l->v[l->n++];
    *m = (metrics_queue_t){ .name = q->name, .paused = q->paused,
                            .oldest_ready_at = q->oldest_ready_at };
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        m->count[s] = q->count[s];
}

static metrics_queue_t *queue_named(queues_t *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].name, name))
            return &l->v[i];
    engine_queue_info_t none = { .name = name };
    size_t n = l->n;
    add_queue(l, &none);
    return l->n > n ? &l->v[n] : NULL;
}

/* Cluster mode: a node's memory holds only the jobs it runs, so the jobs
 * gauges and the oldest job's age are the database's, the ones /v1/stats
 * shows (and the query cache keeps). A queue only the database knows is
 * added (its name lives in stats, which outlives the render). */
static void stored_counts(queues_t *l, json_t *stats)
{
    json_t *oldest = json_object_get(stats, "oldest_ready_at");
    for (size_t i = 0; i < l->n; i++) {
        memset(l->v[i].count, 0, sizeof l->v[i].count);
        l->v[i].oldest_ready_at = 0;
    }
    const char *name;
    json_t *qc;
    json_object_foreach(json_object_get(stats, "queues"), name, qc) {
        metrics_queue_t *m = queue_named(l, name);
        if (m)
            api_counts_of(qc, m->count);
    }
    json_object_foreach(oldest, name, qc) {
        metrics_queue_t *m = queue_named(l, name);
        if (m)
            m->oldest_ready_at = json_integer_value(qc);
    }
}

static void add_breaker(void *ud, const engine_breaker_info_t *b)
{
    if ((unsigned)b->state < METRICS_BREAKER_STATES)
        ((size_t *)ud)[b->state]++;
}

static void store_part(store_t *st, store_figures_t *f, const char **names, metrics_store_t *out)
{
    store_figures(st, f);
    for (int i = 0; i < STORE_ST_COUNT; i++)
        names[i] = store_statement_name((store_statement_t)i);
    *out = (metrics_store_t){ .commit_seconds = f->commit_seconds, .batch_size = f->batch_size,
                              .roundtrip_seconds = f->roundtrip_seconds,
                              .statement_seconds = f->statement_seconds,
                              .statement_names = names, .nstatements = STORE_ST_COUNT,
                              .failed_commits = f->failed_commits,
                              .carried = f->carried,
                              .healthy = store_healthy(st),
                              .quarantined = store_quarantine_count(st) };
}

void api_history_tick(api_t *a, int64_t now_ms)
{
    queues_t q = { 0 };
    engine_queue_foreach(a->engine, add_queue, &q);
    metrics_history_tick(a->metrics, now_ms, q.v, q.n);
    free(q.v);
}

static void metrics_reply(api_call_t *c, json_t *stats)
{
    api_t *a = c->api;
    cache_stats_t cs = { 0 };
    if (a->cache)
        cache_stats(a->cache, &cs);
    const char *breaker_names[METRICS_BREAKER_STATES];
    for (unsigned i = 0; i < METRICS_BREAKER_STATES; i++)
        breaker_names[i] = engine_breaker_state_name((engine_breaker_state_t)i);
    metrics_gauges_t g = {
        .cache_hits = cs.hits, .cache_misses = cs.misses, .cache_evictions = cs.evictions,
        .cache_invalidations = cs.invalidations, .cache_entries = (int64_t)cs.entries,
        .cache_bytes = (int64_t)cs.bytes, .memory_used = api_memory_used(a),
        .memory_limit = a->cfg->memory_limit, .breaker_state_names = breaker_names,
    };
    if (a->admit)
        admit_figures(a->admit, &g.connections);
    queues_t q = { 0 };
    engine_queue_foreach(a->engine, add_queue, &q);
    if (stats)
        stored_counts(&q, stats);
    g.queues = q.v;
    g.nqueues = q.n;
    engine_breaker_foreach(a->engine, add_breaker, g.breakers);
    store_figures_t f;
    const char *names[STORE_ST_COUNT];
    store_part(a->store, &f, names, &g.store);
    char *text = metrics_render(a->metrics, &g);
    free(q.v);
    http_reply_text(c->r, 200, "text/plain; version=0.0.4; charset=utf-8", text);
}

void api_metrics(api_call_t *c)
{
    if (store_clustered(c->api->store))
        api_with_counts(c, metrics_reply);
    else
        metrics_reply(c, NULL);
}
