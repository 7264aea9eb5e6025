/* Validation of client-sent jobs and decoding of stored documents. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/job.h"
#include "util/clock.h"
#include "util/randid.h"

#define DELAY_MAX_MS (10LL * 365 * 24 * 3600 * 1000) /* ten years */

/* 48 bits of milliseconds then 80 random bits, in hex: ids sort by creation,
 * so the store's primary-key index grows at its right edge instead of
 * touching a random page per insert (bench: docs/performance.md). */
static char *new_id(int64_t now)
{
    char buf[33];
    snprintf(buf, 13, "%012llx", (unsigned long long)now & 0xffffffffffffULL);
    if (randid_hex(buf + 12, 10) != 0)
        return NULL;
    return strdup(buf);
}

static err_t name_field(json_t *v, const char *field, char **out, problem_t *p)
{
    if (!json_is_string(v))
        return problem_set(p, ERR_VALIDATION, field, "%s must be a string", field);
    if (!job_name_valid(json_string_value(v)))
        return problem_set(p, ERR_VALIDATION, field,
                           "%s must be 1-%d characters of [A-Za-z0-9._:-]", field, JOB_NAME_MAX);
    *out = strdup(json_string_value(v));
    return *out ? ERR_OK : problem_set(p, ERR_INTERNAL, field, "out of memory");
}

static err_t shared_name_field(json_t *v, const char *field, job_t *j,
                               int (*set)(job_t *, const char *), problem_t *p)
{
    if (!json_is_string(v) || !job_name_valid(json_string_value(v)))
        return name_field(v, field, &(char *){ NULL }, p); /* its refusal */
    return set(j, json_string_value(v)) == 0 ? ERR_OK
                                              : problem_set(p, ERR_INTERNAL, field, "out of memory");
}

static err_t int_field(json_t *v, const char *field, int64_t lo, int64_t hi, int64_t *out,
                       problem_t *p)
{
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return problem_set(p, ERR_VALIDATION, field, "%s must be an integer from %lld to %lld",
                           field, (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return ERR_OK;
}

static err_t num_field(json_t *v, const char *field, double lo, double hi, double *out,
                       problem_t *p)
{
    if (!json_is_number(v) || json_number_value(v) < lo || json_number_value(v) > hi)
        return problem_set(p, ERR_VALIDATION, field, "%s must be a number from %g to %g", field,
                           lo, hi);
    *out = json_number_value(v);
    return ERR_OK;
}

static err_t priority_field(json_t *v, int *out, problem_t *p)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0 &&
        json_integer_value(v) < JOB_PRIORITIES) {
        *out = (int)json_integer_value(v);
        return ERR_OK;
    }
    for (int i = 0; json_is_string(v) && i < JOB_PRIORITIES; i++) {
        if (strcmp(json_string_value(v), job_priority_name(i)) == 0) {
            *out = i;
            return ERR_OK;
        }
    }
    return problem_set(p, ERR_VALIDATION, "priority",
                       "priority must be critical, high, normal, low, background or 0-4");
}

static err_t curve_field(json_t *v, backoff_curve_t *out, problem_t *p)
{
    const char *s = json_string_value(v);
    if (s && strcmp(s, "exponential") == 0)
        *out = BACKOFF_EXPONENTIAL;
    else if (s && strcmp(s, "faktory") == 0)
        *out = BACKOFF_FAKTORY;
    else
        return problem_set(p, ERR_VALIDATION, "backoff.curve",
                           "backoff.curve must be exponential or faktory");
    return ERR_OK;
}

static err_t backoff_field(json_t *v, backoff_t *b, problem_t *p)
{
    if (!json_is_object(v))
        return problem_set(p, ERR_VALIDATION, "backoff", "backoff must be an object");
    const char *key;
    json_t *val;
    json_object_foreach(v, key, val) {
        err_t e;
        if (strcmp(key, "initial_ms") == 0)
            e = int_field(val, "backoff.initial_ms", 0, JOB_BACKOFF_INITIAL_MAX_MS, &b->initial_ms, p);
        else if (strcmp(key, "max_ms") == 0)
            e = int_field(val, "backoff.max_ms", 0, JOB_BACKOFF_MAX_MAX_MS, &b->max_ms, p);
        else if (strcmp(key, "multiplier") == 0)
            e = num_field(val, "backoff.multiplier", 1.0, 100.0, &b->multiplier, p);
        else if (strcmp(key, "jitter") == 0)
            e = num_field(val, "backoff.jitter", 0.0, 1.0, &b->jitter, p);
        else if (strcmp(key, "curve") == 0)
            e = curve_field(val, &b->curve, p);
        else
            e = problem_set(p, ERR_VALIDATION, "backoff", "unknown field backoff.%s", key);
        if (e)
            return e;
    }
    if (b->max_ms < b->initial_ms)
        return problem_set(p, ERR_VALIDATION, "backoff.max_ms",
                           "backoff.max_ms must be >= backoff.initial_ms");
    return ERR_OK;
}

static err_t run_at_field(json_t *v, int64_t *out, problem_t *p)
{
    if (!json_is_string(v) || clock_parse_rfc3339(json_string_value(v), out) != 0)
        return problem_set(p, ERR_VALIDATION, "run_at",
                           "run_at must be an RFC 3339 time such as 2026-01-02T03:04:05Z");
    return ERR_OK;
}

/* One field of an enqueue object; run_at/delay_ms land in *run_at. */
static err_t spec_field(job_t *j, const char *key, json_t *v, int64_t now, int64_t *run_at,
                        problem_t *p)
{
    int64_t n;
    err_t e = ERR_OK;
    if (strcmp(key, "id") == 0) {
        free(j->id);
        j->id = NULL;
        return name_field(v, "id", &j->id, p);
    }
    if (strcmp(key, "queue") == 0)
        return shared_name_field(v, "queue", j, job_set_queue, p);
    if (strcmp(key, "type") == 0)
        return shared_name_field(v, "type", j, job_set_type, p);
    if (strcmp(key, "breaker_key") == 0) /* null is the default: none given */
        return json_is_null(v) ? ERR_OK : name_field(v, "breaker_key", &j->breaker_key, p);
    if (strcmp(key, "args") == 0) {
        job_set_args(j, v);
        return ERR_OK;
    }
    if (strcmp(key, "priority") == 0)
        return priority_field(v, &j->priority, p);
    if (strcmp(key, "max_retries") == 0) {
        if (!(e = int_field(v, "max_retries", 0, JOB_RETRIES_MAX, &n, p)))
            j->max_retries = (int)n;
        return e;
    }
    if (strcmp(key, "timeout_ms") == 0)
        return int_field(v, "timeout_ms", JOB_TIMEOUT_MIN_MS, JOB_TIMEOUT_MAX_MS, &j->timeout_ms, p);
    if (strcmp(key, "backoff") == 0)
        return backoff_field(v, &j->backoff, p);
    if (strcmp(key, "run_at") == 0)
        return run_at_field(v, run_at, p);
    if (strcmp(key, "delay_ms") == 0) {
        if (!(e = int_field(v, "delay_ms", 0, DELAY_MAX_MS, &n, p)))
            *run_at = now + n;
        return e;
    }
    return problem_set(p, ERR_VALIDATION, key, "unknown field %s", key);
}

/* The built-in HTTP runners' jobs break per host: one dead site must not
 * hold back the others. "https://u@Files.Example.com:8443/x" gives
 * "files.example.com:8443". An explicit breaker_key wins; a URL without a
 * usable host gets none (the runner refuses it when it runs). */
static void default_breaker_key(job_t *j)
{
    if (j->breaker_key ||
        (strcmp(j->type, "http.download") != 0 && strcmp(j->type, "http.request") != 0))
        return;
    const char *url = json_string_value(json_object_get(job_args(j), "url"));
    if (!url)
        return;
    const char *h = strstr(url, "://");
    if (!h)
        return;
    h += 3;
    size_t n = strcspn(h, "/?#");
    const char *at = memchr(h, '@', n);
    if (at) {
        n -= (size_t)(at + 1 - h);
        h = at + 1;
    }
    char host[JOB_NAME_MAX + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && k < JOB_NAME_MAX; i++)
        if (h[i] != '[' && h[i] != ']')
            host[k++] = (char)tolower((unsigned char)h[i]);
    host[k] = '\0';
    if (job_name_valid(host))
        j->breaker_key = strdup(host);
}

static job_t *with_defaults(const job_defaults_t *d)
{
    job_t *j = job_new();
    if (j) {
        j->priority = 2;
        j->max_retries = d->max_retries;
        j->timeout_ms = d->timeout_ms;
        j->backoff = d->backoff;
    }
    return j;
}

static void finish(job_t *j, int64_t now, int64_t run_at)
{
    default_breaker_key(j);
    j->created_at = j->updated_at = now;
    j->run_at = run_at;
}

err_t job_build(const job_parts_t *in, json_t *extra, const job_defaults_t *d, int64_t now,
                job_t **out, problem_t *p)
{
    static const char *const passed[] = { "priority", "breaker_key", "backoff" };
    job_t *j = with_defaults(d);
    if (!j || !(j->id = strdup(in->id)) || job_set_queue(j, in->queue) != 0 ||
        job_set_type(j, in->type) != 0) {
        job_free(j);
        return problem_set(p, ERR_INTERNAL, "", "out of memory");
    }
    job_set_args(j, in->args);
    j->priority = in->priority;
    j->max_retries = in->max_retries;
    j->timeout_ms = in->timeout_ms;
    int64_t run_at = in->run_at;
    for (size_t i = 0; i < sizeof passed / sizeof passed[0]; i++) {
        json_t *v = json_object_get(extra, passed[i]);
        err_t e = v ? spec_field(j, passed[i], v, now, &run_at, p) : ERR_OK;
        if (e) {
            job_free(j);
            return e;
        }
    }
    finish(j, now, run_at);
    *out = j;
    return ERR_OK;
}

err_t job_parse_spec(json_t *spec, const job_defaults_t *d, int64_t now, job_t **out, problem_t *p)
{
    if (!json_is_object(spec))
        return problem_set(p, ERR_VALIDATION, "", "a job must be a JSON object");
    if (json_object_get(spec, "run_at") && json_object_get(spec, "delay_ms"))
        return problem_set(p, ERR_VALIDATION, "delay_ms", "give run_at or delay_ms, not both");
    job_t *j = with_defaults(d);
    if (!j)
        return problem_set(p, ERR_INTERNAL, "", "out of memory");
    int64_t run_at = now;
    const char *key;
    json_t *v;
    err_t e = ERR_OK;
    json_object_foreach(spec, key, v) {
        if ((e = spec_field(j, key, v, now, &run_at, p)))
            break;
    }
    if (!e && !j->type)
        e = problem_set(p, ERR_VALIDATION, "type", "type is required");
    if (!e && !j->queue && job_set_queue(j, "default") != 0)
        e = problem_set(p, ERR_INTERNAL, "", "out of memory");
    if (!e && !j->id && !(j->id = new_id(now)))
        e = problem_set(p, ERR_INTERNAL, "id", "could not generate an id");
    if (e) {
        job_free(j);
        return e;
    }
    finish(j, now, run_at);
    *out = j;
    return ERR_OK;
}

/* ---- stored documents ---- */

static int64_t doc_time(json_t *doc, const char *key)
{
    int64_t ms = 0;
    json_t *v = json_object_get(doc, key);
    if (json_is_string(v) && clock_parse_rfc3339(json_string_value(v), &ms) != 0)
        ms = 0;
    return ms;
}

static json_t *doc_ref(json_t *doc, const char *key)
{
    json_t *v = json_object_get(doc, key);
    return (v && !json_is_null(v)) ? json_incref(v) : NULL;
}

static err_t doc_lease(job_t *j, json_t *lease, problem_t *p)
{
    if (j->state != JOB_RUNNING)
        return ERR_OK;
    const char *id = json_string_value(json_object_get(lease, "id"));
    const char *worker = json_string_value(json_object_get(lease, "worker"));
    if (!id || strlen(id) != JOB_LEASE_ID_LEN || !job_lease_id_valid(id))
        return problem_set(p, ERR_INTERNAL, "lease", "running job %s has no lease", j->id);
    memcpy(j->lease_id, id, JOB_LEASE_ID_LEN + 1);
    j->lease_worker = worker ? strdup(worker) : NULL;
    j->lease_expires_at = doc_time(lease, "expires_at");
    return ERR_OK;
}

err_t job_from_doc(json_t *doc, job_t **out, problem_t *p)
{
    static const job_defaults_t none = { 0, 60000, { 1000, 3600000, 2.0, 0.2 } };
    json_t *spec = json_pack("{s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "id",
                             json_object_get(doc, "id"), "queue", json_object_get(doc, "queue"),
                             "type", json_object_get(doc, "type"), "args",
                             json_object_get(doc, "args"), "priority",
                             json_object_get(doc, "priority"), "max_retries",
                             json_object_get(doc, "max_retries"), "backoff",
                             json_object_get(doc, "backoff"));
    if (!spec)
        return problem_set(p, ERR_INTERNAL, "", "stored job is missing fields");
    json_t *bk = json_object_get(doc, "breaker_key");
    if (json_is_string(bk))
        json_object_set(spec, "breaker_key", bk);
    json_object_set(spec, "timeout_ms", json_object_get(doc, "timeout_ms"));
    job_t *j = NULL;
    err_t e = job_parse_spec(spec, &none, 0, &j, p);
    json_decref(spec);
    if (e)
        return e;
    const char *state = json_string_value(json_object_get(doc, "state"));
    if (!state || job_state_parse(state, &j->state) != 0) {
        job_free(j);
        return problem_set(p, ERR_INTERNAL, "state", "stored job has a bad state");
    }
    j->attempts = (int)json_integer_value(json_object_get(doc, "attempts"));
    j->cancel_requested = json_is_true(json_object_get(doc, "cancel_requested"));
    j->created_at = doc_time(doc, "created_at");
    j->updated_at = doc_time(doc, "updated_at");
    j->started_at = doc_time(doc, "started_at");
    j->finished_at = doc_time(doc, "finished_at");
    j->run_at = doc_time(doc, "run_at");
    j->progress = doc_ref(doc, "progress");
    j->result = doc_ref(doc, "result");
    json_t *errors = json_object_get(doc, "errors");
    if (json_is_array(errors) && json_array_size(errors) > 0) {
        json_decref(j->errors);
        j->errors = json_incref(errors);
    }
    json_t *fk = json_object_get(doc, "faktory");
    if (json_is_object(fk))
        job_set_faktory(j, fk);
    j->discard_failed = json_is_true(json_object_get(doc, "discard_failed"));
    if ((e = doc_lease(j, json_object_get(doc, "lease"), p))) {
        job_free(j);
        return e;
    }
    j->stored = true; /* read from the store: its row exists, in this state */
    j->stored_state = (unsigned char)j->state;
    *out = j;
    return ERR_OK;
}
