/* The route table: method + path pattern -> handler. A "{name}" segment
 * captures that path segment; the pattern doubles as the metrics label. */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"
#include "api/guard.h"
#include "metrics/metrics.h"
#include "util/clock.h"

typedef struct route {
    const char *method, *pattern;
    api_handler_fn fn;
    guard_access_t access;
} route_t;

#define R ACCESS_READ
#define P ACCESS_PRODUCE
#define W ACCESS_WORK
#define A ACCESS_ADMIN
static const route_t routes[] = {
    { "POST", "/v1/jobs", api_enqueue, P },
    { "POST", "/v1/jobs/batch", api_enqueue_batch, P },
    { "POST", "/v1/jobs/bulk", api_bulk_post, P },
    { "GET", "/v1/bulk", api_bulk_list, R },
    { "GET", "/v1/bulk/{id}", api_bulk_get, R },
    { "POST", "/v1/bulk/{id}/cancel", api_bulk_cancel_post, P },
    { "GET", "/v1/jobs", api_list_jobs, R },
    { "GET", "/v1/jobs/{id}", api_get_job, R },
    { "DELETE", "/v1/jobs/{id}", api_delete, A },
    { "POST", "/v1/jobs/{id}/cancel", api_cancel, P },
    { "POST", "/v1/jobs/{id}/retry", api_retry, P },
    { "POST", "/v1/jobs/{id}/heartbeat", api_heartbeat, W },
    { "POST", "/v1/jobs/{id}/complete", api_complete, W },
    { "POST", "/v1/jobs/{id}/fail", api_fail, W },
    { "POST", "/v1/lease", api_lease, W },
    { "POST", "/v1/ack", api_ack, W },
    { "GET", "/v1/queues", api_queues, R },
    { "POST", "/v1/queues/{name}/pause", api_pause, A },
    { "POST", "/v1/queues/{name}/resume", api_resume, A },
    { "GET", "/v1/breakers", api_breakers, R },
    { "POST", "/v1/breakers/{key}/reset", api_breaker_reset, A },
    { "GET", "/v1/stats", api_stats, R },
    { "GET", "/v1/cache", api_cache, R },
    { "GET", "/v1/limits", api_limits, R },
    { "GET", "/v1/workers", api_workers, R },
    { "POST", "/v1/workers/{id}/quiet", api_worker_quiet, A },
    { "POST", "/v1/workers/{id}/terminate", api_worker_terminate, A },
    { "GET", "/v1/perf", api_perf, R },
    { "GET", "/v1/history", api_history, R },
    { "GET", "/v1/events", api_events, R },
    { "GET", "/v1/session", api_session_get, ACCESS_PUBLIC },
    { "POST", "/v1/session", api_session_post, ACCESS_PUBLIC },
    { "DELETE", "/v1/session", api_session_delete, ACCESS_PUBLIC },
    { "GET", "/v1/quarantine", api_quarantine, A },
    { "GET", "/health/live", api_health_live, ACCESS_PUBLIC },
    { "GET", "/health/ready", api_health_ready, ACCESS_PUBLIC },
    { "GET", "/health", api_health, ACCESS_PUBLIC },
    { "GET", "/metrics", api_metrics, R },
};
#undef R
#undef P
#undef W
#undef A

/* Matches path against pattern, storing "{...}" segments as request params. */
static bool match(const char *pattern, const char *path, http_req_t *r)
{
    int nparam = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n > 512)
                return false;
            if (r) {
                char seg[513];
                memcpy(seg, path, n);
                seg[n] = '\0';
                http_set_param(r, nparam, seg);
            }
            nparam++;
            path += n;
            pattern += strcspn(pattern, "}");
            if (*pattern)
                pattern++;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return *pattern == '\0' && *path == '\0';
}

/* Keys, roles and rate limits; a refusal has been answered and counted. */
static bool admitted(api_call_t *c, guard_access_t need)
{
    static const char *const reasons[] = { "", "unauthorized", "forbidden", "rate_limited" };
    guard_verdict_t v = guard_admit(c->api->guard, c->r, need, clock_now_ms());
    if (v != GUARD_OK)
        metrics_rejected(c->api->metrics, reasons[v]);
    return v == GUARD_OK;
}

void api_route(void *ud, http_req_t *r)
{
    api_call_t *c = api_call(r, ud);
    if (!c)
        return;
    const char *method = http_method(r), *path = http_path(r);
    /* The method first: a path is matched only against its own method's
     * routes (1.4 k instructions a request when every pattern was tried). */
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (strcmp(routes[i].method, method) != 0 || !match(routes[i].pattern, path, NULL))
            continue;
        http_set_route(r, routes[i].pattern);
        if (!admitted(c, routes[i].access))
            return;
        match(routes[i].pattern, path, r);
        routes[i].fn(c);
        return;
    }
    char allow[128] = "";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!match(routes[i].pattern, path, NULL))
            continue;
        size_t n = strlen(allow);
        snprintf(allow + n, sizeof allow - n, "%s%s", n ? ", " : "", routes[i].method);
    }
    if (allow[0]) {
        problem_t p;
        problem_set(&p, ERR_VALIDATION, "method", "%s is not allowed on %s (allowed: %s)",
                    method, path, allow);
        p.status = 405;
        http_add_header(r, "Allow", allow);
        api_reply_problem(c, &p);
        return;
    }
    api_reply_error(c, ERR_NOT_FOUND, "path", "no such endpoint");
}
