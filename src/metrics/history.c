/* Fixed rings of chart points, from deltas of cumulative figures. See
 * history.h. */
#include "metrics/history.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/clock.h"

typedef struct point {
    int64_t t_ms; /* start of the interval */
    uint32_t depth[HISTORY_DEPTHS];
    uint32_t completed, failed, cancelled;
    float wait_ms[3], run_ms[3]; /* p50, p95, p99; NAN: none in the interval */
} point_t;

typedef struct ring {
    point_t *p;
    uint32_t cap, n, head; /* head: where the next point goes */
} ring_t;

/* The cumulative figures at the start of an interval. */
typedef struct mark {
    int64_t t_ms;
    uint64_t completed, failed, cancelled;
    histogram_t wait, run;
} mark_t;

struct history {
    ring_t sec, min;
    mark_t at_sec, at_min;
    bool started;
    point_t store[HISTORY_SECONDS + HISTORY_MINUTES];
};

history_t *history_new(void)
{
    history_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->sec = (ring_t){ h->store, HISTORY_SECONDS, 0, 0 };
    h->min = (ring_t){ h->store + HISTORY_SECONDS, HISTORY_MINUTES, 0, 0 };
    return h;
}

void history_free(history_t *h) { free(h); }

/* The histogram of what now holds beyond since (same bounds). */
static void delta(histogram_t *out, const histogram_t *now, const histogram_t *since)
{
    histogram_init(out, now->bounds, now->nbounds);
    int first = -1, last = -1;
    for (int i = 0; i <= now->nbounds; i++) {
        out->counts[i] = now->counts[i] - since->counts[i];
        out->count += out->counts[i];
        if (out->counts[i] && first < 0)
            first = i;
        if (out->counts[i])
            last = i;
    }
    out->sum = now->sum - since->sum;
    if (first < 0)
        return;
    /* Only the buckets are known for the interval: its bounds stand in for
     * the smallest and largest sample. */
    out->min = first == 0 ? 0 : now->bounds[first - 1];
    out->max = last < now->nbounds ? now->bounds[last] : now->max;
}

static void percentiles(float out[3], const histogram_t *now, const histogram_t *since)
{
    histogram_t d;
    delta(&d, now, since);
    static const double q[3] = { 0.50, 0.95, 0.99 };
    for (int i = 0; i < 3; i++)
        out[i] = d.count ? (float)(histogram_quantile(&d, q[i]) * 1e3) : NAN;
}

static void mark(mark_t *m, int64_t now_ms, const history_input_t *in)
{
    *m = (mark_t){ .t_ms = now_ms, .completed = in->completed, .failed = in->failed,
                   .cancelled = in->cancelled, .wait = *in->wait, .run = *in->run };
}

static void push(ring_t *r, const mark_t *from, const history_input_t *in)
{
    point_t *p = &r->p[r->head];
    *p = (point_t){ .t_ms = from->t_ms,
                    .completed = (uint32_t)(in->completed - from->completed),
                    .failed = (uint32_t)(in->failed - from->failed),
                    .cancelled = (uint32_t)(in->cancelled - from->cancelled) };
    memcpy(p->depth, in->depth, sizeof p->depth);
    percentiles(p->wait_ms, in->wait, &from->wait);
    percentiles(p->run_ms, in->run, &from->run);
    r->head = (r->head + 1) % r->cap;
    if (r->n < r->cap)
        r->n++;
}

void history_tick(history_t *h, int64_t now_ms, const history_input_t *in)
{
    if (!h->started) {
        /* The figures count from zero (the queue's first event, or start):
         * the first point takes all of them rather than lose any. */
        h->at_sec = (mark_t){ .t_ms = now_ms - 1000 };
        histogram_init(&h->at_sec.wait, in->wait->bounds, in->wait->nbounds);
        histogram_init(&h->at_sec.run, in->run->bounds, in->run->nbounds);
        h->at_min = h->at_sec;
        h->started = true;
    }
    push(&h->sec, &h->at_sec, in);
    mark(&h->at_sec, now_ms, in);
    if (now_ms / 60000 != h->at_min.t_ms / 60000) {
        push(&h->min, &h->at_min, in);
        h->at_min = h->at_sec;
    }
}

static json_t *quantiles_json(const float v[3])
{
    if (isnan(v[0]))
        return json_null();
    return json_pack("{s:f, s:f, s:f}", "p50", (double)v[0], "p95", (double)v[1], "p99",
                     (double)v[2]);
}

static json_t *point_json(const point_t *p)
{
    char t[32];
    clock_format_rfc3339(p->t_ms, t, sizeof t);
    return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "t", t, "queued",
                     (json_int_t)p->depth[HISTORY_QUEUED], "running",
                     (json_int_t)p->depth[HISTORY_RUNNING], "retrying",
                     (json_int_t)p->depth[HISTORY_RETRYING], "pending",
                     (json_int_t)p->depth[HISTORY_PENDING], "completed",
                     (json_int_t)p->completed, "failed", (json_int_t)p->failed, "cancelled",
                     (json_int_t)p->cancelled, "wait_ms", quantiles_json(p->wait_ms), "run_ms",
                     quantiles_json(p->run_ms));
}

json_t *history_json(const history_t *h, int resolution_s, int64_t since_ms)
{
    const ring_t *r = resolution_s >= 60 ? &h->min : &h->sec;
    json_t *points = json_array();
    if (!points)
        return NULL;
    for (uint32_t i = 0; i < r->n; i++) {
        const point_t *p = &r->p[(r->head + r->cap - r->n + i) % r->cap];
        if (p->t_ms >= since_ms && json_array_append_new(points, point_json(p)) != 0) {
            json_decref(points);
            return NULL;
        }
    }
    return json_pack("{s:i, s:o}", "resolution_s", resolution_s >= 60 ? 60 : 1, "points", points);
}

json_t *history_latest_json(const history_t *h)
{
    const ring_t *r = &h->sec;
    if (!r->n)
        return json_null();
    return point_json(&r->p[(r->head + r->cap - 1) % r->cap]);
}

static void add_outcomes(const ring_t *r, int64_t since_ms, uint64_t out[3])
{
    for (uint32_t i = 0; i < r->n; i++) {
        const point_t *p = &r->p[(r->head + r->cap - 1 - i) % r->cap];
        if (p->t_ms < since_ms)
            break; /* newest first: the rest are older */
        out[0] += p->completed;
        out[1] += p->failed;
        out[2] += p->cancelled;
    }
}

void history_outcomes_since(const history_t *h, int64_t since_ms, uint64_t out[3])
{
    out[0] = out[1] = out[2] = 0;
    if (!h->started)
        return;
    add_outcomes(&h->min, since_ms, out);
    int64_t open = h->at_min.t_ms > since_ms ? h->at_min.t_ms : since_ms;
    add_outcomes(&h->sec, open, out);
}
