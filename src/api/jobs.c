/* /v1/jobs: enqueue (one or a batch), read, list, cancel, retry, delete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "engine/engine.h"
#include "core/fields.h"
#include "util/clock.h"
#include "util/utf8.h"
#include "util/sbuf.h"

#define BATCH_MAX 1000
#define LIST_MAX 1000
#define LIST_DEFAULT 100

static int64_t now_ms(void) { return clock_now_ms(); }

/* ---- POST /v1/jobs ---- */

static void enqueue_parsed(api_call_t *c)
{
    bool created;
    const job_t *out;
    problem_t p;
    job_t *job = c->job;
    c->job = NULL; /* the engine owns it from here, whatever happens */
    if (engine_enqueue(c->api->engine, job, &created, &out, &p) != ERR_OK) {
        api_reply_problem(c, &p);
        return;
    }
    api_reply_durable(c, created ? 201 : 200,
                      job_json(out, api_minimal(c) ? JOB_JSON_MINIMAL : JOB_JSON_PUBLIC));
}

void api_enqueue(api_call_t *c)
{
    problem_t p;
    if (api_refuse_writes(c, true))
        return;
    if (!(c->body = http_body_json(c->r, false, &p)) ||
        job_parse_spec(c->body, &c->api->cfg->job, now_ms(), &c->job, &p) != ERR_OK) {
        api_reply_problem(c, &p);
        return;
    }
    if (api_shed(c, c->job->priority, "priority"))
        return;
    if (json_object_get(c->body, "id"))
        api_with_job(c, c->job->id, enqueue_parsed); /* it may exist, finished, in the store */
    else
        enqueue_parsed(c);
}

/* ---- POST /v1/jobs/batch ---- */

/* The batch's own state (api_call.ctx): its parsed jobs, owned until each
 * is handed to the engine. */
typedef struct batch {
    job_t **jobs;
    size_t n;
    size_t nread; /* ids asked of the store */
} batch_t;

static batch_t *batch_of(api_call_t *c) { return c->ctx; }

static void batch_free(void *p)
{
    batch_t *b = p;
    for (size_t i = 0; i < b->n; i++)
        job_free(b->jobs[i]);
    free(b->jobs);
    free(b);
}

static void batch_reply_problem(api_call_t *c, size_t i, problem_t *p)
{
    char prefix[32];
    snprintf(prefix, sizeof prefix, "jobs[%zu]%s", i, p->field[0] ? "." : "");
    problem_prefix_field(p, prefix);
    api_reply_problem(c, p);
}

/* All-or-nothing: every job is checked before any is accepted. */
static void batch_enqueue(api_call_t *c)
{
    problem_t p;
    for (size_t i = 0; i < batch_of(c)->n; i++) {
        bool clash = false;
        for (size_t k = 0; k < i && !clash; k++)
            clash = strcmp(batch_of(c)->jobs[k]->id, batch_of(c)->jobs[i]->id) == 0 &&
                    !job_same_spec(batch_of(c)->jobs[k], batch_of(c)->jobs[i]);
        if (clash) {
            problem_set(&p, ERR_CONFLICT, "id", "id %s appears twice with different content",
                        batch_of(c)->jobs[i]->id);
            batch_reply_problem(c, i, &p);
            return;
        }
        if (engine_enqueue_check(c->api->engine, batch_of(c)->jobs[i], &p) != ERR_OK) {
            batch_reply_problem(c, i, &p);
            return;
        }
    }
    job_json_mode_t mode = api_minimal(c) ? JOB_JSON_MINIMAL : JOB_JSON_PUBLIC;
    sbuf_t out;
    sbuf_init(&out, (mode == JOB_JSON_MINIMAL ? 64 : 1024) * batch_of(c)->n);
    sbuf_adds(&out, "{\"jobs\":[");
    for (size_t i = 0; i < batch_of(c)->n; i++) {
        bool created;
        const job_t *j;
        job_t *job = batch_of(c)->jobs[i];
        batch_of(c)->jobs[i] = NULL;
        if (engine_enqueue(c->api->engine, job, &created, &j, &p) != ERR_OK)
            continue; /* checked above; only out of memory gets here */
        if (out.p[out.len - 1] == '}')
            sbuf_addc(&out, ',');
        job_write_json(j, mode, &out);
    }
    sbuf_adds(&out, "]}");
    api_reply_durable(c, 201, sbuf_take(&out));
}

/* Explicit ids may name finished jobs that live only in the store: one
 * read fetches all of them (whatever the batch size, one read slot). */
static void read_batch_ids(api_call_t *c);

static void on_batch_loaded(api_call_t *c, json_t *docs, const char *error)
{
    if (error) {
        api_reply_read_error(c, error);
        return;
    }
    if (json_array_size(docs) < batch_of(c)->nread) { /* the read's bound (api_read_jobs) */
        problem_t p;
        problem_set(&p, ERR_VALIDATION, "jobs", STORE_GET_TOO_MUCH, api_read_budget(c));
        p.status = 413;
        http_reply_problem(c->r, &p);
        return;
    }
    if (engine_deletes(c->api->engine) != c->deletes_seen) {
        read_batch_ids(c); /* as api_with_job: never resurrect a deleted job */
        return;
    }
    size_t i;
    json_t *doc;
    json_array_foreach(docs, i, doc) {
        const char *why = api_unreadable(c, doc);
        if (why) {
            const char *id = json_string_value(json_object_get(doc, "id"));
            for (size_t k = 0; k < batch_of(c)->n; k++)
                if (strcmp(batch_of(c)->jobs[k]->id, id) == 0) {
                    char field[48];
                    snprintf(field, sizeof field, "jobs[%zu].id", k);
                    api_reply_unreadable(c, field, id, why);
                    return;
                }
        }
    }
    engine_hold_eviction(c->api->engine);
    json_array_foreach(docs, i, doc)
        api_load_doc(c, doc);
    batch_enqueue(c);
    engine_release_eviction(c->api->engine);
}

static void read_batch_ids(api_call_t *c)
{
    json_t *specs = json_object_get(c->body, "jobs");
    const char **ids = malloc(batch_of(c)->n * sizeof *ids);
    if (!ids) {
        api_reply_error(c, ERR_UNAVAILABLE, "", "out of memory");
        return;
    }
    size_t n = 0;
    for (size_t i = 0; i < batch_of(c)->n; i++)
        if (json_object_get(json_array_get(specs, i), "id") &&
            !engine_get(c->api->engine, batch_of(c)->jobs[i]->id) &&
            store_may_hold(c->api->store, batch_of(c)->jobs[i]->id))
            ids[n++] = batch_of(c)->jobs[i]->id;
    c->deletes_seen = engine_deletes(c->api->engine);
    batch_of(c)->nread = n;
    if (n)
        api_read_jobs(c, ids, n, on_batch_loaded); /* copies the ids */
    else
        batch_enqueue(c);
    free(ids);
}

static int parse_batch(api_call_t *c, problem_t *p)
{
    static const char *const allowed[] = { "jobs", NULL };
    json_t *jobs = json_object_get(c->body, "jobs");
    if (fields_only(c->body, allowed, "", p) != 0)
        return -1;
    if (!json_is_array(jobs) || json_array_size(jobs) < 1 || json_array_size(jobs) > BATCH_MAX)
        return problem_set(p, ERR_VALIDATION, "jobs", "jobs must be an array of 1-%d jobs",
                           BATCH_MAX), -1;
    batch_t *b = calloc(1, sizeof *b);
    if (!b || !(b->jobs = calloc(json_array_size(jobs), sizeof *b->jobs))) {
        free(b);
        return problem_set(p, ERR_UNAVAILABLE, "", "out of memory"), -1;
    }
    b->n = json_array_size(jobs);
    api_set_ctx(c, b, NULL, batch_free);
    int64_t now = now_ms();
    for (size_t i = 0; i < batch_of(c)->n; i++) {
        if (job_parse_spec(json_array_get(jobs, i), &c->api->cfg->job, now, &batch_of(c)->jobs[i], p)) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "jobs[%zu]%s", i, p->field[0] ? "." : "");
            problem_prefix_field(p, prefix);
            return -1;
        }
    }
    return 0;
}

/* All or nothing here too: the batch goes only if its least urgent job may. */
static bool shed_batch(api_call_t *c)
{
    size_t worst = 0;
    for (size_t i = 1; i < batch_of(c)->n; i++)
        if (batch_of(c)->jobs[i]->priority > batch_of(c)->jobs[worst]->priority)
            worst = i;
    char field[48];
    snprintf(field, sizeof field, "jobs[%zu].priority", worst);
    return api_shed(c, batch_of(c)->jobs[worst]->priority, field);
}

void api_enqueue_batch(api_call_t *c)
{
    problem_t p;
    if (api_refuse_writes(c, true))
        return;
    if (!(c->body = http_body_json(c->r, false, &p)) || parse_batch(c, &p) != 0) {
        api_reply_problem(c, &p);
        return;
    }
    if (shed_batch(c))
        return;
    read_batch_ids(c);
}

/* ---- GET /v1/jobs/{id} ---- */

static void on_stored_job(api_call_t *c, json_t *doc, const char *error)
{
    const char *why;
    if (error) {
        api_reply_read_error(c, error);
    } else if (!json_is_object(doc)) {
        api_reply_error(c, ERR_NOT_FOUND, "id", "no job with that id");
    } else if ((why = api_unreadable(c, doc))) {
        problem_t p;
        problem_set(&p, ERR_INTERNAL, "id", "job %s is stored but cannot be read (%s): it is "
                    "quarantined (GET /v1/quarantine)", http_param(c->r, 0), why);
        api_reply_problem(c, &p);
    } else {
        json_t *copy = json_deep_copy(doc);
        api_doc_public(copy);
        json_object_set_new(copy, "blocked_by", json_null()); /* finished: nothing holds it */
        http_reply_json(c->r, 200, copy);
    }
}

/* The public form plus blocked_by: why a queued job is not being leased. */
static char *job_text_with_hold(engine_t *e, const job_t *j)
{
    sbuf_t s;
    sbuf_init(&s, 1024);
    job_write_json(j, JOB_JSON_PUBLIC, &s);
    char buf[2 * JOB_NAME_MAX + 32];
    s.len--; /* reopen the object */
    sbuf_adds(&s, ",\"blocked_by\":");
    sbuf_add_jstr(&s, engine_blocked_by(e, j, buf, sizeof buf));
    sbuf_addc(&s, '}');
    return sbuf_take(&s);
}

void api_get_job(api_call_t *c)
{
    const char *id = http_param(c->r, 0);
    if (!api_valid_id(c, id))
        return;
    const job_t *j = engine_get(c->api->engine, id);
    if (j)
        api_reply_text(c, 200, job_text_with_hold(c->api->engine, j));
    else if (!store_may_hold(c->api->store, id))
        on_stored_job(c, NULL, NULL);
    else
        api_read_job(c, id, on_stored_job);
}

/* ---- GET /v1/jobs ---- */

static void on_list(api_call_t *c, json_t *result, const char *error)
{
    if (error) {
        api_reply_read_error(c, error);
        return;
    }
    json_t *copy = json_deep_copy(result);
    size_t i;
    json_t *doc;
    json_array_foreach(json_object_get(copy, "jobs"), i, doc)
        api_doc_public(doc);
    char *text = api_dump(copy);
    if (text)
        api_cache_fill(c, text);
    api_reply_text(c, 200, text);
}

static int parse_cursor(const char *s, store_query_t *q, problem_t *p)
{
    char *end;
    long long t = strtoll(s, &end, 10);
    if (end == s || *end != ':' || !job_name_valid(end + 1))
        return problem_set(p, ERR_VALIDATION, "cursor", "cursor is not one this server gave"), -1;
    q->has_cursor = true;
    q->cursor_created_at = t;
    q->cursor_id = end + 1;
    return 0;
}

static int parse_priority(const char *v, int *out, problem_t *p)
{
    for (int i = 0; i < 5; i++) {
        char digit[2] = { (char)('0' + i), 0 };
        if (strcmp(v, job_priority_name(i)) == 0 || strcmp(v, digit) == 0) {
            *out = i;
            return 0;
        }
    }
    return problem_set(p, ERR_VALIDATION, "priority",
                       "priority must be critical, high, normal, low, background or 0-4"), -1;
}

/* One filter, by name, from wherever it came (query string or body). */
typedef struct filter_src {
    api_filter_get get;
    void *ud;
    const char *prefix; /* for field names in problems: "" or "filter." */
} filter_src_t;

static const char *fget(const filter_src_t *f, const char *name) { return f->get(f->ud, name); }

static const char *field_name(const filter_src_t *f, const char *name, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s", f->prefix, name);
    return buf;
}

static int parse_time(const filter_src_t *f, const char *name, int64_t *ms, problem_t *p)
{
    char field[64];
    const char *v = fget(f, name);
    if (v && (clock_parse_rfc3339(v, ms) != 0 || *ms <= 0))
        return problem_set(p, ERR_VALIDATION, field_name(f, name, field, sizeof field),
                           "%s must be an RFC 3339 time", name), -1;
    return 0;
}

static int parse_name(const filter_src_t *f, const char *name, const char **out, problem_t *p)
{
    char field[64];
    *out = fget(f, name);
    if (*out && !job_name_valid(*out))
        return problem_set(p, ERR_VALIDATION, field_name(f, name, field, sizeof field),
                           "%s is not a valid name", name), -1;
    return 0;
}

/* The filters GET /v1/jobs and POST /v1/jobs/bulk share (docs/api.md). */
int api_parse_job_filter(api_filter_get get, void *ud, const char *prefix, store_query_t *q,
                         problem_t *p)
{
    filter_src_t f = { get, ud, prefix };
    char field[64];
    const char *state = fget(&f, "state"), *prio = fget(&f, "priority"), *text = fget(&f, "text");
    job_state_t st;
    *q = (store_query_t){ .state = state, .text = text, .limit = LIST_DEFAULT };
    if (parse_name(&f, "queue", &q->queue, p) || parse_name(&f, "type", &q->type, p) ||
        parse_name(&f, "breaker_key", &q->breaker_key, p) ||
        parse_name(&f, "worker", &q->worker, p))
        return -1;
    if (state && job_state_parse(state, &st) != 0)
        return problem_set(p, ERR_VALIDATION, field_name(&f, "state", field, sizeof field),
                           "state must be pending, queued, running, retrying, completed, "
                           "failed or cancelled"), -1;
    if (prio && parse_priority(prio, &q->priority, p) != 0)
        return snprintf(p->field, sizeof p->field, "%spriority", prefix), -1;
    q->by_priority = prio != NULL;
    if (text && (!text[0] || strlen(text) > 200 || !utf8_valid(text, strlen(text))))
        return problem_set(p, ERR_VALIDATION, field_name(&f, "text", field, sizeof field),
                           "text must be 1-200 bytes of UTF-8"), -1;
    return parse_time(&f, "created_after", &q->created_from, p) ||
           parse_time(&f, "created_before", &q->created_to, p) ||
           parse_time(&f, "finished_after", &q->finished_from, p) ||
           parse_time(&f, "finished_before", &q->finished_to, p);
}

static const char *query_get(void *ud, const char *name) { return http_query(ud, name); }

static int parse_list_query(api_call_t *c, store_query_t *q, problem_t *p)
{
    static const char *const known[] = { "queue", "state", "type", "priority", "breaker_key",
                                         "worker", "text", "created_after", "created_before",
                                         "finished_after", "finished_before", "limit",
                                         "cursor", NULL };
    const char *unknown = http_query_unknown(c->r, known);
    if (unknown)
        return problem_set(p, ERR_VALIDATION, job_name_valid(unknown) ? unknown : "query",
                           "unknown query parameter (allowed: queue, state, type, priority, "
                           "breaker_key, worker, text, created_after, created_before, "
                           "finished_after, finished_before, limit, cursor)"), -1;
    if (api_parse_job_filter(query_get, c->r, "", q, p) != 0)
        return -1;
    const char *limit = http_query(c->r, "limit"), *cursor = http_query(c->r, "cursor");
    if (limit) {
        char *end;
        long n = strtol(limit, &end, 10);
        if (end == limit || *end || n < 1 || n > LIST_MAX)
            return problem_set(p, ERR_VALIDATION, "limit", "limit must be 1-%d", LIST_MAX), -1;
        q->limit = (int)n;
    }
    return cursor ? parse_cursor(cursor, q, p) : 0;
}

void api_list_jobs(api_call_t *c)
{
    store_query_t q;
    problem_t p;
    if (parse_list_query(c, &q, &p) != 0) {
        api_reply_problem(c, &p);
        return;
    }
    char key[7 * JOB_NAME_MAX + 256];
    /* The free text goes last: the names cannot hold '|', it can. */
    snprintf(key, sizeof key, "list|%s|%s|%s|%d|%s|%s|%lld|%lld|%lld|%lld|%d|%lld:%s|%s",
             q.queue ? q.queue : "", q.state ? q.state : "", q.type ? q.type : "", q.by_priority ? q.priority : -1,
             q.breaker_key ? q.breaker_key : "", q.worker ? q.worker : "",
             (long long)q.created_from, (long long)q.created_to, (long long)q.finished_from,
             (long long)q.finished_to, q.limit, (long long)q.cursor_created_at,
             q.has_cursor ? q.cursor_id : "", q.text ? q.text : "");
    const char *hit = api_cache_lookup(c, key, q.queue);
    if (hit) {
        api_reply_text(c, 200, strdup(hit));
        return;
    }
    api_read_list(c, &q, on_list); /* copies q's strings */
}

/* ---- cancel, retry, delete ---- */

typedef err_t (*job_op_fn)(engine_t *e, const char *id, const job_t **out, problem_t *p);

static void run_job_op(api_call_t *c, job_op_fn fn)
{
    const job_t *out;
    problem_t p;
    if (fn(c->api->engine, http_param(c->r, 0), &out, &p) != ERR_OK)
        api_reply_problem(c, &p);
    else
        api_reply_durable(c, 200, job_json(out, JOB_JSON_PUBLIC));
}

static void do_cancel(api_call_t *c) { run_job_op(c, engine_cancel); }
static void do_retry(api_call_t *c) { run_job_op(c, engine_retry); }

static void do_delete(api_call_t *c)
{
    problem_t p;
    if (engine_delete(c->api->engine, http_param(c->r, 0), &p) != ERR_OK)
        api_reply_problem(c, &p);
    else
        api_reply_durable(c, 204, NULL);
}

static void with_path_job(api_call_t *c, void (*cont)(api_call_t *c), bool when_draining)
{
    if (!api_valid_id(c, http_param(c->r, 0)) || api_refuse_writes(c, when_draining))
        return;
    api_with_job(c, http_param(c->r, 0), cont);
}

void api_cancel(api_call_t *c) { with_path_job(c, do_cancel, false); }
void api_retry(api_call_t *c) { with_path_job(c, do_retry, true); }
void api_delete(api_call_t *c)
{
    c->delete_unreadable = true;
    with_path_job(c, do_delete, false);
}

/* ---- GET /v1/quarantine ---- */

static void add_quarantined(void *ud, const char *id, const char *why, int64_t at_ms)
{
    char at[32];
    clock_format_rfc3339(at_ms, at, sizeof at);
    json_array_append_new(ud, json_pack("{s:s, s:s, s:s}", "id", id, "error", why, "found_at", at));
}

void api_quarantine(api_call_t *c)
{
    json_t *list = json_array();
    store_quarantine_foreach(c->api->store, add_quarantined, list);
    http_reply_json(c->r, 200, json_pack("{s:o, s:I}", "jobs", list, "count",
                                         (json_int_t)store_quarantine_count(c->api->store)));
}
