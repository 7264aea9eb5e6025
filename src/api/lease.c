/* Workers: lease, heartbeat, complete, fail and batched ack. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "engine/engine.h"
#include "metrics/metrics.h"
#include "metrics/workers.h"
#include "core/fields.h"
#include "util/clock.h"
#include "util/sbuf.h"

#define ACK_MAX 1000
#define WAIT_MAX_MS 60000
#define ERROR_MESSAGE_MAX 8192

static int int_in(json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t def,
                  int64_t *out, problem_t *p)
{
    json_t *v = json_object_get(obj, key);
    *out = def;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return problem_set(p, ERR_VALIDATION, key, "%s must be an integer from %lld to %lld",
                           key, (long long)lo, (long long)hi), -1;
    *out = json_integer_value(v);
    return 0;
}

/* ---- POST /v1/lease ---- */

static char *lease_reply(api_call_t *c, job_t **jobs, int n)
{
    job_json_mode_t mode = api_minimal(c) ? JOB_JSON_LEASED_MINIMAL : JOB_JSON_LEASED;
    sbuf_t s;
    sbuf_init(&s, (mode == JOB_JSON_LEASED ? 1024 : 384) * (size_t)(n + 1));
    sbuf_adds(&s, "{\"jobs\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            sbuf_addc(&s, ',');
        job_write_json(jobs[i], mode, &s);
    }
    sbuf_adds(&s, "]}");
    return sbuf_take(&s);
}

/* A lease request's own state (api_call.ctx): the engine's waiter and the
 * queue names it points at (borrowed from the request body). */
typedef struct lease_ctx {
    engine_waiter_t w;
    const char *queues[ENGINE_LEASE_MAX];
    bool counted; /* waiting, counted in api->waiting */
} lease_ctx_t;

static void uncount(api_call_t *c, lease_ctx_t *l)
{
    if (l->counted)
        c->api->waiting--;
    l->counted = false;
}

/* The request is gone (a long poll still waiting: the server is stopping). */
static void lease_detach(api_call_t *c)
{
    lease_ctx_t *l = c->ctx;
    if (l->counted)
        engine_waiter_cancel(c->api->engine, &l->w);
    uncount(c, l);
}

/* A lease is answered without waiting for its write to be durable: if jobq
 * dies first, the job is simply queued again (at-least-once), and the
 * worker's complete/fail is what must be, and is, durable. */
static void on_leased(engine_waiter_t *w, job_t **jobs, int n)
{
    api_call_t *c = w->ud;
    uncount(c, c->ctx);
    api_reply_text(c, 200, lease_reply(c, jobs, n));
}

static bool lessee_alive(engine_waiter_t *w)
{
    api_call_t *c = w->ud;
    return http_peer_alive(c->r);
}

static int parse_lease(api_call_t *c, lease_ctx_t *l, int64_t *wait_ms, problem_t *p)
{
    static const char *const allowed[] = { "worker", "queues", "max", "wait_ms", NULL };
    json_t *b = c->body, *worker = json_object_get(b, "worker"), *qs = json_object_get(b, "queues");
    int64_t max;
    if (fields_only(b, allowed, "", p) || int_in(b, "max", 1, ENGINE_LEASE_MAX, 1, &max, p) ||
        int_in(b, "wait_ms", 0, WAIT_MAX_MS, 0, wait_ms, p))
        return -1;
    if (!json_is_string(worker) || !job_name_valid(json_string_value(worker)))
        return problem_set(p, ERR_VALIDATION, "worker",
                           "worker is required: 1-200 characters of [A-Za-z0-9._:-]"), -1;
    l->w = (engine_waiter_t){ .worker = json_string_value(worker), .queues = l->queues,
                              .max = (int)max, .cb = on_leased, .alive = lessee_alive, .ud = c };
    if (!qs) {
        l->queues[l->w.nqueues++] = "default";
        return 0;
    }
    if (!json_is_array(qs) || json_array_size(qs) < 1 || json_array_size(qs) > ENGINE_LEASE_MAX)
        return problem_set(p, ERR_VALIDATION, "queues", "queues must be an array of 1-%d names",
                           ENGINE_LEASE_MAX), -1;
    size_t i;
    json_t *q;
    json_array_foreach(qs, i, q) {
        if (!json_is_string(q) || !job_name_valid(json_string_value(q)))
            return problem_set(p, ERR_VALIDATION, "queues", "queues[%zu] is not a valid name",
                               i), -1;
        l->queues[l->w.nqueues++] = json_string_value(q);
    }
    return 0;
}

void api_lease(api_call_t *c)
{
    problem_t p;
    int64_t wait_ms;
    if (api_refuse_writes(c, true))
        return;
    lease_ctx_t *l = calloc(1, sizeof *l);
    if (!l) {
        api_reply_error(c, ERR_UNAVAILABLE, "", "out of memory");
        return;
    }
    api_set_ctx(c, l, lease_detach, NULL);
    if (!(c->body = http_body_json(c->r, false, &p)) || parse_lease(c, l, &wait_ms, &p) != 0) {
        api_reply_problem(c, &p);
        return;
    }
    workers_seen(c->api->workers, l->w.worker, clock_now_ms());
    job_t *jobs[ENGINE_LEASE_MAX];
    bool full = c->api->waiting >= c->api->cfg->max_waiters;
    int n = engine_lease(c->api->engine, &l->w, full ? 0 : wait_ms, jobs);
    /* In cluster mode a lessee waits for a claim even without wait_ms:
     * past the bound, one that asked to wait is refused all the same. */
    bool refuse = n == 0 && full && wait_ms > 0;
    if (refuse && engine_waiter_waiting(&l->w))
        engine_waiter_cancel(c->api->engine, &l->w);
    if (n > 0) {
        api_reply_text(c, 200, lease_reply(c, jobs, n));
    } else if (engine_waiter_waiting(&l->w)) {
        l->counted = true;
        c->api->waiting++;
        http_defer(c->r); /* on_leased answers */
    } else if (refuse) {
        /* Nothing to hand out and no room to wait: say so rather than hang. */
        http_add_header(c->r, "Retry-After", "1");
        metrics_rejected(c->api->metrics, "busy");
        api_reply_error(c, ERR_UNAVAILABLE, "wait_ms", "too many lease requests are waiting "
                        "(JOBQ_MAX_WAITERS); retry shortly or lease without wait_ms");
    } else {
        api_reply_text(c, 200, lease_reply(c, NULL, 0));
    }
}

/* ---- heartbeat / complete / fail on /v1/jobs/{id}/... ---- */

static const char *lease_id_of(json_t *b, problem_t *p)
{
    const char *id = json_string_value(json_object_get(b, "lease_id"));
    if (!id)
        problem_set(p, ERR_VALIDATION, "lease_id", "lease_id is required");
    return id;
}

static void do_heartbeat(api_call_t *c)
{
    static const char *const allowed[] = { "lease_id", "progress", "extend_ms", NULL };
    problem_t p;
    int64_t extend;
    const char *lease_id;
    const job_t *j;
    if (fields_only(c->body, allowed, "", &p) || !(lease_id = lease_id_of(c->body, &p)) ||
        int_in(c->body, "extend_ms", 1000, 86400000, 0, &extend, &p) ||
        engine_heartbeat(c->api->engine, http_param(c->r, 0), lease_id,
                         json_object_get(c->body, "progress"), extend, &j, &p) != ERR_OK) {
        api_reply_problem(c, &p);
        return;
    }
    workers_seen(c->api->workers, j->lease_worker, clock_now_ms());
    char expires[32];
    clock_format_rfc3339(j->lease_expires_at, expires, sizeof expires);
    api_reply_durable(c, 200, api_dump(json_pack("{s:b, s:s}", "cancel_requested",
                                                 j->cancel_requested, "expires_at", expires)));
}

static void do_complete(api_call_t *c)
{
    static const char *const allowed[] = { "lease_id", "result", NULL };
    problem_t p;
    const char *lease_id;
    const job_t *j;
    if (fields_only(c->body, allowed, "", &p) || !(lease_id = lease_id_of(c->body, &p)) ||
        engine_complete(c->api->engine, http_param(c->r, 0), lease_id,
                        json_object_get(c->body, "result"), &j, &p) != ERR_OK) {
        api_reply_problem(c, &p);
        return;
    }
    api_reply_durable(c, 200, job_json(j, JOB_JSON_PUBLIC));
}

/* Reads {"error":{...},"retry"?,"retry_after_ms"?} from a fail body. */
static int parse_failure(json_t *b, const char *prefix, err_t *type, const char **msg,
                         int *retry, int64_t *retry_after_ms, problem_t *p)
{
    static const char *const efields[] = { "type", "message", "context", NULL };
    char field[64];
    json_t *err = json_object_get(b, "error"), *r = json_object_get(b, "retry");
    snprintf(field, sizeof field, "%serror", prefix);
    if (!json_is_object(err))
        return problem_set(p, ERR_VALIDATION, field, "%s must be an object", field), -1;
    snprintf(field, sizeof field, "%serror.", prefix);
    if (fields_only(err, efields, field, p))
        return -1;
    const char *t = json_string_value(json_object_get(err, "type"));
    json_t *m = json_object_get(err, "message");
    snprintf(field, sizeof field, "%serror.type", prefix);
    if (!t || err_parse(t, type) != 0)
        return problem_set(p, ERR_VALIDATION, field,
                           "%s must be one of validation, unauthorized, not_found, conflict, "
                           "rate_limited, timeout, unavailable, internal", field), -1;
    snprintf(field, sizeof field, "%serror.message", prefix);
    if (m && (!json_is_string(m) || json_string_length(m) > ERROR_MESSAGE_MAX))
        return problem_set(p, ERR_VALIDATION, field, "%s must be a string of at most %d bytes",
                           field, ERROR_MESSAGE_MAX), -1;
    snprintf(field, sizeof field, "%sretry", prefix);
    if (r && !json_is_boolean(r))
        return problem_set(p, ERR_VALIDATION, field, "%s must be true or false", field), -1;
    json_t *ra = json_object_get(b, "retry_after_ms");
    snprintf(field, sizeof field, "%sretry_after_ms", prefix);
    if (ra && (!json_is_integer(ra) || json_integer_value(ra) < 0 ||
               json_integer_value(ra) > 7 * 86400000LL))
        return problem_set(p, ERR_VALIDATION, field,
                           "%s must be an integer from 0 to 604800000", field), -1;
    *retry_after_ms = ra ? json_integer_value(ra) : 0;
    *msg = m ? json_string_value(m) : "";
    *retry = r ? json_is_true(r) : -1;
    return 0;
}

static void do_fail(api_call_t *c)
{
    static const char *const allowed[] = { "lease_id", "error", "retry", "retry_after_ms", NULL };
    problem_t p;
    const char *lease_id, *msg;
    err_t type;
    int retry;
    int64_t after;
    const job_t *j;
    if (fields_only(c->body, allowed, "", &p) || !(lease_id = lease_id_of(c->body, &p)) ||
        parse_failure(c->body, "", &type, &msg, &retry, &after, &p) ||
        engine_fail_after(c->api->engine, http_param(c->r, 0), lease_id, type, msg,
                          json_object_get(json_object_get(c->body, "error"), "context"), retry,
                          after, &j, &p) != ERR_OK) {
        api_reply_problem(c, &p);
        return;
    }
    api_reply_durable(c, 200, job_json(j, JOB_JSON_PUBLIC));
}

static void lease_op(api_call_t *c, void (*cont)(api_call_t *c))
{
    problem_t p;
    if (!api_valid_id(c, http_param(c->r, 0)) || api_refuse_writes(c, false))
        return;
    if (!(c->body = http_body_json(c->r, false, &p))) {
        api_reply_problem(c, &p);
        return;
    }
    api_with_job(c, http_param(c->r, 0), cont);
}

void api_heartbeat(api_call_t *c) { lease_op(c, do_heartbeat); }
void api_complete(api_call_t *c) { lease_op(c, do_complete); }
void api_fail(api_call_t *c) { lease_op(c, do_fail); }

/* ---- POST /v1/ack ---- */

static int check_ack_item(json_t *item, size_t i, problem_t *p)
{
    static const char *const allowed[] = { "id",    "lease_id", "result", "error",
                                           "retry", "retry_after_ms", NULL };
    char prefix[40];
    snprintf(prefix, sizeof prefix, "results[%zu].", i);
    if (!json_is_object(item))
        return problem_set(p, ERR_VALIDATION, prefix, "results[%zu] must be an object", i), -1;
    if (fields_only(item, allowed, prefix, p))
        return -1;
    const char *id = json_string_value(json_object_get(item, "id"));
    if (!id || !job_name_valid(id) || !json_is_string(json_object_get(item, "lease_id")))
        return problem_set(p, ERR_VALIDATION, prefix, "results[%zu] needs id and lease_id", i),
               -1;
    err_t type;
    const char *msg;
    int retry;
    int64_t after;
    if (json_object_get(item, "error"))
        return parse_failure(item, prefix, &type, &msg, &retry, &after, p);
    return 0;
}

static json_t *ack_one(api_call_t *c, json_t *item)
{
    const char *id = json_string_value(json_object_get(item, "id"));
    const char *lease_id = json_string_value(json_object_get(item, "lease_id"));
    problem_t p;
    const job_t *j;
    err_t e;
    if (json_object_get(item, "error")) {
        err_t type = ERR_INTERNAL;
        const char *msg = "";
        int retry = -1;
        int64_t after = 0;
        /* Validated with the rest of the batch in check_ack_item(). */
        (void)parse_failure(item, "", &type, &msg, &retry, &after, &p);
        e = engine_fail_after(c->api->engine, id, lease_id, type, msg,
                              json_object_get(json_object_get(item, "error"), "context"), retry,
                              after, &j, &p);
    } else {
        e = engine_complete(c->api->engine, id, lease_id, json_object_get(item, "result"), &j,
                            &p);
    }
    if (e != ERR_OK)
        return json_pack("{s:s, s:b, s:{s:s, s:i, s:s}}", "id", id, "ok", 0, "error", "type",
                         err_name(p.type), "status", err_status(p.type), "detail", p.detail);
    return json_pack("{s:s, s:b, s:s}", "id", id, "ok", 1, "state", job_state_name(j->state));
}

void api_ack(api_call_t *c)
{
    problem_t p;
    if (api_refuse_writes(c, false))
        return;
    if (!(c->body = http_body_json(c->r, false, &p))) {
        api_reply_problem(c, &p);
        return;
    }
    static const char *const allowed[] = { "results", NULL };
    json_t *results = json_object_get(c->body, "results"), *item;
    int bad = fields_only(c->body, allowed, "", &p);
    if (!bad && (!json_is_array(results) || json_array_size(results) < 1 ||
                 json_array_size(results) > ACK_MAX))
        bad = problem_set(&p, ERR_VALIDATION, "results",
                          "results must be an array of 1-%d items", ACK_MAX);
    for (size_t k = 0; !bad && k < json_array_size(results); k++)
        bad = check_ack_item(json_array_get(results, k), k, &p);
    if (bad) {
        api_reply_problem(c, &p);
        return;
    }
    json_t *out = json_array();
    size_t i;
    json_array_foreach(results, i, item)
        json_array_append_new(out, ack_one(c, item));
    api_reply_durable(c, 200, api_dump(json_pack("{s:o}", "results", out)));
}
