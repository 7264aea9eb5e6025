#include "faktory/job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "util/clock.h"
#include "util/jsonb.h"

/* Faktory's 1-9 (higher is more urgent, 5 the default) onto jobq's five. */
static int priority_from_faktory(json_int_t n)
{
    if (n >= 9)
        return 0; /* critical */
    if (n >= 7)
        return 1; /* high */
    if (n >= 4)
        return 2; /* normal */
    if (n >= 2)
        return 3; /* low */
    return 4;     /* background */
}

/* The fields a PUSH's job may have, found in one pass over its members
 * (the parser has refused duplicate keys): a lookup by name for each was
 * ~2 k instructions a job. Anything else it carries is ignored. */
typedef struct push_fields {
    json_t *jid, *jobtype, *queue, *retry, *reserve_for, *priority, *backtrace, *at, *args,
        *created_at, *custom;
} push_fields_t;

static json_t **slot(push_fields_t *f, const char *k)
{
    json_t **one = NULL, **two = NULL;
    const char *a = NULL, *b = NULL;
    switch (k[0]) {
    case 'j': one = &f->jid, a = "jid", two = &f->jobtype, b = "jobtype"; break;
    case 'q': one = &f->queue, a = "queue"; break;
    case 'r': one = &f->retry, a = "retry", two = &f->reserve_for, b = "reserve_for"; break;
    case 'p': one = &f->priority, a = "priority"; break;
    case 'b': one = &f->backtrace, a = "backtrace"; break;
    case 'a': one = &f->at, a = "at", two = &f->args, b = "args"; break;
    case 'c': one = &f->created_at, a = "created_at", two = &f->custom, b = "custom"; break;
    default: return NULL;
    }
    return strcmp(k, a) == 0 ? one : b && strcmp(k, b) == 0 ? two : NULL;
}

static void collect(json_t *obj, push_fields_t *f)
{
    *f = (push_fields_t){ 0 };
    const char *k;
    json_t *v, **to;
    json_object_foreach(obj, k, v) {
        if ((to = slot(f, k)))
            *to = v;
    }
}

static err_t int_field(json_t *v, const char *key, json_int_t lo, json_int_t hi,
                       json_int_t def, json_int_t *out, problem_t *p)
{
    *out = def;
    if (!v || json_is_null(v))
        return ERR_OK;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return problem_set(p, ERR_VALIDATION, key, "%s must be an integer from %lld to %lld",
                           key, (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return ERR_OK;
}

static err_t name_field(json_t *v, const char *key, size_t min, const char *def,
                        const char **out, problem_t *p)
{
    if (!v && def) {
        *out = def;
        return ERR_OK;
    }
    const char *s = json_string_value(v);
    if (!s)
        return problem_set(p, ERR_VALIDATION, key, "%s is required and must be a string", key);
    if (json_string_length(v) < min || !job_name_valid(s))
        return problem_set(p, ERR_VALIDATION, key, "%s must be %zu-%d characters of "
                           "[A-Za-z0-9._:-]", key, min, JOB_NAME_MAX);
    *out = s;
    return ERR_OK;
}

/* "at": absent, null or "" means now. */
static err_t at_field(json_t *v, int64_t now, int64_t *run_at, problem_t *p)
{
    *run_at = now;
    if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)))
        return ERR_OK;
    if (!json_is_string(v) || clock_parse_rfc3339(json_string_value(v), run_at) != 0)
        return problem_set(p, ERR_VALIDATION, "at",
                           "at must be an RFC 3339 time such as 2026-01-02T03:04:05.000Z");
    return ERR_OK;
}

/* What comes back unchanged: the fields jobq has no column for, as the
 * text the job keeps (a plain extension, job.h), written straight from
 * the PUSH's values: a tree built only to be dumped was ~2.5 k
 * instructions a job. NULL (and p filled) when custom is not an object. */
static char *extension_text(const push_fields_t *f, json_int_t retry, problem_t *p)
{
    if (f->custom && !json_is_null(f->custom) && !json_is_object(f->custom))
        return problem_set(p, ERR_VALIDATION, "custom", "custom must be an object"), NULL;
    sbuf_t s;
    sbuf_init(&s, 64);
    sbuf_adds(&s, "{\"retry\":");
    sbuf_add_int(&s, retry);
    if (f->custom && json_is_object(f->custom)) {
        sbuf_adds(&s, ",\"custom\":");
        jsonb_write(&s, f->custom);
    }
    if (f->created_at && json_is_string(f->created_at)) {
        sbuf_adds(&s, ",\"created_at\":");
        sbuf_add_jstrn(&s, json_string_value(f->created_at), json_string_length(f->created_at));
    }
    if (f->backtrace && json_is_integer(f->backtrace)) {
        sbuf_adds(&s, ",\"backtrace\":");
        sbuf_add_int(&s, json_integer_value(f->backtrace));
    }
    if (f->priority && json_is_integer(f->priority)) {
        sbuf_adds(&s, ",\"priority\":");
        sbuf_add_int(&s, json_integer_value(f->priority));
    }
    sbuf_addc(&s, '}');
    return sbuf_take(&s);
}

err_t fwp_job_parse(json_t *obj, const job_defaults_t *d, int64_t now, job_t **out, problem_t *p)
{
    const char *jid, *type, *queue;
    json_int_t retry, reserve, fprio;
    int64_t run_at;
    if (!json_is_object(obj))
        return problem_set(p, ERR_VALIDATION, "", "a job must be a JSON object");
    push_fields_t f;
    collect(obj, &f);
    if (name_field(f.jid, "jid", 8, NULL, &jid, p) ||
        name_field(f.jobtype, "jobtype", 1, NULL, &type, p) ||
        name_field(f.queue, "queue", 1, "default", &queue, p) ||
        int_field(f.retry, "retry", -1, 1000, FWP_RETRY_DEFAULT, &retry, p) ||
        int_field(f.reserve_for, "reserve_for", 60, 86400, FWP_RESERVE_DEFAULT_S, &reserve, p) ||
        int_field(f.priority, "priority", 1, 9, 5, &fprio, p) ||
        int_field(f.backtrace, "backtrace", 0, 1000, 0, &(json_int_t){ 0 }, p) ||
        at_field(f.at, now, &run_at, p))
        return p->type;
    if (!json_is_array(f.args))
        return problem_set(p, ERR_VALIDATION, "args", "args is required and must be an array");
    if (f.created_at && !json_is_null(f.created_at) && !json_is_string(f.created_at))
        return problem_set(p, ERR_VALIDATION, "created_at", "created_at must be a string");
    char *ext = extension_text(&f, retry, p);
    if (!ext)
        return p->type;
    /* Only custom.* can still be refused (job_build), so its errors are
     * named under custom. */
    job_parts_t parts = { .id = jid, .queue = queue, .type = type, .args = f.args,
                          .priority = priority_from_faktory(fprio),
                          .max_retries = retry < 0 ? 0 : (int)retry,
                          .timeout_ms = reserve * 1000, .run_at = run_at };
    job_t *j = NULL;
    err_t e = job_build(&parts, f.custom, d, now, &j, p);
    if (e) {
        free(ext);
        problem_prefix_field(p, "custom.");
        return e;
    }
    if (!json_object_get(f.custom, "backoff"))
        j->backoff.curve = BACKOFF_FAKTORY;
    j->discard_failed = retry == 0;
    job_set_faktory_plain(j, ext, f.created_at && json_is_string(f.created_at));
    *out = j;
    return ERR_OK;
}

err_t fwp_errtype(const char *errtype)
{
    err_t t;
    return err_parse(errtype, &t) == 0 ? t : ERR_INTERNAL;
}

static json_t *time_or_null(int64_t ms) { return ms ? clock_json(ms) : json_null(); }

json_t *fwp_job_failure(const job_t *j)
{
    json_t *last = json_array_get(j->errors, json_array_size(j->errors) - 1);
    if (!last)
        return NULL;
    json_t *ctx = json_object_get(last, "context");
    const char *msg = json_string_value(json_object_get(last, "message"));
    const char *errtype = json_string_value(json_object_get(ctx, "errtype"));
    if (!errtype)
        errtype = msg && strcmp(msg, ENGINE_LEASE_EXPIRED) == 0
                      ? "ReservationExpired"
                      : json_string_value(json_object_get(last, "type"));
    json_int_t count = json_integer_value(json_object_get(last, "attempt")) - 1;
    if (count < 0)
        count = 0;
    json_int_t left = j->max_retries - count;
    json_t *bt = json_object_get(ctx, "backtrace");
    bool retried = j->state == JOB_RETRYING || j->state == JOB_RUNNING || j->state == JOB_QUEUED;
    return json_pack("{s:I, s:I, s:O, s:o, s:s, s:s, s:o}", "retry_count", count, "remaining",
                     left > 0 ? left : 0, "failed_at", json_object_get(last, "at"), "next_at",
                     retried ? time_or_null(j->run_at) : json_null(), "message", msg ? msg : "",
                     "errtype", errtype ? errtype : "unknown", "backtrace",
                     json_is_array(bt) ? json_incref(bt) : json_array());
}

static void add_json(sbuf_t *s, const char *key, json_t *v)
{
    sbuf_addc(s, ',');
    sbuf_add_jstr(s, key);
    sbuf_addc(s, ':');
    jsonb_write(s, v);
}

/* key_colon: `,"key":"`, a literal. Neither it nor the time needs escaping:
 * written as they are (~0.4 k instructions each through the escaper). */
static void add_time(sbuf_t *s, const char *key_colon, int64_t ms)
{
    char buf[32];
    if (clock_format_rfc3339(ms, buf, sizeof buf) != 0)
        return;
    sbuf_adds(s, key_colon);
    sbuf_adds(s, buf);
    sbuf_addc(s, '"');
}

/* A job enqueued over HTTP: what Faktory has no field for goes in custom. */
static json_t *jobq_custom(const job_t *j, bool wrapped)
{
    json_t *c = json_pack("{s:{s:s, s:s?, s:s, s:i}}", "jobq", "priority",
                          job_priority_name(j->priority), "breaker_key", j->breaker_key,
                          "lease_id", j->lease_id, "attempt", j->attempts);
    if (c && wrapped)
        json_object_set_new(json_object_get(c, "jobq"), "args_wrapped", json_true());
    return c;
}

/* The last failure, if any, and the object's closing brace. */
static void close_job(sbuf_t *s, const job_t *j)
{
    json_t *f = fwp_job_failure(j);
    if (f) {
        add_json(s, "failure", f);
        json_decref(f);
    }
    sbuf_addc(s, '}');
}

/* A plain extension's members, copied: retry, and custom, created_at,
 * backtrace and priority where the PUSH had them. */
static void add_plain(sbuf_t *s, const job_t *cj)
{
    job_t *j = (job_t *)cj; /* only the text cache fills */
    const char *t = job_value_text(&j->cache_faktory, j->faktory);
    size_t n = strlen(t);
    if (n > 2) {
        sbuf_addc(s, ',');
        sbuf_add(s, t + 1, n - 2);
    }
    if (!j->faktory_created)
        add_time(s, ",\"created_at\":\"", j->created_at);
}

void fwp_job_write(const job_t *j, sbuf_t *s)
{
    bool plain = j->faktory_plain && job_has_faktory(j);
    json_t *ext = plain ? NULL : job_faktory(j), *v;
    size_t alen;
    const char *text = job_args_text(j, &alen);
    bool wrap = *text != '[';
    sbuf_adds(s, "{\"jid\":");
    sbuf_add_jstr(s, j->id);
    sbuf_adds(s, ",\"jobtype\":");
    sbuf_add_jstr(s, j->type);
    sbuf_adds(s, ",\"queue\":");
    sbuf_add_jstr(s, j->queue);
    if (wrap) {
        json_t *args = json_pack("[O]", job_args(j));
        add_json(s, "args", args);
        json_decref(args);
    } else { /* the text the job keeps: no dump */
        sbuf_adds(s, ",\"args\":");
        sbuf_add(s, text, alen);
    }
    add_time(s, ",\"enqueued_at\":\"", j->run_at > j->created_at ? j->run_at : j->created_at);
    sbuf_adds(s, ",\"reserve_for\":");
    sbuf_add_int(s, j->timeout_ms / 1000);
    if (plain) {
        add_plain(s, j);
        close_job(s, j);
        return;
    }
    if ((v = json_object_get(ext, "created_at")))
        add_json(s, "created_at", v);
    else
        add_time(s, ",\"created_at\":\"", j->created_at);
    sbuf_adds(s, ",\"retry\":");
    v = json_object_get(ext, "retry");
    sbuf_add_int(s, v ? json_integer_value(v) : j->max_retries);
    static const char *const kept[] = { "priority", "backtrace" };
    for (size_t i = 0; i < 2; i++)
        if ((v = json_object_get(ext, kept[i])))
            add_json(s, kept[i], v);
    if (ext) {
        if ((v = json_object_get(ext, "custom")))
            add_json(s, "custom", v);
    } else {
        json_t *c = jobq_custom(j, wrap);
        add_json(s, "custom", c);
        json_decref(c);
    }
    close_job(s, j);
}
