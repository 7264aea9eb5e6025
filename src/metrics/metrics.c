/* Recording: per-queue job counters and histograms, per-route HTTP latency. */
#include "metrics/metrics_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

metrics_t *metrics_new(const char *version)
{
    metrics_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    snprintf(m->version, sizeof m->version, "%s", version);
    hmap_init(&m->queues);
    hmap_init(&m->routes);
    return m;
}

static void free_queue(void *v)
{
    history_free(((mqueue_t *)v)->history);
    free(((mqueue_t *)v)->name);
    free(v);
}

static void free_route(void *v)
{
    free(((mroute_t *)v)->key);
    free(v);
}

void metrics_free(metrics_t *m)
{
    if (!m)
        return;
    hmap_free_values(&m->queues, free_queue);
    hmap_free_values(&m->routes, free_route);
    history_free(m->all);
    free(m);
}

static mqueue_t *queue_new(metrics_t *m, const char *name)
{
    mqueue_t *q = calloc(1, sizeof *q);
    if (!q || !(q->name = strdup(name)) || hmap_put(&m->queues, q->name, q) != 0) {
        if (q)
            free(q->name);
        free(q);
        return NULL;
    }
    histogram_init(&q->exec, histogram_seconds, histogram_seconds_n);
    histogram_init(&q->wait, histogram_seconds, histogram_seconds_n);
    return q;
}

static mqueue_t *queue_find(metrics_t *m, const char *name)
{
    mqueue_t *q = hmap_get(&m->queues, name);
    if (q)
        return q;
    if (hmap_len(&m->queues) < METRICS_QUEUES_MAX)
        return queue_new(m, name);
    q = hmap_get(&m->queues, METRICS_OTHER_QUEUES); /* the table holds one more at most */
    return q ? q : queue_new(m, METRICS_OTHER_QUEUES);
}

mqueue_t *metrics_queue_of(metrics_t *m, const char *name)
{
    if (m->last_queue && !strcmp(m->last_queue->name, name))
        return m->last_queue;
    mqueue_t *q = queue_find(m, name);
    if (q)
        m->last_queue = q;
    return q;
}

void metrics_job(metrics_t *m, const job_t *job, job_event_t ev, int64_t now_ms)
{
    mqueue_t *q = metrics_queue_of(m, job->queue);
    if (!q || ev >= JOB_EV_COUNT)
        return;
    q->events[ev]++;
    if (ev == JOB_EV_LEASED)
        histogram_observe(&q->wait, (double)(now_ms - job->run_at) / 1e3);
    if (ev == JOB_EV_COMPLETED || ev == JOB_EV_FAILED) {
        int64_t sec = now_ms / 1000;
        msecond_t *slot = &q->ring[sec % WINDOW_SECONDS];
        if (slot->second != sec)
            *slot = (msecond_t){ .second = sec };
        if (ev == JOB_EV_COMPLETED)
            slot->completed++;
        else
            slot->failed++;
    }
    /* These end a running attempt; a cancellation may not, so it is left out. */
    if ((ev == JOB_EV_COMPLETED || ev == JOB_EV_FAILED || ev == JOB_EV_RETRIED) &&
        job->started_at)
        histogram_observe(&q->exec, (double)(now_ms - job->started_at) / 1e3);
}

static size_t recent_slot(const char *route, const char *method, int status)
{
    uintptr_t h = (uintptr_t)route >> 3;
    h ^= (uintptr_t)status * 31u ^ (uintptr_t)(unsigned char)method[0] * 131u;
    return (size_t)(h % METRICS_RECENT_ROUTES);
}

void metrics_http(metrics_t *m, const char *route, const char *method, int status,
                  double seconds)
{
    size_t at = recent_slot(route, method, status);
    mroute_t *hit = m->recent_routes[at];
    if (hit && hit->route == route && hit->status == status &&
        strncmp(hit->method, method, sizeof hit->method - 1) == 0 &&
        strlen(method) < sizeof hit->method) {
        histogram_observe(&hit->h, seconds);
        return;
    }
    char key[160];
    snprintf(key, sizeof key, "%s %.10s %d", route, method, status);
    mroute_t *r = hmap_get(&m->routes, key);
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r || !(r->key = strdup(key)) || hmap_put(&m->routes, r->key, r) != 0) {
            if (r)
                free(r->key);
            free(r);
            return;
        }
        r->route = route; /* static strings from the router */
        snprintf(r->method, sizeof r->method, "%.10s", method);
        r->status = status;
        histogram_init(&r->h, histogram_seconds, histogram_seconds_n);
    }
    m->recent_routes[at] = r;
    histogram_observe(&r->h, seconds);
}

static void add_queue(const mqueue_t *q, int window_s, int64_t now_ms, metrics_window_t *out,
                      histogram_t *exec)
{
    int64_t now_s = now_ms / 1000;
    for (int i = 0; i < WINDOW_SECONDS; i++) {
        const msecond_t *slot = &q->ring[i];
        if (slot->second > now_s - window_s && slot->second <= now_s) {
            out->completed += slot->completed;
            out->failed += slot->failed;
        }
    }
    for (int i = 0; i <= q->exec.nbounds; i++)
        exec->counts[i] += q->exec.counts[i];
    exec->count += q->exec.count;
    exec->sum += q->exec.sum;
    if (q->exec.max > exec->max)
        exec->max = q->exec.max;
}

void metrics_window(metrics_t *m, const char *queue, int window_s, int64_t now_ms,
                    metrics_window_t *out)
{
    *out = (metrics_window_t){ 0 };
    if (window_s > WINDOW_SECONDS)
        window_s = WINDOW_SECONDS;
    histogram_t exec;
    histogram_init(&exec, histogram_seconds, histogram_seconds_n);
    const char *k;
    void *v;
    if (queue) {
        mqueue_t *q = hmap_get(&m->queues, queue);
        if (q)
            add_queue(q, window_s, now_ms, out, &exec);
    } else {
        for (size_t i = 0; hmap_next(&m->queues, &i, &k, &v);)
            add_queue(v, window_s, now_ms, out, &exec);
    }
    out->exec_count = exec.count;
    out->exec_avg_ms = exec.count ? exec.sum * 1e3 / (double)exec.count : 0;
    out->exec_p95_ms = histogram_quantile(&exec, 0.95) * 1e3;
}

json_t *metrics_routes_json(metrics_t *m)
{
    /* Merge the per-status histograms of each route and method. */
    hmap_t merged;
    hmap_init(&merged);
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&m->routes, &i, &k, &v);) {
        mroute_t *r = v;
        char key[160];
        snprintf(key, sizeof key, "%s %s", r->route, r->method);
        mroute_t *agg = hmap_get(&merged, key);
        if (!agg) {
            agg = calloc(1, sizeof *agg);
            if (!agg || !(agg->key = strdup(key)) || hmap_put(&merged, agg->key, agg) != 0) {
                if (agg)
                    free(agg->key);
                free(agg);
                continue;
            }
            agg->route = r->route;
            memcpy(agg->method, r->method, sizeof agg->method);
            histogram_init(&agg->h, r->h.bounds, r->h.nbounds);
        }
        for (int b = 0; b <= r->h.nbounds; b++)
            agg->h.counts[b] += r->h.counts[b];
        agg->h.count += r->h.count;
        agg->h.sum += r->h.sum;
        if (r->h.max > agg->h.max)
            agg->h.max = r->h.max;
    }
    json_t *out = json_array();
    for (size_t i = 0; hmap_next(&merged, &i, &k, &v);) {
        mroute_t *a = v;
        json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:f, s:f, s:f, s:f}", "route",
                                             a->route, "method", a->method, "count",
                                             (json_int_t)a->h.count, "p50_ms",
                                             histogram_quantile(&a->h, 0.5) * 1e3, "p95_ms",
                                             histogram_quantile(&a->h, 0.95) * 1e3, "p99_ms",
                                             histogram_quantile(&a->h, 0.99) * 1e3, "max_ms",
                                             a->h.max * 1e3));
        free(a->key);
        free(a);
    }
    hmap_free(&merged);
    return out;
}
