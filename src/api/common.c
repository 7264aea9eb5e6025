/* What every resource shares: call state, durable replies, job loading. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/api_internal.h"
#include "engine/engine.h"
#include "metrics/metrics.h"
#include "util/check.h"
#include "util/jsonb.h"

void api_set_ctx(api_call_t *c, void *ctx, void (*detach)(api_call_t *c), void (*free_ctx)(void *))
{
    CHECK(!c->ctx); /* one handler, one context */
    c->ctx = ctx;
    c->ctx_detach = detach;
    c->ctx_free = free_ctx;
}

static void call_free(api_call_t *c)
{
    CHECK(!c->reading && !c->r);
    json_decref(c->body);
    free(c->reply);
    free(c->loading_id);
    free(c->cache_key);
    free(c->cache_scope);
    job_free(c->job);
    if (c->ctx)
        (c->ctx_free ? c->ctx_free : free)(c->ctx);
    free(c);
}

/* The request is gone: nothing may answer it again. */
static void call_detach(void *p)
{
    api_call_t *c = p;
    CHECK_LOOP_THREAD();
    c->r = NULL;
    if (c->ctx_detach)
        c->ctx_detach(c);
    store_waiter_cancel(&c->durable);
    if (!c->reading)
        call_free(c);
}

api_call_t *api_call(http_req_t *r, api_t *api)
{
    api_call_t *c = calloc(1, sizeof *c);
    if (!c) {
        problem_t p;
        problem_set(&p, ERR_UNAVAILABLE, "", "out of memory");
        http_reply_problem(r, &p);
        return NULL;
    }
    c->r = r;
    c->api = api;
    list_init(&c->durable.link);
    http_attach(r, c, call_detach);
    return c;
}

static void on_read(void *ud, json_t *result, const char *error)
{
    api_call_t *c = ud;
    CHECK(c->reading);
    c->reading = false;
    if (!c->r) {
        call_free(c);
        return;
    }
    c->read_fn(c, result, error);
}

static void begin_read(api_call_t *c, api_read_fn fn)
{
    CHECK(!c->reading && c->r);
    c->reading = true;
    c->read_fn = fn;
    http_defer(c->r);
}

void api_read_job(api_call_t *c, const char *id, api_read_fn fn)
{
    begin_read(c, fn);
    store_get_job(c->api->store, id, on_read, c);
}

void api_read_jobs(api_call_t *c, const char *const *ids, size_t n, api_read_fn fn)
{
    begin_read(c, fn);
    store_get_jobs(c->api->store, ids, n, api_read_budget(c), on_read, c);
}

size_t api_read_budget(const api_call_t *c)
{
    return store_get_budget((size_t)c->api->cfg->max_body_bytes);
}

void api_read_list(api_call_t *c, const store_query_t *q, api_read_fn fn)
{
    begin_read(c, fn);
    store_list_jobs(c->api->store, q, on_read, c);
}

void api_read_stats(api_call_t *c, api_read_fn fn)
{
    begin_read(c, fn);
    store_stats(c->api->store, on_read, c);
}

void api_read_breakers(api_call_t *c, api_read_fn fn)
{
    begin_read(c, fn);
    store_breakers(c->api->store, on_read, c);
}

static void on_durable(store_waiter_t *w)
{
    api_call_t *c = LIST_ENTRY(w, api_call_t, durable);
    if (w->failed) { /* never acknowledged: the client must not count on it */
        char why[256], detail[320];
        store_last_error(c->api->store, why, sizeof why);
        snprintf(detail, sizeof detail, "the change was not stored: %s", why);
        http_add_header(c->r, "Retry-After", "5");
        api_reply_error(c, ERR_UNAVAILABLE, "", detail);
        return;
    }
    if (w->refused) { /* cluster mode: the database said this node may not */
        api_reply_error(c, ERR_CONFLICT, "", STORE_REFUSED);
        return;
    }
    char *reply = c->reply;
    c->reply = NULL;
    api_reply_text(c, c->status, reply);
}

void api_reply_text(api_call_t *c, int status, char *body)
{
    http_reply_text(c->r, status, body ? "application/json" : NULL, body);
}

char *api_dump(json_t *v) { return v ? jsonb_reply_text(v, 15) : NULL; }

void api_reply_durable(api_call_t *c, int status, char *body)
{
    c->status = status;
    free(c->reply);
    c->reply = body;
    http_defer(c->r);
    c->durable.cb = on_durable;
    /* Usually answered before this returns, in "os" durability: no suspend. */
    store_when_durable_now(c->api->store, &c->durable, store_last_seq(c->api->store));
}

void api_reply_problem(api_call_t *c, const problem_t *p) { http_reply_problem(c->r, p); }

void api_reply_error(api_call_t *c, err_t type, const char *field, const char *detail)
{
    problem_t p;
    problem_set(&p, type, field, "%s", detail);
    http_reply_problem(c->r, &p);
}

/* Looks for the return=minimal preference among Prefer's comma-separated
 * ones (each may carry ;parameters, which are ignored). */
bool api_minimal(api_call_t *c)
{
    const char *v = http_header(c->r, "Prefer");
    while (v && *v) {
        v += strspn(v, " \t,");
        size_t n = strcspn(v, ",;");
        while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
            n--;
        if (n == 14 && strncasecmp(v, "return=minimal", 14) == 0) {
            http_add_header(c->r, "Preference-Applied", "return=minimal");
            return true;
        }
        v = strchr(v, ',');
    }
    return false;
}

bool api_valid_id(api_call_t *c, const char *id)
{
    if (job_name_valid(id))
        return true;
    api_reply_error(c, ERR_VALIDATION, "id", "the id must be 1-200 characters of [A-Za-z0-9._:-]");
    return false;
}

bool api_refuse_writes(api_call_t *c, bool refuse_when_draining)
{
    if (refuse_when_draining && c->api->draining) {
        http_add_header(c->r, "Retry-After", "5");
        api_reply_error(c, ERR_UNAVAILABLE, "", "jobq is shutting down");
        return true;
    }
    if (!store_healthy(c->api->store)) {
        char why[256], detail[320];
        store_last_error(c->api->store, why, sizeof why);
        snprintf(detail, sizeof detail, "the store cannot commit: %s", why);
        http_add_header(c->r, "Retry-After", "5");
        api_reply_error(c, ERR_UNAVAILABLE, "", detail);
        return true;
    }
    return false;
}

void api_reply_read_error(api_call_t *c, const char *error)
{
    bool busy = strcmp(error, STORE_BUSY) == 0;
    char detail[300];
    snprintf(detail, sizeof detail, "the store could not be read: %s", error);
    http_add_header(c->r, "Retry-After", "1");
    if (busy)
        metrics_rejected(c->api->metrics, "busy");
    api_reply_error(c, ERR_UNAVAILABLE, "", detail);
}

void api_doc_public(json_t *doc)
{
    json_t *lease = json_object_get(doc, "lease");
    if (json_is_object(lease))
        json_object_del(lease, "id");
}

/* Loads a stored document into the engine; an unreadable one is skipped
 * (the reader reports it; see quarantine in docs/operations.md). */
void api_load_doc(api_call_t *c, json_t *doc)
{
    job_t *job;
    problem_t p;
    if (json_is_object(doc) && job_from_doc(doc, &job, &p) == ERR_OK)
        engine_load(c->api->engine, job); /* keeps an already-present copy */
}

const char *api_unreadable(api_call_t *c, json_t *doc)
{
    const char *why = json_string_value(json_object_get(doc, "unreadable"));
    if (why)
        store_quarantine_note(c->api->store, json_string_value(json_object_get(doc, "id")), why);
    return why;
}

void api_reply_unreadable(api_call_t *c, const char *field, const char *id, const char *why)
{
    problem_t p;
    problem_set(&p, ERR_CONFLICT, field, "job %s is stored but cannot be read (%s): it is "
                "quarantined; an admin may DELETE it to free the id", id, why);
    api_reply_problem(c, &p);
}

/* An admin's DELETE of a quarantined job removes the row itself. */
static void delete_unreadable(api_call_t *c, const char *id)
{
    store_delete_job(c->api->store, id);
    store_quarantine_forget(c->api->store, id);
    api_reply_durable(c, 204, NULL);
}

static void on_job_loaded(api_call_t *c, json_t *doc, const char *error)
{
    if (error) {
        api_reply_read_error(c, error);
        return;
    }
    const char *why = api_unreadable(c, doc);
    if (why && engine_deletes(c->api->engine) == c->deletes_seen) {
        if (c->delete_unreadable)
            delete_unreadable(c, c->loading_id);
        else
            api_reply_unreadable(c, "id", c->loading_id, why);
        return;
    }
    /* A delete since the read began may have removed this very job: read it
     * again, after the delete, rather than bring it back to life. */
    if (engine_deletes(c->api->engine) != c->deletes_seen) {
        char *id = c->loading_id;
        c->loading_id = NULL;
        api_with_job(c, id, c->cont);
        free(id);
        return;
    }
    api_load_doc(c, doc);
    c->cont(c);
}

void api_with_job(api_call_t *c, const char *id, void (*cont)(api_call_t *c))
{
    c->cont = cont;
    if (engine_get(c->api->engine, id) || !store_may_hold(c->api->store, id)) {
        cont(c); /* in memory, or nowhere */
        return;
    }
    c->deletes_seen = engine_deletes(c->api->engine);
    free(c->loading_id);
    c->loading_id = strdup(id);
    if (!c->loading_id) {
        api_reply_error(c, ERR_UNAVAILABLE, "", "out of memory");
        return;
    }
    api_read_job(c, c->loading_id, on_job_loaded);
}
