/* Protection metrics: refused requests and circuit breakers. */
#include <string.h>

#include "metrics/metrics_internal.h"

static const char *const reasons[METRICS_NREASONS] = { METRICS_REJECT_REASONS };

void metrics_rejected(metrics_t *m, const char *reason)
{
    for (int i = 0; i < METRICS_NREASONS; i++)
        if (strcmp(reasons[i], reason) == 0)
            m->rejected[i]++;
}

void metrics_breaker(metrics_t *m, unsigned to)
{
    if (to < METRICS_BREAKER_STATES)
        m->breaker_to[to]++;
}

void metrics_retention(metrics_t *m, uint64_t deleted, int64_t dropped)
{
    m->retention_deleted += deleted;
    m->retention_dropped += dropped > 0 ? (uint64_t)dropped : 0;
}

static void one_label(sbuf_t *s, const char *name, const char *key, const char *value, double v)
{
    sbuf_t lab;
    sbuf_init(&lab, 64);
    metrics_label(&lab, key, value, true);
    metrics_sample(s, name, lab.p, v);
    sbuf_free(&lab);
}

static void one(sbuf_t *s, const char *name, const char *type, const char *help, double v)
{
    metrics_family(s, name, type, help);
    metrics_sample(s, name, NULL, v);
}

static void render_cache_memory(sbuf_t *s, const metrics_gauges_t *g)
{
    one(s, "jobq_cache_hits_total", "counter", "Query cache lookups answered from the cache.",
        (double)g->cache_hits);
    one(s, "jobq_cache_misses_total", "counter", "Query cache lookups that went to the store.",
        (double)g->cache_misses);
    one(s, "jobq_cache_evictions_total", "counter", "Query cache entries pushed out for room.",
        (double)g->cache_evictions);
    one(s, "jobq_cache_invalidations_total", "counter",
        "Query cache entries dropped because a job change made them wrong.",
        (double)g->cache_invalidations);
    one(s, "jobq_cache_entries", "gauge", "Query cache entries held.", (double)g->cache_entries);
    one(s, "jobq_cache_bytes", "gauge", "Query cache bytes held.", (double)g->cache_bytes);
    one(s, "jobq_memory_accounted_bytes", "gauge",
        "Bytes jobq accounts for jobs and caches (estimated).", (double)g->memory_used);
    one(s, "jobq_memory_limit_bytes", "gauge", "JOBQ_MEMORY_LIMIT (0: none).",
        (double)g->memory_limit);
}

static void render_connections(sbuf_t *s, const admit_figures_t *c)
{
    one(s, "jobq_connections_open", "gauge", "Open client connections, every listener.",
        (double)c->open);
    one(s, "jobq_connections_over_limit_total", "counter",
        "Connections past JOBQ_MAX_CONNECTIONS or _PER_CLIENT, answered 503 and closed.",
        (double)c->over);
    one(s, "jobq_connections_refused_total", "counter",
        "Connections closed at once, far past a connection limit.", (double)c->refused);
    one(s, "jobq_connections_timed_out_total", "counter",
        "Connections closed for missing a header, body or reply deadline.",
        (double)c->timed_out);
}

void metrics_render_protection(sbuf_t *s, metrics_t *m, const metrics_gauges_t *g)
{
    render_cache_memory(s, g);
    render_connections(s, &g->connections);
    metrics_family(s, "jobq_rejected_requests_total", "counter",
                   "Requests refused before their handler ran, by reason.");
    for (int i = 0; i < METRICS_NREASONS; i++)
        one_label(s, "jobq_rejected_requests_total", "reason", reasons[i], (double)m->rejected[i]);
    metrics_family(s, "jobq_retention_deleted_jobs_total", "counter",
                   "Finished jobs deleted because they outlived JOBQ_RETAIN_*.");
    metrics_sample(s, "jobq_retention_deleted_jobs_total", NULL, (double)m->retention_deleted);
    metrics_family(s, "jobq_retention_dropped_partitions_total", "counter",
                   "PostgreSQL history partitions dropped whole because retention passed them.");
    metrics_sample(s, "jobq_retention_dropped_partitions_total", NULL,
                   (double)m->retention_dropped);
    if (!g->breaker_state_names)
        return;
    metrics_family(s, "jobq_breakers", "gauge", "Circuit breakers by state (per key: GET /v1/breakers).");
    for (int st = 0; st < METRICS_BREAKER_STATES; st++)
        one_label(s, "jobq_breakers", "state", g->breaker_state_names[st], (double)g->breakers[st]);
    metrics_family(s, "jobq_breaker_transitions_total", "counter",
                   "Circuit breaker state changes, by the state entered.");
    for (int st = 0; st < METRICS_BREAKER_STATES; st++)
        one_label(s, "jobq_breaker_transitions_total", "to", g->breaker_state_names[st],
                  (double)m->breaker_to[st]);
}
