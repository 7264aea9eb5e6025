/* The registry's history series (history.h): one per queue, up to
 * METRICS_HISTORY_QUEUES, and one for all queues, fed once a second. */
#include "metrics/metrics_internal.h"

#include <string.h>

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

static void input_of(const mqueue_t *q, history_input_t *in)
{
    *in = (history_input_t){ .completed = q->events[JOB_EV_COMPLETED],
                             .failed = q->events[JOB_EV_FAILED],
                             .cancelled = q->events[JOB_EV_CANCELLED],
                             .wait = &q->wait, .run = &q->exec };
    memcpy(in->depth, q->depth, sizeof in->depth);
}

/* Each engine queue's depths into its registry entry (made for one with
 * jobs but no event yet; past the bound, the entry of the others). */
static void add_depths(metrics_t *m, const metrics_queue_t *qs, size_t n)
{
    static const job_state_t of[HISTORY_DEPTHS] = {
        [HISTORY_QUEUED] = JOB_QUEUED, [HISTORY_RUNNING] = JOB_RUNNING,
        [HISTORY_RETRYING] = JOB_RETRYING, [HISTORY_PENDING] = JOB_PENDING };
    for (size_t i = 0; i < n; i++) {
        mqueue_t *q = metrics_queue_of(m, qs[i].name);
        for (int d = 0; q && d < HISTORY_DEPTHS; d++)
            q->depth[d] += (uint32_t)qs[i].count[of[d]];
    }
}

/* The outcomes come from the registry, every queue seen since start
 * (the engine drops a queue it holds no job of); the depths from the
 * engine's queues as they are now. */
void metrics_history_tick(metrics_t *m, int64_t now_ms, const metrics_queue_t *qs, size_t n)
{
    if (!m->all && !(m->all = history_new()))
        return;
    add_depths(m, qs, n);
    history_input_t all = { 0 };
    histogram_t wait, run;
    histogram_init(&wait, histogram_seconds, histogram_seconds_n);
    histogram_init(&run, histogram_seconds, histogram_seconds_n);
    all.wait = &wait;
    all.run = &run;
    const char *k;
    void *v;
    for (size_t i = 0; hmap_next(&m->queues, &i, &k, &v);) {
        mqueue_t *q = v;
        history_input_t in;
        input_of(q, &in);
        memset(q->depth, 0, sizeof q->depth);
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
