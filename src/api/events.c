/* GET /v1/events: live figures as server-sent events, for the dashboard
 * (docs/api.md, "Event stream").
 *
 * The server builds one tick a second from what it holds in memory (the
 * engine's queues, the chart history, breakers, workers) and writes the
 * same text to every stream: an open dashboard costs no store query and
 * no per-client work beyond a copy. A new stream gets the last tick as its
 * snapshot. Job and breaker events between ticks are kept up to a cap per
 * tick and the rest only counted, so a flood of jobs costs the streams a
 * bounded amount, and costs nothing at all while no stream is open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "engine/engine.h"
#include "metrics/metrics.h"
#include "metrics/workers.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/list.h"

#define EVENTS_JOBS_PER_TICK 100
#define EVENTS_BREAKERS_PER_TICK 50
#define EVENTS_QUEUES_PER_TICK 200
#define EVENTS_MAX_QUEUED (1u << 20) /* unsent bytes a stream may hold */

typedef struct stream {
    list_node_t link; /* api_events.streams */
    api_call_t *call;
} stream_t;

/* Breaker state changes, the newest BREAKER_CHANGES, kept whether or not
 * a stream is open: they are rare, and the breakers page shows them. */
#define BREAKER_CHANGES 256
typedef struct change {
    int64_t at_ms;
    char key[JOB_NAME_MAX + 1];
    engine_breaker_state_t from, to;
} change_t;

struct api_events {
    change_t changes[BREAKER_CHANGES];
    size_t nchanges, next_change;
    list_node_t streams;
    size_t n;
    json_t *jobs, *breakers;  /* since the last tick, up to the caps */
    uint64_t jobs_dropped, breakers_dropped;
    char *last;               /* the last tick's data line, owned */
    /* Cluster mode: the store's statistics the ticks show (a node's memory
     * holds only the jobs it runs). While streams are open each tick reads
     * them and goes out when they land (with the last ones if the read
     * failed); a tick due while a read is out is skipped. */
    json_t *stored;
    bool stored_reading;
};

api_events_t *api_events_new(void)
{
    api_events_t *ev = calloc(1, sizeof *ev);
    if (!ev)
        return NULL;
    list_init(&ev->streams);
    return ev;
}

void api_events_free(api_events_t *ev)
{
    if (!ev)
        return;
    CHECK(list_empty(&ev->streams)); /* the HTTP server, stopped first, closed them */
    json_decref(ev->jobs);
    json_decref(ev->breakers);
    json_decref(ev->stored);
    free(ev->last);
    free(ev);
}

/* Appends o (stolen) to *arr unless it holds cap already. */
static void keep(json_t **arr, size_t cap, uint64_t *dropped, json_t *o)
{
    if (!*arr)
        *arr = json_array();
    if (!o || !*arr || json_array_size(*arr) >= cap) {
        json_decref(o);
        ++*dropped;
        return;
    }
    json_array_append_new(*arr, o);
}

void api_events_job(api_t *a, const job_t *job, job_event_t e)
{
    api_events_t *ev = a->events;
    if (!ev || !ev->n || e == JOB_EV_UPDATED)
        return;
    keep(&ev->jobs, EVENTS_JOBS_PER_TICK, &ev->jobs_dropped,
         json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", job->id, "queue", job->queue, "type",
                   job->type, "event", job_event_name(e), "state", job_state_name(job->state),
                   "priority", job_priority_name(job->priority)));
}

void api_events_breaker(api_t *a, const char *key, engine_breaker_state_t from,
                        engine_breaker_state_t to)
{
    api_events_t *ev = a->events;
    if (!ev)
        return;
    change_t *ch = &ev->changes[ev->next_change];
    *ch = (change_t){ .at_ms = clock_now_ms(), .from = from, .to = to };
    snprintf(ch->key, sizeof ch->key, "%s", key);
    ev->next_change = (ev->next_change + 1) % BREAKER_CHANGES;
    if (ev->nchanges < BREAKER_CHANGES)
        ev->nchanges++;
    if (!ev->n)
        return;
    keep(&ev->breakers, EVENTS_BREAKERS_PER_TICK, &ev->breakers_dropped,
         json_pack("{s:s, s:s, s:s}", "key", key, "from", engine_breaker_state_name(from), "to",
                   engine_breaker_state_name(to)));
}

json_t *api_breaker_changes(api_t *a)
{
    json_t *out = json_array();
    api_events_t *ev = a->events;
    for (size_t i = 0; ev && out && i < ev->nchanges; i++) {
        const change_t *ch =
            &ev->changes[(ev->next_change + BREAKER_CHANGES - 1 - i) % BREAKER_CHANGES];
        char at[32];
        clock_format_rfc3339(ch->at_ms, at, sizeof at);
        json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s}", "at", at, "key", ch->key,
                                             "from", engine_breaker_state_name(ch->from), "to",
                                             engine_breaker_state_name(ch->to)));
    }
    return out;
}

/* ---- the tick ---- */

typedef struct tick {
    api_t *api;
    json_t *queues;
    size_t totals[JOB_STATE_COUNT], nqueues, paused;
    size_t breakers[3];
} tick_t;

static void add_queue(void *ud, const engine_queue_info_t *q)
{
    tick_t *t = ud;
    t->nqueues++;
    t->paused += q->paused;
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        t->totals[s] += q->count[s];
    if (json_array_size(t->queues) >= EVENTS_QUEUES_PER_TICK)
        return;
    json_array_append_new(
        t->queues,
        json_pack("{s:s, s:b, s:I, s:I, s:I, s:I, s:o}", "name", q->name, "paused", q->paused,
                  "queued", (json_int_t)q->count[JOB_QUEUED], "running",
                  (json_int_t)q->count[JOB_RUNNING], "retrying",
                  (json_int_t)q->count[JOB_RETRYING], "pending",
                  (json_int_t)q->count[JOB_PENDING],
                  "point", metrics_history_latest(t->api->metrics, q->name)));
}

/* The queues and totals of the database's counts instead of memory's. */
static void stored_queues(tick_t *t, json_t *stored)
{
    json_decref(t->queues);
    t->queues = json_array();
    memset(t->totals, 0, sizeof t->totals);
    t->nqueues = t->paused = 0;
    const char *name;
    json_t *qc;
    json_object_foreach(json_object_get(stored, "queues"), name, qc) {
        engine_queue_info_t q = { .name = name,
                                  .paused = engine_queue_paused(t->api->engine, name) };
        api_counts_of(qc, q.count);
        add_queue(t, &q);
    }
    /* Every queue's, also those past the ones the read lists (store_stats). */
    api_counts_of(json_object_get(stored, "states"), t->totals);
}

static void add_breaker(void *ud, const engine_breaker_info_t *b)
{
    tick_t *t = ud;
    if ((unsigned)b->state < 3)
        t->breakers[b->state]++;
}

static json_t *drained(json_t **arr)
{
    json_t *v = *arr ? *arr : json_array();
    *arr = NULL;
    return v;
}

typedef struct recent {
    json_t *list;
    int64_t now_ms;
} recent_t;

static void add_bulk(void *ud, const bulk_t *b)
{
    recent_t *r = ud;
    if (api_bulk_recent(b, r->now_ms))
        json_array_append_new(r->list, api_bulk_json(b));
}

static json_t *tick_json(api_t *a, int64_t now_ms)
{
    api_events_t *ev = a->events;
    tick_t t = { .api = a, .queues = json_array() };
    if (ev->stored)
        stored_queues(&t, ev->stored);
    else
        engine_queue_foreach(a->engine, add_queue, &t);
    engine_breaker_foreach(a->engine, add_breaker, &t);
    uint64_t hour[3];
    metrics_outcomes_since(a->metrics, now_ms - 3600000, hour);
    json_t *o = json_pack(
        "{s:I, s:{s:I, s:I, s:I, s:I}, s:I, s:I, s:o, s:b, s:o, s:{s:I, s:I, s:I}, "
        "s:{s:I, s:I}, s:I, s:o, s:I, s:o, s:I}",
        "t", (json_int_t)now_ms, "totals", "queued", (json_int_t)t.totals[JOB_QUEUED],
        "running", (json_int_t)t.totals[JOB_RUNNING], "retrying",
        (json_int_t)t.totals[JOB_RETRYING], "pending", (json_int_t)t.totals[JOB_PENDING],
        "paused", (json_int_t)t.paused, "queue_count", (json_int_t)t.nqueues, "queues",
        t.queues ? t.queues : json_array(), "queues_truncated",
        t.nqueues > EVENTS_QUEUES_PER_TICK, "point", metrics_history_latest(a->metrics, NULL),
        "last_hour", "completed", (json_int_t)hour[0], "failed", (json_int_t)hour[1],
        "cancelled", (json_int_t)hour[2], "breakers", "open",
        (json_int_t)t.breakers[ENGINE_BREAKER_OPEN], "half_open",
        (json_int_t)t.breakers[ENGINE_BREAKER_HALF_OPEN], "workers",
        (json_int_t)workers_live(a->workers, now_ms), "jobs", drained(&ev->jobs),
        "jobs_dropped", (json_int_t)ev->jobs_dropped, "breaker_events", drained(&ev->breakers),
        "breaker_events_dropped", (json_int_t)ev->breakers_dropped);
    ev->jobs_dropped = ev->breakers_dropped = 0;
    recent_t r = { json_array(), now_ms };
    if (a->bulks && r.list)
        api_bulk_foreach(a, add_bulk, &r);
    if (o)
        json_object_set_new(o, "bulk", r.list ? r.list : json_array());
    else
        json_decref(r.list);
    return o;
}

/* "event: NAME\ndata: JSON\n\n", owned; NULL when out of memory. */
static char *frame(const char *name, const char *data)
{
    char *out = NULL;
    if (asprintf(&out, "event: %s\ndata: %s\n\n", name, data) < 0)
        return NULL;
    return out;
}

/* The tick's JSON without its events (they were news once), kept as the
 * snapshot for streams that open before the next tick. */
static void keep_snapshot(api_events_t *ev, json_t *tick)
{
    json_t *copy = json_copy(tick);
    if (!copy)
        return;
    json_object_set_new(copy, "jobs", json_array());
    json_object_set_new(copy, "breaker_events", json_array());
    char *text = json_dumps(copy, JSON_COMPACT);
    json_decref(copy);
    if (text) {
        free(ev->last);
        ev->last = text;
    }
}

static void send_all(api_events_t *ev, const char *text)
{
    size_t n = strlen(text);
    for (list_node_t *l = ev->streams.next, *next; l != &ev->streams; l = next) {
        next = l->next;
        stream_t *s = LIST_ENTRY(l, stream_t, link);
        if (!http_stream_write(s->call->r, text, n)) {
            list_remove(&s->link); /* it ends; its detach finds it gone */
            list_init(&s->link);
            ev->n--;
        }
    }
}

static void tick_now(api_t *a, int64_t now_ms);

static void on_stored(void *ud, json_t *stats, const char *error)
{
    api_t *a = ud;
    api_events_t *ev = a->events;
    ev->stored_reading = false;
    if (!error && stats) {
        json_decref(ev->stored);
        ev->stored = json_incref(stats);
    }
    if (ev->n)
        tick_now(a, clock_now_ms());
}

/* force: a snapshot for a stream that opens, built now (in cluster mode
 * from the counts its opening just read). */
static void tick(api_t *a, int64_t now_ms, bool force)
{
    api_events_t *ev = a->events;
    if (!ev)
        return;
    if (!ev->n && !force) { /* no one watches: nothing to build */
        free(ev->last);
        ev->last = NULL;
        return;
    }
    if (!force && store_clustered(a->store)) {
        if (!ev->stored_reading) {
            ev->stored_reading = true;
            store_stats(a->store, on_stored, a); /* a outlives the store's reads (app_free) */
        }
        return;
    }
    tick_now(a, now_ms);
}

static void tick_now(api_t *a, int64_t now_ms)
{
    api_events_t *ev = a->events;
    json_t *tick = tick_json(a, now_ms);
    if (!tick)
        return;
    keep_snapshot(ev, tick);
    char *data = ev->n ? json_dumps(tick, JSON_COMPACT) : NULL;
    json_decref(tick);
    char *text = data ? frame("tick", data) : NULL;
    if (text)
        send_all(ev, text);
    free(text);
    free(data);
}

void api_events_tick(api_t *a, int64_t now_ms) { tick(a, now_ms, false); }

void api_events_end(api_t *a)
{
    api_events_t *ev = a->events;
    if (!ev)
        return;
    while (!list_empty(&ev->streams)) {
        stream_t *s = LIST_ENTRY(ev->streams.next, stream_t, link);
        list_remove(&s->link);
        list_init(&s->link);
        ev->n--;
        http_stream_write(s->call->r, "event: bye\ndata: {}\n\n", 21);
        http_stream_end(s->call->r);
    }
}

/* ---- one stream ---- */

static void stream_detach(api_call_t *c)
{
    stream_t *s = c->ctx;
    if (!list_empty(&s->link)) {
        list_remove(&s->link);
        list_init(&s->link);
        c->api->events->n--;
    }
}

static bool refuse(api_call_t *c)
{
    api_events_t *ev = c->api->events;
    const char *why = NULL;
    if (!ev || c->api->draining)
        why = "the server is shutting down";
    else if (ev->n >= (size_t)c->api->cfg->max_streams)
        why = "too many event streams are open (JOBQ_MAX_STREAMS); retry shortly";
    if (!why)
        return false;
    http_add_header(c->r, "Retry-After", "5");
    api_reply_error(c, ERR_UNAVAILABLE, "", why);
    return true;
}

static void open_stream(api_call_t *c);

/* Cluster mode: the snapshot shows the database's counts (the query
 * cache's, else read now), not those of the ticks before streams opened. */
static void open_with_counts(api_call_t *c, json_t *stats)
{
    api_events_t *ev = c->api->events;
    if (refuse(c)) /* shutting down meanwhile */
        return;
    json_decref(ev->stored);
    ev->stored = json_incref(stats);
    open_stream(c);
}

void api_events(api_call_t *c)
{
    static const char *const known[] = { NULL };
    const char *unknown = http_query_unknown(c->r, known);
    if (unknown) {
        api_reply_error(c, ERR_VALIDATION, unknown, "unknown query parameter");
        return;
    }
    if (refuse(c))
        return;
    if (store_clustered(c->api->store) && !c->api->events->n)
        api_with_counts(c, open_with_counts);
    else
        open_stream(c);
}

static void open_stream(api_call_t *c)
{
    api_events_t *ev = c->api->events;
    if (!ev->last)
        tick(c->api, clock_now_ms(), true); /* the first stream since none was open */
    stream_t *s = calloc(1, sizeof *s);
    if (!s) {
        api_reply_error(c, ERR_UNAVAILABLE, "", "out of memory");
        return;
    }
    s->call = c;
    list_init(&s->link);
    api_set_ctx(c, s, stream_detach, free);
    http_add_header(c->r, "Cache-Control", "no-store");
    http_add_header(c->r, "X-Accel-Buffering", "no"); /* a proxy in front must not hold ticks */
    char *snap = ev->last ? frame("snapshot", ev->last) : NULL;
    if (!snap || !http_stream_begin(c->r, 200, "text/event-stream", EVENTS_MAX_QUEUED) ||
        !http_stream_write(c->r, "retry: 2000\n\n", 13) ||
        !http_stream_write(c->r, snap, strlen(snap))) {
        free(snap);
        if (http_status(c->r) == 0)
            api_reply_error(c, ERR_UNAVAILABLE, "", "out of memory");
        return;
    }
    free(snap);
    list_push_back(&ev->streams, &s->link);
    ev->n++;
}
