/*
 * Graceful degradation under memory pressure. jobq accounts the bytes it
 * holds for jobs (engine) and query results (cache) against
 * JOBQ_MEMORY_LIMIT. Past 80% of it, enqueues are shed lowest priority
 * first: background at 80%, low at 85%, normal at 90%, high at 95%, and
 * critical only at the limit itself, where ready also fails. Finished jobs
 * and cache entries are dropped long before (they are in the store).
 */
#include <stdio.h>

#include "api/api_internal.h"
#include "api/cache.h"
#include "engine/engine.h"
#include "metrics/metrics.h"

int64_t api_memory_used(const api_t *api)
{
    return engine_memory_bytes(api->engine) + (api->cache ? cache_bytes(api->cache) : 0);
}

bool api_shed(api_call_t *c, int priority, const char *field)
{
    int64_t limit = c->api->cfg->memory_limit;
    if (limit <= 0)
        return false;
    int64_t used = api_memory_used(c->api);
    if ((double)used < job_shed_level(priority) * (double)limit)
        return false;
    problem_t p;
    problem_set(&p, ERR_UNAVAILABLE, field, "jobq is short of memory (%lld of %lld bytes held): "
                "%s jobs are refused until workers catch up", (long long)used, (long long)limit,
                job_priority_name(priority));
    http_add_header(c->r, "Retry-After", "5");
    metrics_rejected(c->api->metrics, "overloaded");
    api_reply_problem(c, &p);
    return true;
}

bool api_memory_full(const api_t *api)
{
    return api->cfg->memory_limit > 0 && api_memory_used(api) >= api->cfg->memory_limit;
}
