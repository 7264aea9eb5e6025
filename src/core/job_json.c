/* Writing a job as JSON text, fast: the hot path writes every job several
 * times, and building a jansson tree per write cost most of the loop
 * thread's time (bench/README.md). Arbitrary JSON values (args, result,
 * progress, errors) are written from their trees once (jsonb_write) and
 * cached. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/job.h"
#include "util/clock.h"
#include "util/jsonb.h"
#include "util/sbuf.h"

const char *job_value_text(char **cache, json_t *v)
{
    if (!*cache)
        *cache = jsonb_text(v); /* never NULL: out of memory aborts in sbuf */
    return *cache;
}

/* A value not reported yet writes null and caches nothing. */
static void add_cached(sbuf_t *s, char **cache, json_t *v)
{
    sbuf_adds(s, v ? job_value_text(cache, v) : "null");
}

static void add_key(sbuf_t *s, const char *key)
{
    sbuf_addc(s, ',');
    sbuf_addc(s, '"');
    sbuf_adds(s, key);
    sbuf_add(s, "\":", 2);
}

/* 0 is "not yet" (started_at, finished_at...) unless the time is always
 * set (run_at), where 0 is the epoch a client may well have asked for. */
static void add_time_or_epoch(sbuf_t *s, const char *key, int64_t ms, bool zero_is_time)
{
    char buf[32];
    add_key(s, key);
    if ((ms || zero_is_time) && clock_format_rfc3339(ms, buf, sizeof buf) == 0) {
        sbuf_addc(s, '"');
        sbuf_adds(s, buf);
        sbuf_addc(s, '"');
    } else {
        sbuf_add(s, "null", 4);
    }
}

static void add_time(sbuf_t *s, const char *key, int64_t ms)
{
    add_time_or_epoch(s, key, ms, false);
}

/* What a job is: id, queue, type and args (as kept, not dumped again). */
static void add_identity(sbuf_t *s, job_t *j)
{
    size_t alen;
    const char *args = job_args_text(j, &alen);
    sbuf_adds(s, "\"id\":");
    sbuf_add_jstr(s, j->id);
    add_key(s, "queue");
    sbuf_add_jstr(s, j->queue);
    add_key(s, "type");
    sbuf_add_jstr(s, j->type);
    add_key(s, "args");
    sbuf_add(s, args, alen);
}

/* The fields the client chose. */
static void add_spec(sbuf_t *s, job_t *j)
{
    add_identity(s, j);
    add_key(s, "priority");
    sbuf_add_jstr(s, job_priority_name(j->priority));
    add_key(s, "max_retries");
    sbuf_add_int(s, j->max_retries);
    add_key(s, "timeout_ms");
    sbuf_add_int(s, j->timeout_ms);
    sbuf_adds(s, ",\"backoff\":{\"initial_ms\":");
    sbuf_add_int(s, j->backoff.initial_ms);
    sbuf_adds(s, ",\"max_ms\":");
    sbuf_add_int(s, j->backoff.max_ms);
    sbuf_adds(s, ",\"multiplier\":");
    sbuf_add_double(s, j->backoff.multiplier, true);
    sbuf_adds(s, ",\"jitter\":");
    sbuf_add_double(s, j->backoff.jitter, true);
    if (j->backoff.curve == BACKOFF_FAKTORY)
        sbuf_adds(s, ",\"curve\":\"faktory\"");
    sbuf_addc(s, '}');
    add_key(s, "breaker_key");
    sbuf_add_jstr(s, j->breaker_key);
    /* Only where set, so that other jobs read exactly as before. */
    if (job_has_faktory(j)) {
        add_key(s, "faktory");
        sbuf_adds(s, job_value_text(&j->cache_faktory, j->faktory));
    }
    if (j->discard_failed)
        sbuf_adds(s, ",\"discard_failed\":true");
}

static void add_lease(sbuf_t *s, const job_t *j, job_json_mode_t mode)
{
    add_key(s, "lease");
    if (j->state != JOB_RUNNING) {
        sbuf_add(s, "null", 4);
        return;
    }
    sbuf_adds(s, "{\"worker\":");
    sbuf_add_jstr(s, j->lease_worker);
    add_time(s, "expires_at", j->lease_expires_at);
    if (mode == JOB_JSON_STORED) {
        add_key(s, "id");
        sbuf_add_jstr(s, j->lease_id);
    }
    sbuf_addc(s, '}');
}

void job_set_args(job_t *j, json_t *v)
{
    char *text = jsonb_text(v);
    free(j->args_text);
    json_decref(j->args);
    j->args = NULL;
    j->args_text = text;
    j->args_len = (uint32_t)strlen(text);
}

json_t *job_args(const job_t *cj)
{
    job_t *j = (job_t *)cj; /* only the caches change */
    if (j->args || !j->args_text)
        return j->args ? j->args : json_null();
    json_error_t e;
    j->args = jsonb_loadb(j->args_text, j->args_len, JSON_DECODE_ANY, JSONB_STORED_DEPTH, &e);
    return j->args ? j->args : json_null();
}

const char *job_args_text(const job_t *j, size_t *len)
{
    *len = j->args_text ? j->args_len : 4;
    return j->args_text ? j->args_text : "null";
}

/* The short forms (RFC 7240's return=minimal): an enqueue's reply needs
 * the id and state; a worker, what to run and how to report it. */
static void write_minimal(job_t *j, job_json_mode_t mode, sbuf_t *s)
{
    sbuf_addc(s, '{');
    if (mode == JOB_JSON_LEASED_MINIMAL) {
        add_identity(s, j);
    } else {
        sbuf_adds(s, "\"id\":");
        sbuf_add_jstr(s, j->id);
    }
    add_key(s, "state");
    sbuf_add_jstr(s, job_state_name(j->state));
    if (mode == JOB_JSON_LEASED_MINIMAL) {
        add_key(s, "attempts");
        sbuf_add_int(s, j->attempts);
        add_time(s, "lease_expires_at", j->lease_expires_at);
        add_key(s, "lease_id");
        sbuf_add_jstr(s, j->lease_id);
    }
    sbuf_addc(s, '}');
}

void job_write_json(const job_t *cj, job_json_mode_t mode, sbuf_t *s)
{
    job_t *j = (job_t *)cj; /* only the caches change */
    if (mode == JOB_JSON_MINIMAL || mode == JOB_JSON_LEASED_MINIMAL) {
        write_minimal(j, mode, s);
        return;
    }
    sbuf_addc(s, '{');
    add_spec(s, j);
    add_key(s, "state");
    sbuf_add_jstr(s, job_state_name(j->state));
    add_key(s, "attempts");
    sbuf_add_int(s, j->attempts);
    add_time(s, "created_at", j->created_at);
    add_time(s, "updated_at", j->updated_at);
    add_time(s, "started_at", j->started_at);
    add_time(s, "finished_at", j->finished_at);
    add_time_or_epoch(s, "run_at", j->run_at, true);
    add_lease(s, j, mode);
    add_key(s, "progress");
    add_cached(s, &j->cache_progress, j->progress);
    add_key(s, "result");
    add_cached(s, &j->cache_result, j->result);
    add_key(s, "errors");
    if (j->errors)
        add_cached(s, &j->cache_errors, j->errors);
    else
        sbuf_add(s, "[]", 2);
    add_key(s, "cancel_requested");
    sbuf_adds(s, j->cancel_requested ? "true" : "false");
    if (mode == JOB_JSON_LEASED) {
        add_key(s, "lease_id");
        sbuf_add_jstr(s, j->lease_id);
    }
    sbuf_addc(s, '}');
}

char *job_json(const job_t *j, job_json_mode_t mode)
{
    sbuf_t s;
    sbuf_init(&s, 1024);
    job_write_json(j, mode, &s);
    return sbuf_take(&s);
}
