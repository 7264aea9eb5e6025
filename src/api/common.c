/* What every resource shares: call state, durable replies, job loading. */
#include <stdio.h>
#include <string.h>

#include "api/api_internal.h"

void api_uncount_waiter(api_call_t *c)
{
    if (c->counted_waiter)
        c->api->waiting--;
    c->counted_waiter = false;
}

static void call_free(void *p)
{
    api_call_t *c = p;
    api_uncount_waiter(c);
    json_decref(c->body);
    free(c->reply);
    json_decref(c->jobs);
    free(c->loading_id);
    free(c->cache_key);
    free(c->cache_scope);
    job_free(c->job);
    for (size_t i = 0; c->batch && i < c->nbatch; i++)
        job_free(c->batch[i]);
    free(c->batch);
}

api_call_t *api_call(http_req_t *r, api_t *api)
{
    api_call_t *c = http_handler_data(r, sizeof *c, call_free);
    if (!c) {
        problem_t p;
        problem_set(&p, ERR_UNAVAILABLE, "", "out of memory");
        http_reply_problem(r, &p);
        return NULL;
    }
    c->r = r;
    c->api = api;
    return c;
}

static void on_durable(store_waiter_t *w)
{
    api_call_t *c = LIST_ENTRY(w, api_call_t, durable);
    char *reply = c->reply;
    c->reply = NULL;
    api_reply_text(c, c->status, reply);
}

void api_reply_text(api_call_t *c, int status, char *body)
{
    http_reply_text(c->r, status, body ? "application/json" : NULL, body);
}

char *api_dump(json_t *v)
{
    char *text = v ? json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
    json_decref(v);
    return text;
}

void api_reply_durable(api_call_t *c, int status, char *body)
{
    c->status = status;
    free(c->reply);
    c->reply = body;
    http_defer(c->r);
    c->durable.cb = on_durable;
    store_when_durable(c->api->store, &c->durable, store_last_seq(c->api->store));
}

void api_reply_problem(api_call_t *c, const problem_t *p) { http_reply_problem(c->r, p); }

void api_reply_error(api_call_t *c, err_t type, const char *field, const char *detail)
{
    problem_t p;
    problem_set(&p, type, field, "%s", detail);
    http_reply_problem(c->r, &p);
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

static void on_job_loaded(void *ud, json_t *doc, const char *error)
{
    api_call_t *c = ud;
    if (error) {
        api_reply_read_error(c, error);
        return;
    }
    /* A delete since the read began may have removed this very job: read it
     * again, after the delete, rather than bring it back to life. (Batch
     * reads skip this; they load several ids at once.) */
    if (engine_deletes(c->api->engine) != c->deletes_seen && c->loading_id) {
        char *id = c->loading_id;
        c->loading_id = NULL;
        api_with_job(c, id, c->cont);
        free(id);
        return;
    }
    job_t *job;
    problem_t p;
    if (json_is_object(doc) && job_from_doc(doc, &job, &p) == ERR_OK)
        engine_load(c->api->engine, job); /* keeps an already-present copy */
    c->cont(c);
}

void api_with_job(api_call_t *c, const char *id, void (*cont)(api_call_t *c))
{
    c->cont = cont;
    if (engine_get(c->api->engine, id)) {
        cont(c);
        return;
    }
    http_defer(c->r);
    c->deletes_seen = engine_deletes(c->api->engine);
    if (c->outstanding == 0) { /* a single read: remember what to re-read */
        free(c->loading_id);
        c->loading_id = strdup(id);
    }
    store_get_job(c->api->store, id, on_job_loaded, c);
}
