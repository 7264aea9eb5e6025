/* What the server does when the engine or the HTTP server reports
 * something: engine changes become store writes, cache invalidations,
 * metrics and log lines; finished requests become the access log. */
#include "server/app.h"
#include "server/spill.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/randid.h"

static int64_t hook_now(void *ud)
{
    (void)ud;
    return clock_now_ms();
}

static double hook_rand(void *ud)
{
    (void)ud;
    return randid_unit();
}

/* One line per lifecycle event. What goes wrong (failed, retried, lease
 * expired, cancelled) is info; the routine path (enqueued, leased,
 * completed, heartbeats) is debug: at info it cost 14% of the memory-mode
 * benchmark, against a 5% budget (docs/performance.md). Failures carry
 * their error; retries their next run time. */
static void log_job(const job_t *job, job_event_t ev)
{
    bool routine = ev == JOB_EV_UPDATED || ev == JOB_EV_ENQUEUED ||
                   ev == JOB_EV_LEASED || ev == JOB_EV_COMPLETED ||
                   ev == JOB_EV_REQUEUED;
    log_level_t level = routine ? LOG_DEBUG : LOG_INFO;
    if (!log_enabled(level))
        return;
    json_t *last = json_array_get(job->errors, json_array_size(job->errors) - 1);
    bool failure = ev == JOB_EV_FAILED || ev == JOB_EV_RETRIED;
    char next[32] = "";
    if (ev == JOB_EV_RETRIED)
        clock_format_rfc3339(job->run_at, next, sizeof next);
    log_emit(level, "job",
             (const log_field_t[]){
                 LOG_S("event", job_event_name(ev)), LOG_S("job_id", job->id),
                 LOG_S("queue", job->queue), LOG_S("type", job->type),
                 LOG_S("state", job_state_name(job->state)), LOG_I("attempt", job->attempts),
                 LOG_S("worker", job->lease_worker),
                 LOG_S("error_type",
                       failure ? json_string_value(json_object_get(last, "type")) : NULL),
                 LOG_S("error", failure ? json_string_value(json_object_get(last, "message")) : NULL),
                 LOG_S("next_run_at", next[0] ? next : NULL), LOG_END_ });
}

static void hook_persist(void *ud, const job_t *job, job_event_t ev)
{
    app_t *a = ud;
    store_put_job(a->store, job, ev);
    if (a->cache)
        cache_touch(a->cache, job->queue);
    int64_t now = clock_now_ms();
    metrics_job(a->metrics, job, ev, now);
    workers_job(a->workers, job, ev, now);
    api_events_job(&a->api, job, ev);
    log_job(job, ev);
}

static void hook_delete(void *ud, const char *id)
{
    app_t *a = ud;
    store_delete_job(a->store, id);
    if (a->cache)
        cache_touch(a->cache, NULL);
    log_info("job", LOG_S("event", "deleted"), LOG_S("job_id", id));
}

static void hook_queue(void *ud, const char *queue, bool paused)
{
    app_t *a = ud;
    store_put_queue(a->store, queue, paused);
    log_info(paused ? "queue paused" : "queue resumed", LOG_S("queue", queue));
}

static void hook_breaker(void *ud, const char *key, engine_breaker_state_t from,
                         engine_breaker_state_t to)
{
    app_t *a = ud;
    metrics_breaker(a->metrics, to);
    api_events_breaker(&a->api, key, from, to);
    log_emit(to == ENGINE_BREAKER_OPEN ? LOG_WARN : LOG_INFO, "breaker",
             (const log_field_t[]){ LOG_S("event", engine_breaker_state_name(to)),
                                    LOG_S("breaker_key", key),
                                    LOG_S("from", engine_breaker_state_name(from)), LOG_END_ });
}

static void hook_deadline(void *ud, int64_t deadline) { app_arm_engine_timer(ud, deadline); }

static int64_t hook_spill_write(void *ud, const void *bytes, size_t n)
{
    app_t *a = ud;
    return a->spill ? spill_write(a->spill, bytes, n) : -1;
}

static int hook_spill_read(void *ud, int64_t off, void *buf, size_t n)
{
    app_t *a = ud;
    if (spill_read(a->spill, off, buf, n) == 0)
        return 0;
    log_error("cannot read a job back from the spill file", LOG_I("offset", off));
    return -1;
}

static void hook_spill_free(void *ud, int64_t off, size_t n)
{
    app_t *a = ud;
    spill_free(a->spill, off, n);
}

void app_engine_hooks(app_t *a, engine_hooks_t *h)
{
    *h = (engine_hooks_t){ .ud = a, .now_ms = hook_now, .rand_unit = hook_rand,
                           .persist = hook_persist, .persist_delete = hook_delete,
                           .persist_queue = hook_queue, .deadline_changed = hook_deadline,
                           .breaker_changed = hook_breaker, .spill_write = hook_spill_write,
                           .spill_read = hook_spill_read, .spill_free = hook_spill_free,
                           .claim = a->cfg.cluster ? app_cluster_claim : NULL,
                           .breaker_shared = a->cfg.cluster ? app_cluster_breaker : NULL };
}

void app_on_http_done(void *ud, const http_req_t *r, double seconds)
{
    app_t *a = ud;
    metrics_http(a->metrics, http_route(r), http_method(r), http_status(r), seconds);
    perf_request(a->perf, http_route(r), http_method(r), http_status(r), http_request_id(r),
                 seconds, clock_now_ms());
    bool slow = seconds * 1e3 > (double)a->cfg.slow_request_ms;
    log_level_t level = slow ? LOG_WARN : LOG_INFO;
    if (!log_enabled(level))
        return;
    char client[64];
    http_client(r, client, sizeof client);
    log_emit(level, slow ? "slow request" : "request",
             (const log_field_t[]){ LOG_S("request_id", http_request_id(r)),
                                    LOG_S("method", http_method(r)), LOG_S("route", http_route(r)),
                                    LOG_S("path", http_path(r)), LOG_I("status", http_status(r)),
                                    LOG_I("bytes", http_reply_bytes(r)),
                                    LOG_D("duration_ms", seconds * 1e3), LOG_S("client", client),
                                    LOG_S("api_key", http_principal(r)[0] ? http_principal(r) : NULL),
                                    LOG_END_ });
}
