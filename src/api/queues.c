/* /v1/queues and /v1/stats, and the stored counts /metrics reads in cluster mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "engine/engine.h"
#include "metrics/metrics.h"
#include "util/clock.h"

/* {"pending":0,...} with every state present. */
static json_t *zero_counts(void)
{
    json_t *o = json_object();
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        json_object_set_new(o, job_state_name((job_state_t)s), json_integer(0));
    return o;
}

void api_counts_of(json_t *qc, size_t count[JOB_STATE_COUNT])
{
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        count[s] = (size_t)json_integer_value(json_object_get(qc, job_state_name((job_state_t)s)));
}

static void add_counts(json_t *into, json_t *from)
{
    const char *state;
    json_t *n;
    json_object_foreach(from, state, n) {
        json_int_t have = json_integer_value(json_object_get(into, state));
        json_object_set_new(into, state, json_integer(have + json_integer_value(n)));
    }
}

static void note_queue(json_t *queues, const char *name, bool paused)
{
    json_t *q = json_object_get(queues, name);
    if (!q) {
        q = json_pack("{s:s, s:o}", "name", name, "counts", zero_counts());
        json_object_set_new(queues, name, q);
    }
    json_object_set_new(q, "paused", json_boolean(paused));
}

/* The engine's exact counts of unfinished jobs, by state and priority
 * (finished ones it holds only in part, so the store's counts stand). */
static json_t *by_priority(const engine_queue_info_t *q)
{
    static const job_state_t unfinished[] = { JOB_PENDING, JOB_QUEUED, JOB_RUNNING,
                                              JOB_RETRYING };
    json_t *out = json_object();
    for (size_t i = 0; out && i < sizeof unfinished / sizeof unfinished[0]; i++) {
        json_t *row = json_object();
        for (int p = 0; row && p < JOB_PRIORITIES; p++)
            json_object_set_new(row, job_priority_name(p),
                                json_integer((json_int_t)q->by_priority[unfinished[i]][p]));
        json_object_set_new(out, job_state_name(unfinished[i]), row ? row : json_null());
    }
    return out;
}

/* The queues a reply lists: the store's (at most STORE_STATS_QUEUES of
 * them), then the engine's while there is room. */
typedef struct listed {
    json_t *byname;
    bool truncated;
} listed_t;

/* Whether the engine's queue name is listed, or may be added. */
static bool room_for(listed_t *l, const char *name)
{
    if (json_object_get(l->byname, name) || json_object_size(l->byname) < STORE_STATS_QUEUES)
        return true;
    l->truncated = true;
    return false;
}

static void note_engine_queue(void *ud, const engine_queue_info_t *q)
{
    listed_t *l = ud;
    if (!room_for(l, q->name))
        return;
    note_queue(l->byname, q->name, q->paused);
    json_t *v = by_priority(q);
    if (v)
        json_object_set_new(json_object_get(l->byname, q->name), "by_priority", v);
}

/* The store's counts answer /v1/queues and /v1/stats alike: one cache
 * entry ("stats") serves both; on a miss they are read, kept, then used. */
static void on_counts(api_call_t *c, json_t *stats, const char *error)
{
    if (error) {
        api_reply_read_error(c, error);
        return;
    }
    char *text = json_dumps(stats, JSON_COMPACT);
    if (text)
        api_cache_fill(c, text);
    free(text);
    c->counts_cont(c, stats);
}

void api_with_counts(api_call_t *c, void (*cont)(api_call_t *c, json_t *stats))
{
    const char *hit = api_cache_lookup(c, "stats", NULL);
    json_t *stats = hit ? json_loads(hit, 0, NULL) : NULL;
    if (stats) {
        cont(c, stats);
        json_decref(stats);
        return;
    }
    c->counts_cont = cont;
    api_read_stats(c, on_counts);
}

static void queues_reply(api_call_t *c, json_t *stats)
{
    listed_t l = { .byname = json_object(),
                   .truncated = json_is_true(json_object_get(stats, "queues_truncated")) };
    json_t *counts;
    const char *name;
    json_object_foreach(json_object_get(stats, "queues"), name, counts) {
        note_queue(l.byname, name, engine_queue_paused(c->api->engine, name));
        add_counts(json_object_get(json_object_get(l.byname, name), "counts"), counts);
    }
    engine_queue_foreach(c->api->engine, note_engine_queue, &l);
    json_t *list = json_array(), *q;
    json_object_foreach(l.byname, name, q)
        json_array_append(list, q);
    json_decref(l.byname);
    http_reply_json(c->r, 200, json_pack("{s:o, s:b}", "queues", list, "queues_truncated",
                                         l.truncated));
}

void api_queues(api_call_t *c) { api_with_counts(c, queues_reply); }

static void set_paused(api_call_t *c, bool paused)
{
    const char *name = http_param(c->r, 0);
    if (!job_name_valid(name)) {
        api_reply_error(c, ERR_VALIDATION, "name", "queue names are 1-200 characters of [A-Za-z0-9._:-]");
        return;
    }
    if (api_refuse_writes(c, false))
        return;
    engine_pause(c->api->engine, name, paused);
    api_reply_durable(c, 200, api_dump(json_pack("{s:s, s:b}", "name", name, "paused", paused)));
}

void api_pause(api_call_t *c) { set_paused(c, true); }
void api_resume(api_call_t *c) { set_paused(c, false); }

static json_t *rate(uint64_t good, uint64_t bad)
{
    return good + bad ? json_real((double)good / (double)(good + bad)) : json_null();
}

/* Windowed outcomes and execution time for one queue (or all: NULL). */
static void add_live(json_t *o, metrics_t *m, const char *queue, int64_t now)
{
    metrics_window_t w1, w5;
    metrics_window(m, queue, 60, now, &w1);
    metrics_window(m, queue, 300, now, &w5);
    json_object_set_new(o, "success_rate_5m", rate(w5.completed, w5.failed));
    json_object_set_new(o, "throughput_1m", json_real((double)(w1.completed + w1.failed) / 60));
    json_object_set_new(o, "throughput_5m", json_real((double)(w5.completed + w5.failed) / 300));
    json_object_set_new(o, "execution_ms",
                        w5.exec_count ? json_pack("{s:f, s:f}", "avg", w5.exec_avg_ms, "p95",
                                                  w5.exec_p95_ms)
                                      : json_null());
}

typedef struct stats_ctx {
    listed_t l; /* byname: the queues' figures */
    int64_t now;
    double oldest_s;
} stats_ctx_t;

static void engine_side(void *ud, const engine_queue_info_t *q)
{
    stats_ctx_t *x = ud;
    if (!room_for(&x->l, q->name))
        return;
    json_t *o = json_object_get(x->l.byname, q->name);
    if (!o) {
        o = json_pack("{s:o}", "counts", zero_counts());
        json_object_set_new(x->l.byname, q->name, o);
    }
    double age = q->oldest_ready_at && x->now > q->oldest_ready_at
                     ? (double)(x->now - q->oldest_ready_at) / 1e3
                     : 0;
    if (age > x->oldest_s)
        x->oldest_s = age;
    json_object_set_new(o, "oldest_queued_age_s", json_real(age));
    json_object_set_new(o, "paused", json_boolean(q->paused));
}

/* Every queue's oldest_queued_age_s from the run_at the database gives
 * (none: 0), and the largest of them. */
static void stored_ages(stats_ctx_t *x, json_t *oldest)
{
    const char *name;
    json_t *q;
    x->oldest_s = 0;
    json_object_foreach(x->l.byname, name, q) {
        int64_t at = json_integer_value(json_object_get(oldest, name));
        double age = at && x->now > at ? (double)(x->now - at) / 1e3 : 0;
        if (age > x->oldest_s)
            x->oldest_s = age;
        json_object_set_new(q, "oldest_queued_age_s", json_real(age));
    }
}

/* Merges the stored counts (possibly cached) with the live figures. */
static void stats_reply(api_call_t *c, json_t *stats)
{
    stats_ctx_t x = { .l = { .byname = json_object(), .truncated = json_is_true(json_object_get(
                                     stats, "queues_truncated")) },
                      .now = clock_now_ms() };
    json_t *counts = zero_counts(), *qc;
    const char *name;
    add_counts(counts, json_object_get(stats, "states")); /* every queue's, listed or not */
    json_object_foreach(json_object_get(stats, "queues"), name, qc) {
        json_t *qcounts = zero_counts();
        add_counts(qcounts, qc);
        json_object_set_new(x.l.byname, name, json_pack("{s:o}", "counts", qcounts));
    }
    engine_queue_foreach(c->api->engine, engine_side, &x);
    json_t *stored_oldest = json_object_get(stats, "oldest_ready_at"), *q;
    if (stored_oldest) /* cluster mode: the database's, not this node's memory */
        stored_ages(&x, stored_oldest);
    json_object_foreach(x.l.byname, name, q) {
        json_t *qcounts = json_object_get(q, "counts");
        json_object_set_new(q, "success_rate",
                            rate((uint64_t)json_integer_value(json_object_get(qcounts, "completed")),
                                 (uint64_t)json_integer_value(json_object_get(qcounts, "failed"))));
        add_live(q, c->api->metrics, name, x.now);
    }
    json_t *totals = json_object(), *stored = json_object_get(stats, "totals");
    static const char *const names[] = { "enqueued", "completed", "failed", "retried",
                                         "cancelled", "requeued" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        json_object_set_new(totals, names[i],
                            json_integer(json_integer_value(json_object_get(stored, names[i]))));
    json_t *out = json_pack("{s:o, s:o, s:o, s:f, s:o, s:b}", "counts", counts, "totals", totals,
                            "success_rate",
                            rate((uint64_t)json_integer_value(json_object_get(totals, "completed")),
                                 (uint64_t)json_integer_value(json_object_get(totals, "failed"))),
                            "oldest_queued_age_s", x.oldest_s, "queues", x.l.byname,
                            "queues_truncated", x.l.truncated);
    add_live(out, c->api->metrics, NULL, x.now);
    api_reply_text(c, 200, api_dump(out));
}

void api_stats(api_call_t *c) { api_with_counts(c, stats_reply); }
