/* The registry's history series (history.h): one per queue, up to
 * METRICS_HISTORY_QUEUES, and one for all queues, fed once a second. */
#include "metrics/metrics_internal.h"

/* Adds b's samples to a (same bounds). */
static void histogram_merge(histogram_t *a, const histogram_t *b)
{
    for (int i = 0; i <= a->nbounds; i++)
        a->counts[i] += b->counts[i];
    if (b->count && (!a->count || b->min < a->min))
        a->min = b->min;
    if (b->max > a->max)
        a->max = b->max;
    a->count += b->count;
    a->sum += b->sum;
}

static void input_of(const mqueue_t *q, const metrics_queue_t *depth, history_input_t *in)
{
    *in = (history_input_t){ .completed = q->events[JOB_EV_COMPLETED],
                             .failed = q->events[JOB_EV_FAILED],
                             .cancelled = q->events[JOB_EV_CANCELLED],
                             .wait = &q->wait, .run = &q->exec };
    in->depth[HISTORY_QUEUED] = (uint32_t)depth->count[JOB_QUEUED];
    in->depth[HISTORY_RUNNING] = (uint32_t)depth->count[JOB_RUNNING];
    in->depth[HISTORY_RETRYING] = (uint32_t)depth->count[JOB_RETRYING];
    in->depth[HISTORY_PENDING] = (uint32_t)depth->count[JOB_PENDING];
}

/* The engine's queues are every queue there is (it never drops one, and
 * every registry entry is one of them), so they drive the tick. */
void metrics_history_tick(metrics_t *m, int64_t now_ms, const metrics_queue_t *qs, size_t n)
{
    if (!m->all && !(m->all = history_new()))
        return;
    history_input_t all = { 0 };
    histogram_t wait, run;
    histogram_init(&wait, histogram_seconds, histogram_seconds_n);
    histogram_init(&run, histogram_seconds, histogram_seconds_n);
    all.wait = &wait;
    all.run = &run;
    for (size_t i = 0; i < n; i++) {
        mqueue_t *q = metrics_queue_of(m, qs[i].name); /* one with jobs but no event yet */
        if (!q)
            continue;
        history_input_t in;
        input_of(q, &qs[i], &in);
        for (int d = 0; d < HISTORY_DEPTHS; d++)
            all.depth[d] += in.depth[d];
        all.completed += in.completed;
        all.failed += in.failed;
        all.cancelled += in.cancelled;
        histogram_merge(&wait, &q->wait);
        histogram_merge(&run, &q->exec);
        if (!q->history && m->nhistory < METRICS_HISTORY_QUEUES && (q->history = history_new()))
            m->nhistory++;
        if (q->history)
            history_tick(q->history, now_ms, &in);
    }
    history_tick(m->all, now_ms, &all);
}

static const history_t *series_of(metrics_t *m, const char *queue);

json_t *metrics_history_json(metrics_t *m, const char *queue, int resolution_s, int64_t since_ms)
{
    const history_t *h = series_of(m, queue);
    return h ? history_json(h, resolution_s, since_ms) : NULL;
}

static const history_t *series_of(metrics_t *m, const char *queue)
{
    if (!queue)
        return m->all;
    const mqueue_t *q = hmap_get(&m->queues, queue);
    return q ? q->history : NULL;
}

json_t *metrics_history_latest(metrics_t *m, const char *queue)
{
    const history_t *h = series_of(m, queue);
    return h ? history_latest_json(h) : json_null();
}

void metrics_outcomes_since(metrics_t *m, int64_t since_ms, uint64_t out[3])
{
    out[0] = out[1] = out[2] = 0;
    if (m->all)
        history_outcomes_since(m->all, since_ms, out);
}
