/* Bulk actions on every job matching a filter (POST /v1/jobs/bulk,
 * docs/api.md "Bulk actions"), run by the server, not page by page by a
 * client.
 *
 * Two phases. First the matching ids are collected with the same reads
 * GET /v1/jobs makes, page after page (at most BULK_MAX_MATCH), so the
 * action cannot chase its own changes (a retried job no longer failed, a
 * new job arriving) and the total is known before anything changes; a dry
 * run stops there. Then BULK_CHUNK jobs per loop turn are acted on
 * through the engine, as one request each would be, loading finished jobs
 * the engine no longer holds from the store first; the loop serves other
 * requests between chunks. The bulk is done once its last change is
 * durable. A cancel stops it between chunks.
 *
 * Lifetime: a bulk with a read, a durability wait or a step in flight is
 * never freed; finished ones are kept (the newest BULK_KEEP) for GET. */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "engine/engine.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/grow.h"
#include "util/list.h"
#include "util/randid.h"

#define BULK_MAX_MATCH 100000
#define BULK_CHUNK 500
#define BULK_KEEP 32
#define BULK_RUNNING 4
#define BULK_PAGE 1000

typedef enum { BULK_RETRY, BULK_CANCEL, BULK_DELETE } bulk_action_t;
typedef enum { BULK_SCANNING, BULK_APPLYING, BULK_DONE, BULK_CANCELLED, BULK_FAILED } bulk_state_t;
static const char *const action_names[] = { "retry", "cancel", "delete" };
static const char *const state_names[] = { "scanning", "applying", "done", "cancelled", "failed" };

typedef struct bulk {
    list_node_t link; /* api_bulks.all, oldest first */
    api_t *api;
    char id[33];
    bulk_action_t action;
    bulk_state_t state;
    bool dry_run, cancel, busy; /* busy: a read, a wait or a step is in flight */
    store_query_t q;
    char *strings; /* owns q's strings */
    char **ids;
    size_t n, cap, next;
    uint64_t changed, skipped;
    int64_t created_ms, finished_ms;
    char error[256];
    char cursor_id[JOB_NAME_MAX + 1]; /* where the scan goes on */
    size_t missing_at[BULK_CHUNK]; /* the chunk's ids being read, by index in ids */
    size_t nmissing;
    store_waiter_t durable;
} bulk_t;

struct api_bulks {
    list_node_t all;
};

api_bulks_t *api_bulks_new(void)
{
    api_bulks_t *b = calloc(1, sizeof *b);
    if (b)
        list_init(&b->all);
    return b;
}

static void bulk_free(bulk_t *b)
{
    for (size_t i = 0; i < b->n; i++)
        free(b->ids[i]);
    free(b->ids);
    free(b->strings);
    free(b);
}

void api_bulks_free(api_bulks_t *bs)
{
    if (!bs)
        return;
    /* The loop has stopped: nothing in flight will call back. */
    while (!list_empty(&bs->all)) {
        bulk_t *b = LIST_ENTRY(bs->all.next, bulk_t, link);
        list_remove(&b->link);
        store_waiter_cancel(&b->durable);
        bulk_free(b);
    }
    free(bs);
}

static bool finished(const bulk_t *b) { return b->state >= BULK_DONE; }

json_t *api_bulk_json(const bulk_t *b)
{
    char created[32], done_at[32] = "";
    clock_format_rfc3339(b->created_ms, created, sizeof created);
    if (b->finished_ms)
        clock_format_rfc3339(b->finished_ms, done_at, sizeof done_at);
    size_t total = b->state == BULK_SCANNING ? 0 : b->n;
    return json_pack("{s:s, s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:f, s:s, s:s?, s:s?}", "id", b->id,
                     "action", action_names[b->action], "state", state_names[b->state],
                     "dry_run", b->dry_run, "matched", (json_int_t)b->n, "processed",
                     (json_int_t)b->next, "changed", (json_int_t)b->changed, "skipped",
                     (json_int_t)b->skipped, "progress",
                     finished(b) ? 1.0 : total ? (double)b->next / (double)total : 0.0,
                     "created_at", created, "finished_at", done_at[0] ? done_at : NULL, "error",
                     b->error[0] ? b->error : NULL);
}

/* Keeps the newest BULK_KEEP finished bulks that nothing still uses. */
static void prune(api_bulks_t *bs)
{
    size_t kept = 0;
    for (list_node_t *l = bs->all.prev, *prev; l != &bs->all; l = prev) {
        prev = l->prev;
        bulk_t *b = LIST_ENTRY(l, bulk_t, link);
        if (!finished(b) || b->busy || ++kept <= BULK_KEEP)
            continue;
        list_remove(&b->link);
        bulk_free(b);
    }
}

static void finish(bulk_t *b, bulk_state_t st, const char *error)
{
    b->state = st;
    b->finished_ms = clock_now_ms();
    if (error)
        snprintf(b->error, sizeof b->error, "%s", error);
    prune(b->api->bulks);
}

/* ---- phase 2: acting, a chunk per loop turn ---- */

static void step(evutil_socket_t fd, short what, void *arg);

static void schedule(bulk_t *b)
{
    static const struct timeval now = { 0, 0 };
    b->busy = true;
    if (event_base_once(b->api->base, -1, EV_TIMEOUT, step, b, &now) != 0) {
        b->busy = false;
        finish(b, BULK_FAILED, "out of memory");
    }
}

static void on_durable(store_waiter_t *w)
{
    bulk_t *b = LIST_ENTRY(w, bulk_t, durable);
    b->busy = false;
    if (w->failed)
        finish(b, BULK_FAILED, "the changes were not stored: the database was lost");
    else
        finish(b, b->cancel ? BULK_CANCELLED : BULK_DONE, NULL);
}

static void act(bulk_t *b, const char *id)
{
    engine_t *e = b->api->engine;
    const job_t *out;
    problem_t p;
    err_t r = b->action == BULK_RETRY    ? engine_retry(e, id, &out, &p)
              : b->action == BULK_CANCEL ? engine_cancel(e, id, &out, &p)
                                         : engine_delete(e, id, &p);
    if (r == ERR_OK)
        b->changed++;
    else
        b->skipped++; /* gone, or no longer in a state the action applies to */
}

static void apply_chunk(bulk_t *b, size_t end)
{
    engine_hold_eviction(b->api->engine); /* what was just loaded stays for the chunk */
    for (; b->next < end; b->next++)
        act(b, b->ids[b->next]);
    engine_release_eviction(b->api->engine);
}

static size_t chunk_end(const bulk_t *b)
{
    return b->next + BULK_CHUNK < b->n ? b->next + BULK_CHUNK : b->n;
}

static void after_chunk(bulk_t *b)
{
    if (b->next < b->n && !b->cancel && !b->api->draining) {
        schedule(b);
        return;
    }
    if (b->next < b->n)
        b->cancel = true;
    b->durable.cb = on_durable;
    b->busy = true;
    store_when_durable(b->api->store, &b->durable, store_last_seq(b->api->store));
}

/* Where the chunk ends once its read landed (read of its ids came back):
 * before the first id the read did not reach (STORE_GET_BYTES), or that
 * the engine held at the step but let go of while the read was out (it
 * would be skipped as gone). The next step reads from there. */
static size_t loaded_end(const bulk_t *b, size_t read)
{
    size_t end = read < b->nmissing ? b->missing_at[read] : chunk_end(b), k = 0;
    for (size_t i = b->next; i < end; i++) {
        bool was_read = k < read && b->missing_at[k] == i;
        k += was_read;
        if (!was_read && !engine_get(b->api->engine, b->ids[i]))
            return i;
    }
    return end;
}

static void on_loaded(void *ud, json_t *result, const char *error)
{
    bulk_t *b = ud;
    b->busy = false;
    if (error) {
        finish(b, BULK_FAILED, error);
        return;
    }
    size_t i;
    json_t *doc;
    job_t *job;
    problem_t p;
    engine_hold_eviction(b->api->engine);
    json_array_foreach(result, i, doc)
        if (json_is_object(doc) && job_from_doc(doc, &job, &p) == ERR_OK)
            engine_load(b->api->engine, job);
    apply_chunk(b, loaded_end(b, json_array_size(result)));
    engine_release_eviction(b->api->engine);
    after_chunk(b);
}

static void step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    bulk_t *b = arg;
    b->busy = false;
    if (b->cancel || b->api->draining) {
        after_chunk(b);
        return;
    }
    size_t end = chunk_end(b);
    const char *missing[BULK_CHUNK];
    b->nmissing = 0;
    for (size_t i = b->next; i < end; i++)
        if (!engine_get(b->api->engine, b->ids[i])) {
            b->missing_at[b->nmissing] = i;
            missing[b->nmissing++] = b->ids[i];
        }
    if (b->nmissing) { /* finished jobs the engine let go of */
        b->busy = true;
        store_get_jobs(b->api->store, missing, b->nmissing, STORE_GET_BYTES, on_loaded, b);
        return;
    }
    apply_chunk(b, end);
    after_chunk(b);
}

/* ---- phase 1: collecting the ids ---- */

static void scan(bulk_t *b);

static int keep_id(bulk_t *b, const char *id)
{
    char **v = grow_array(b->ids, &b->cap, b->n, sizeof *v, 1024);
    if (!v)
        return -1;
    b->ids = v;
    if (!(b->ids[b->n] = strdup(id)))
        return -1;
    b->n++;
    return 0;
}

static void on_page(void *ud, json_t *result, const char *error)
{
    bulk_t *b = ud;
    b->busy = false;
    if (error || b->cancel) {
        finish(b, error ? BULK_FAILED : BULK_CANCELLED, error);
        return;
    }
    size_t i;
    json_t *doc;
    json_array_foreach(json_object_get(result, "jobs"), i, doc) {
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (id && keep_id(b, id) != 0) {
            finish(b, BULK_FAILED, "out of memory");
            return;
        }
    }
    if (b->n > BULK_MAX_MATCH) {
        finish(b, BULK_FAILED, "more than 100000 jobs match: narrow the filter; nothing changed");
        return;
    }
    const char *cursor = json_string_value(json_object_get(result, "next_cursor"));
    if (cursor) {
        /* "created_at:id", as the reader made it; the id is the last one kept */
        const char *colon = strchr(cursor, ':');
        b->q.has_cursor = true;
        b->q.cursor_created_at = strtoll(cursor, NULL, 10);
        snprintf(b->cursor_id, sizeof b->cursor_id, "%s", colon ? colon + 1 : "");
        b->q.cursor_id = b->cursor_id;
        scan(b);
        return;
    }
    if (b->dry_run) {
        finish(b, BULK_DONE, NULL);
        return;
    }
    b->state = BULK_APPLYING;
    schedule(b);
}

static void scan(bulk_t *b)
{
    b->busy = true;
    store_list_jobs(b->api->store, &b->q, on_page, b); /* copies the query's strings */
}

/* ---- the API ---- */

static size_t running(const api_bulks_t *bs)
{
    size_t n = 0;
    for (const list_node_t *l = bs->all.next; l != &bs->all; l = l->next)
        n += !finished(LIST_ENTRY(l, const bulk_t, link));
    return n;
}

/* Copies q's strings into one allocation the bulk owns. */
static int own_query(bulk_t *b, const store_query_t *q)
{
    const char **f[] = { &b->q.queue, &b->q.state, &b->q.type, &b->q.text, &b->q.breaker_key,
                         &b->q.worker };
    b->q = *q;
    size_t n = 0;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        n += *f[i] ? strlen(*f[i]) + 1 : 0;
    char *p = b->strings = malloc(n ? n : 1);
    if (!p)
        return -1;
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!*f[i])
            continue;
        size_t l = strlen(*f[i]) + 1;
        memcpy(p, *f[i], l);
        *f[i] = p;
        p += l;
    }
    b->q.has_cursor = false;
    b->q.cursor_id = NULL;
    b->q.limit = BULK_PAGE;
    return 0;
}

bulk_t *api_bulk_start(api_t *a, const store_query_t *q, const char *action, bool dry_run,
                       problem_t *p)
{
    int act_i = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(action, action_names[i]) == 0)
            act_i = i;
    if (act_i < 0)
        return problem_set(p, ERR_VALIDATION, "action", "action must be retry, cancel or delete"),
               NULL;
    if (running(a->bulks) >= BULK_RUNNING)
        return problem_set(p, ERR_UNAVAILABLE, "", "%d bulk actions are running; retry when one "
                           "has finished", BULK_RUNNING), NULL;
    bulk_t *b = calloc(1, sizeof *b);
    if (!b || own_query(b, q) != 0 || randid_hex(b->id, 16) != 0) {
        if (b)
            bulk_free(b);
        return problem_set(p, ERR_UNAVAILABLE, "", "out of memory"), NULL;
    }
    b->api = a;
    b->action = (bulk_action_t)act_i;
    b->dry_run = dry_run;
    b->created_ms = clock_now_ms();
    list_push_back(&a->bulks->all, &b->link);
    scan(b);
    return b;
}

bulk_t *api_bulk_find(api_t *a, const char *id)
{
    for (list_node_t *l = a->bulks->all.next; l != &a->bulks->all; l = l->next) {
        bulk_t *b = LIST_ENTRY(l, bulk_t, link);
        if (strcmp(b->id, id) == 0)
            return b;
    }
    return NULL;
}

void api_bulk_cancel(bulk_t *b) { b->cancel = !finished(b) || b->cancel; }

void api_bulk_foreach(api_t *a, void (*fn)(void *ud, const bulk_t *b), void *ud)
{
    for (list_node_t *l = a->bulks->all.next; l != &a->bulks->all; l = l->next)
        fn(ud, LIST_ENTRY(l, const bulk_t, link));
}

bool api_bulk_recent(const bulk_t *b, int64_t now_ms)
{
    return !finished(b) || now_ms - b->finished_ms < 60000;
}
