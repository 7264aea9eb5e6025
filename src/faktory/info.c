/* INFO: Faktory's server summary, from the engine's exact counts of what
 * is unfinished (in cluster mode, the database's) and the store's figures
 * for what only it knows (failed jobs no longer held in memory, lifetime
 * totals). Those come from one read that
 * every INFO waiting at the time shares, and serve FWP_INFO_FRESH_MS: a
 * crowd of clients asking at once costs one read, not a read each. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/version.h"
#include "faktory/faktory_internal.h"
#include "metrics/process.h"
#include "util/clock.h"

/* The queues listed (at most STORE_STATS_QUEUES, as /v1/queues: each is
 * the loop's work at every INFO) and counted. */
typedef struct counts {
    json_t *queues;
    size_t n[JOB_STATE_COUNT], nqueues;
} counts_t;

static void add_queue(void *ud, const engine_queue_info_t *q)
{
    counts_t *k = ud;
    k->nqueues++;
    if (json_object_size(k->queues) < STORE_STATS_QUEUES)
        json_object_set_new(k->queues, q->name, json_integer((json_int_t)q->count[JOB_QUEUED]));
    for (int s = 0; s < JOB_STATE_COUNT; s++)
        k->n[s] += q->count[s];
}

/* Cluster mode: a node's engine holds only the jobs it runs, so the
 * queues and sets are the database's counts (the same read's). */
static void add_stored(counts_t *k, json_t *stats)
{
    const char *q, *state;
    json_t *states, *n;
    json_object_foreach(json_object_get(stats, "queues"), q, states)
        json_object_set_new(k->queues, q, json_integer(json_integer_value(
                                              json_object_get(states, "queued"))));
    k->nqueues = (size_t)json_integer_value(json_object_get(stats, "queue_count"));
    /* Every queue's, also those past the ones the read lists (store_stats). */
    json_object_foreach(json_object_get(stats, "states"), state, n) {
        job_state_t s;
        if (job_state_parse(state, &s) == 0)
            k->n[s] += (size_t)json_integer_value(n);
    }
}

static json_int_t total(json_t *stats, const char *name)
{
    return json_integer_value(json_object_get(json_object_get(stats, "totals"), name));
}

static json_int_t stored_failed(json_t *stats)
{
    return json_integer_value(json_object_get(json_object_get(stats, "states"), "failed"));
}

static json_t *server_part(fwp_conn_t *c)
{
    process_figures_t pf;
    process_read(&pf);
    fwp_server_t *s = c->srv;
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "description",
                     "jobq (Faktory Work Protocol v2)", "faktory_version", JOBQ_VERSION, "uptime",
                     (json_int_t)((clock_now_ms() - s->started_ms) / 1000), "connections",
                     (json_int_t)admit_open(s->d.admit), "command_count",
                     (json_int_t)s->commands, "used_memory_mb",
                     (json_int_t)(pf.resident_bytes >> 20));
}

static json_t *faktory_part(fwp_conn_t *c, json_t *stats)
{
    counts_t k = { .queues = json_object() };
    if (store_clustered(c->srv->d.store))
        add_stored(&k, stats);
    else
        engine_queue_foreach(c->srv->d.engine, add_queue, &k);
    json_int_t dead = stored_failed(stats), workers = (json_int_t)workers_processes(
                                                c->srv->d.workers, clock_now_ms());
    json_int_t failures = total(stats, "failed") + total(stats, "retried");
    return json_pack(
        "{s:I, s:I, s:I, s:I, s:o, s:{s:I, s:I, s:I, s:I}, s:{s:{s:I}, s:{s:I}, s:{s:I}, "
        "s:{s:I}, s:{s:I}}}",
        "total_failures", failures, "total_processed", total(stats, "completed") + failures,
        "total_enqueued", total(stats, "enqueued"), "total_queues",
        (json_int_t)k.nqueues, "queues", k.queues, "sets", "dead", dead,
        "retries", (json_int_t)k.n[JOB_RETRYING], "scheduled", (json_int_t)k.n[JOB_PENDING],
        "working", (json_int_t)k.n[JOB_RUNNING], "tasks", "Busy", "size",
        (json_int_t)k.n[JOB_RUNNING], "Dead", "size", dead, "Retries", "size",
        (json_int_t)k.n[JOB_RETRYING], "Scheduled", "size", (json_int_t)k.n[JOB_PENDING],
        "Workers", "size", workers);
}

static void answer(fwp_conn_t *c, json_t *stats)
{
    char now[32], utc[32];
    int64_t ms = clock_now_ms();
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(utc, sizeof utc, "%H:%M:%S UTC", &tm);
    clock_format_rfc3339(ms, now, sizeof now);
    fwp_send_json(c, json_pack("{s:s, s:s, s:o, s:o}", "now", now, "server_utc_time", utc,
                               "faktory", faktory_part(c, stats), "server", server_part(c)));
}

static int64_t mono_ms(void) { return clock_mono_ns() / 1000000; }

static void on_stats(void *ud, json_t *stats, const char *error)
{
    fwp_server_t *s = ud;
    s->stats_reading = false;
    if (!error) {
        json_decref(s->stats);
        s->stats = json_incref(stats);
        s->stats_at = mono_ms();
    }
    while (!list_empty(&s->info_waiters)) {
        fwp_conn_t *c = LIST_ENTRY(list_first(&s->info_waiters), fwp_conn_t, info_link);
        list_remove(&c->info_link);
        if (error)
            fwp_send_err(c, "unavailable: the store could not be read: %s", error);
        else
            c->stats_cont(c, stats);
        json_decref(c->stats_arg);
        c->stats_arg = NULL;
        fwp_finish(c);
    }
}

void fwp_with_stats(fwp_conn_t *c, void (*cont)(fwp_conn_t *c, json_t *stats), json_t *arg)
{
    fwp_server_t *s = c->srv;
    c->stats_arg = arg;
    if (s->stats && mono_ms() - s->stats_at < FWP_INFO_FRESH_MS) {
        cont(c, s->stats);
        json_decref(c->stats_arg);
        c->stats_arg = NULL;
        return;
    }
    c->stats_cont = cont;
    c->busy = true;
    s->busy++;
    list_push_back(&s->info_waiters, &c->info_link);
    if (!s->stats_reading) {
        s->stats_reading = true;
        store_stats(s->d.store, on_stats, s); /* the server outlives the store's reads */
    }
}

void fwp_info(fwp_conn_t *c) { fwp_with_stats(c, answer, NULL); }

void fwp_info_forget(fwp_conn_t *c)
{
    if (list_linked(&c->info_link))
        list_remove(&c->info_link);
    json_decref(c->stats_arg);
    c->stats_arg = NULL;
}
