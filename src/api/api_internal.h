/*
 * api_internal: what the resource files share: handler signatures, the
 * per-request call state, and the reply helpers that wait for durability.
 */
#ifndef JOBQ_API_INTERNAL_H
#define JOBQ_API_INTERNAL_H

#include "api/api.h"
#include "core/config.h"
#include "core/errors.h"
#include "core/job.h"
#include "http/request.h"
#include "store/store.h"

/*
 * State a handler keeps across deferred steps, one per request.
 *
 * Lifetime: api_call() attaches it to its request. When the request is
 * freed (reply sent, client gone, server stopping) the call is detached:
 * c->r becomes NULL, a long-poll lease and a durability wait are cancelled,
 * and the call is freed, unless a store read is still in flight: reads
 * cannot be cancelled, so the read's callback frees it instead, without
 * running the handler's continuation. Hence: at most one store read per
 * call at a time (checked), and every read goes through api_read_*.
 * All on the loop thread.
 */
typedef struct api_call api_call_t;
typedef void (*api_read_fn)(api_call_t *c, json_t *result, const char *error);
struct api_call {
    http_req_t *r;
    api_t *api;
    json_t *body;         /* the parsed request body, owned */
    store_waiter_t durable;
    int status;           /* reply held back until durable */
    char *reply;          /* JSON text, owned until sent */
    job_t *job;           /* a parsed job not yet handed to the engine */
    bool reading;         /* a store read is in flight */
    api_read_fn read_fn;  /* what runs when it lands, if the request is still open */
    uint64_t deletes_seen; /* engine_deletes() when a store read began */
    char *loading_id;     /* the id api_with_job is reading, owned */
    void (*cont)(struct api_call *c);
    char *cache_key;      /* owned: the query cache entry this read fills */
    char *cache_scope;    /* owned: its queue, NULL for all */
    uint64_t cache_gen;   /* the cache generation the read started under */
    bool delete_unreadable; /* DELETE: a quarantined row may be removed */
    void (*counts_cont)(struct api_call *c, json_t *stats); /* queues.c: after a store read */
    /* What one handler alone needs (a long poll's waiter and queue names, a
     * batch's jobs), owned by the call: ctx_detach runs when the request
     * goes (cancel what still waits), ctx_free when the call is freed. */
    void *ctx;
    void (*ctx_detach)(struct api_call *c);
    void (*ctx_free)(void *ctx);
};

typedef void (*api_handler_fn)(api_call_t *c);

/* Gives the call its handler's context (see api_call.ctx). */
void api_set_ctx(api_call_t *c, void *ctx, void (*detach)(api_call_t *c), void (*free_ctx)(void *));

/* The call state for r, attached to it. NULL if out of memory (the request
 * has then been answered). */
api_call_t *api_call(http_req_t *r, api_t *api);

/* Store reads on behalf of a call (see the lifetime rule above): fn runs
 * with the request still open, or not at all. The caller defers the reply. */
void api_read_job(api_call_t *c, const char *id, api_read_fn fn);
/* result may be shorter than n: the read stops at api_read_budget(c) bytes
 * of stored jobs (store_get_jobs). */
void api_read_jobs(api_call_t *c, const char *const *ids, size_t n, api_read_fn fn);
size_t api_read_budget(const api_call_t *c);
void api_read_list(api_call_t *c, const store_query_t *q, api_read_fn fn);
void api_read_stats(api_call_t *c, api_read_fn fn);
/* queues.c: the store's counts by queue and state (the query cache's
 * "stats" entry, else a read that fills it), then cont(c, stats); a read
 * that fails is answered here. */
void api_with_counts(api_call_t *c, void (*cont)(api_call_t *c, json_t *stats));
/* One queue's counts of those stats ({state: n}), by state; 0 where absent. */
void api_counts_of(json_t *qc, size_t count[JOB_STATE_COUNT]);
void api_read_breakers(api_call_t *c, api_read_fn fn); /* cluster mode */

/* Sends body (JSON text, taken; NULL for none) once every write queued so
 * far is durable. */
void api_reply_durable(api_call_t *c, int status, char *body);
/* JSON text of v, which it steals. */
char *api_dump(json_t *v);
/* Sends JSON text (taken) now. */
void api_reply_text(api_call_t *c, int status, char *body);
void api_reply_problem(api_call_t *c, const problem_t *p);
void api_reply_error(api_call_t *c, err_t type, const char *field, const char *detail);

/* Runs c->cont once job `id` is in the engine if it exists at all: finished
 * jobs may have been evicted from memory and are fetched from the store. */
void api_with_job(api_call_t *c, const char *id, void (*cont)(api_call_t *c));

/* Memory (overload.c): bytes held for jobs and caches; whether a new job of
 * this priority must be refused (then replied 503 naming field); whether
 * the hard limit is reached. */
int64_t api_memory_used(const api_t *api);
bool api_shed(api_call_t *c, int priority, const char *field);
bool api_memory_full(const api_t *api);

/* A read's stand-in for a stored job that cannot be read: its reason (and
 * the job is noted in quarantine), else NULL. */
const char *api_unreadable(api_call_t *c, json_t *doc);
/* 409 naming field: the id belongs to a quarantined job. */
void api_reply_unreadable(api_call_t *c, const char *field, const char *id, const char *why);
void api_quarantine(api_call_t *c);

/* Hands a stored document (from a read) to the engine if it is a job. */
void api_load_doc(api_call_t *c, json_t *doc);

/* A store read failed (error from store_read_cb): 503 with Retry-After. */
void api_reply_read_error(api_call_t *c, const char *error);

/* Refuses a write while the store cannot commit or the server is draining. */
bool api_refuse_writes(api_call_t *c, bool refuse_when_draining);

/* Turns a stored document into its public form, in place. */
void api_doc_public(json_t *doc);

/* Validates a path id; replies 400 and returns false if it is malformed. */
bool api_valid_id(api_call_t *c, const char *id);
/* The client sent Prefer: return=minimal (RFC 7240): the reply then says
 * Preference-Applied, and jobs in it take their short forms. */
bool api_minimal(api_call_t *c);

/* The job filters of GET /v1/jobs and the bulk API into q: get(ud, name)
 * gives each named filter's text or NULL (strings borrowed); a 400 in p
 * names the field, after prefix. */
typedef const char *(*api_filter_get)(void *ud, const char *name);
int api_parse_job_filter(api_filter_get get, void *ud, const char *prefix, store_query_t *q,
                         problem_t *p);
#define API_FILTER_NAMES                                                                       \
    "queue", "state", "type", "priority", "breaker_key", "worker", "text", "created_after",   \
        "created_before", "finished_after", "finished_before"

/* Bulk actions (bulk.c): one runs on the loop, acting on every job that
 * matched when it started. action: retry, cancel or delete. NULL with p
 * filled when refused. The bulks are the api's (api_t.bulks). */
typedef struct bulk bulk_t;
bulk_t *api_bulk_start(api_t *a, const store_query_t *q, const char *action, bool dry_run,
                       problem_t *p);
bulk_t *api_bulk_find(api_t *a, const char *id);
void api_bulk_cancel(bulk_t *b);
json_t *api_bulk_json(const bulk_t *b); /* new reference */
void api_bulk_foreach(api_t *a, void (*fn)(void *ud, const bulk_t *b), void *ud);
/* Running, or finished within the last minute (the event stream shows those). */
bool api_bulk_recent(const bulk_t *b, int64_t now_ms);

/* Handlers, by resource. */
void api_enqueue(api_call_t *c);
void api_enqueue_batch(api_call_t *c);
void api_get_job(api_call_t *c);
void api_list_jobs(api_call_t *c);
void api_cancel(api_call_t *c);
void api_retry(api_call_t *c);
void api_delete(api_call_t *c);
void api_lease(api_call_t *c);
void api_heartbeat(api_call_t *c);
void api_complete(api_call_t *c);
void api_fail(api_call_t *c);
void api_ack(api_call_t *c);
void api_queues(api_call_t *c);
void api_pause(api_call_t *c);
void api_resume(api_call_t *c);
void api_stats(api_call_t *c);
void api_health_live(api_call_t *c);
void api_health_ready(api_call_t *c);
void api_health(api_call_t *c);
void api_metrics(api_call_t *c);
void api_history(api_call_t *c);
void api_events(api_call_t *c);
/* Breaker state changes, newest first (events.c): [{"at","key","from","to"}]. */
json_t *api_breaker_changes(api_t *a);
void api_session_get(api_call_t *c);
void api_session_post(api_call_t *c);
void api_session_delete(api_call_t *c);
void api_bulk_post(api_call_t *c);
void api_bulk_get(api_call_t *c);
void api_bulk_list(api_call_t *c);
void api_bulk_cancel_post(api_call_t *c);
void api_workers(api_call_t *c);
void api_worker_quiet(api_call_t *c);
void api_worker_terminate(api_call_t *c);
void api_perf(api_call_t *c);
void api_breakers(api_call_t *c);
void api_cache(api_call_t *c);
void api_limits(api_call_t *c);

/* Query cache helpers (cache_api.c): looks key up for scope (a queue or
 * NULL); on a miss remembers key, scope and generation in c and returns
 * NULL; api_cache_fill() then offers the answer. */
const char *api_cache_lookup(api_call_t *c, const char *key, const char *scope);
void api_cache_fill(api_call_t *c, const char *text);
void api_breaker_reset(api_call_t *c);

#endif
