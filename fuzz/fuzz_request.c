/*
 * The request path in-process: route, guard, handler and validation, on an
 * engine and a real SQLite store, with no socket. Input:
 *
 *   METHOD TARGET\n(Name: value\n)*\nBODY
 *
 * TARGET is decoded like the server decodes it (http_unescape). Checks:
 * every request is answered (a deferred one within a bounded number of
 * store round trips), with a status of 200-599, and every error is a
 * problem document naming its own status. Any sanitizer report or CHECK
 * is a finding too.
 */
#include "fuzz.h"

#include <event2/event.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "api/cache.h"
#include "api/guard.h"
#include "engine/engine.h"
#include "metrics/metrics.h"
#include "metrics/perf.h"
#include "metrics/workers.h"
#include "net/admit.h"
#include "store/store.h"
#include "core/config.h"
#include "http/synthetic.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/log.h"

#define MAX_PAIRS 16
#define RESET_EVERY 2000 /* executions between fresh databases, to bound memory */

static struct {
    config_t cfg;
    api_t api;
    char dir[64];
    long runs;
} F;

static int64_t now_ms(void *ud) { (void)ud; return clock_now_ms(); }
static double rand_unit(void *ud) { (void)ud; return 0.5; }
static void persist(void *ud, const job_t *j, job_event_t ev) { (void)ud; store_put_job(F.api.store, j, ev); }
static void persist_delete(void *ud, const char *id) { (void)ud; store_delete_job(F.api.store, id); }
static void persist_queue(void *ud, const char *q, bool paused)
{
    (void)ud;
    store_put_queue(F.api.store, q, paused);
}
static void deadline_changed(void *ud, int64_t d) { (void)ud; (void)d; }

static void open_world(void)
{
    char err[512];
    snprintf(F.cfg.database_url, sizeof F.cfg.database_url, "sqlite://%s/jobq-%ld.db", F.dir,
             F.runs);
    store_t *s = store_open(F.cfg.database_url, DURABILITY_MEMORY, err, sizeof err);
    if (!s || store_migrate(s, err, sizeof err) != 0 || store_start(s, err, sizeof err) != 0) {
        fprintf(stderr, "fuzz_request: %s\n", err);
        abort();
    }
    engine_hooks_t h = { .now_ms = now_ms, .rand_unit = rand_unit, .persist = persist,
                         .persist_delete = persist_delete, .persist_queue = persist_queue,
                         .deadline_changed = deadline_changed };
    engine_options_t o = { .finished_in_memory = 100 };
    F.api.store = s;
    F.api.engine = engine_new(&h, &o);
    F.api.cache = cache_new(1000, 1 << 20);
    /* Bulk actions go on over later inputs: their store reads land in
     * store_dispatch, their steps in this loop, run after each input. */
    F.api.base = event_base_new();
    F.api.bulks = api_bulks_new();
}

static void close_world(void)
{
    (void)store_stop(F.api.store, 0); /* no give-up: the fuzz store never fails */
    store_close(F.api.store);
    api_bulks_free(F.api.bulks); /* nothing calls back now: no store, no loop turns */
    event_base_free(F.api.base);
    engine_free(F.api.engine);
    cache_free(F.api.cache);
    char path[600];
    const char *suffix[] = { "", "-wal", "-shm", ".lock" };
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s%s", F.cfg.database_url + strlen("sqlite://"), suffix[i]);
        unlink(path);
    }
}

static void at_exit(void)
{
    close_world();
    rmdir(F.dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[512];
    setenv("JOBQ_ENV_FILE", "/nonexistent/.env", 1);
    if (config_load(&F.cfg, 0, NULL, NULL, err, sizeof err) != 0)
        abort();
    log_set_level(LOG_ERROR);
    check_set_loop_thread();
    snprintf(F.dir, sizeof F.dir, "/tmp/jobq-fuzz-XXXXXX");
    if (!mkdtemp(F.dir))
        abort();
    F.api.cfg = &F.cfg;
    F.api.metrics = metrics_new("fuzz");
    F.api.workers = workers_new(F.cfg.worker_gone_ms);
    F.api.perf = perf_new();
    F.api.guard = guard_new(&F.cfg, ratelimit_new()); /* lives as long as the harness */
    F.api.events = api_events_new();
    open_world();
    atexit(at_exit);
    return 0;
}

/* Splits "a=1&b=%41" into decoded pairs, in place. */
static size_t split_query(char *q, http_pair_t *out)
{
    size_t n = 0;
    for (char *save = NULL, *kv = strtok_r(q, "&", &save); kv && n < MAX_PAIRS;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq)
            *eq++ = '\0';
        http_unescape(kv);
        if (eq)
            http_unescape(eq);
        out[n++] = (http_pair_t){ kv, eq ? eq : "" };
    }
    return n;
}

static void check_reply(int status, const char *body)
{
    if (status < 200 || status > 599)
        abort();
    if (status < 400)
        return;
    json_t *p = json_loads(body, 0, NULL);
    if (!json_is_object(p) || !json_is_string(json_object_get(p, "type")) ||
        json_integer_value(json_object_get(p, "status")) != status)
        abort(); /* every error is a problem document */
    json_decref(p);
}

/* Runs store round trips until r is answered; long polls are released. */
static void settle(http_req_t *r)
{
    int status;
    const char *body;
    for (int i = 0; i < 400; i++) {
        if (http_synthetic_reply(r, &status, &body)) {
            check_reply(status, body);
            return;
        }
        if (i == 20)
            engine_release_waiters(F.api.engine);
        struct pollfd pfd = { store_notify_fd(F.api.store), POLLIN, 0 };
        poll(&pfd, 1, 10);
        store_dispatch(F.api.store);
    }
    abort(); /* a request that is never answered */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    char *nl = memchr(text, '\n', size), *sp;
    if (!nl || !(sp = memchr(text, ' ', (size_t)(nl - text)))) {
        free(text);
        return 0;
    }
    *nl = *sp = '\0';
    http_pair_t headers[MAX_PAIRS], query[MAX_PAIRS];
    size_t nh = 0, nq = 0;
    char *target = sp + 1, *q = strchr(target, '?'), *line = nl + 1;
    if (q) {
        *q++ = '\0';
        nq = split_query(q, query);
    }
    http_unescape(target);
    while (line < text + size && *line != '\n') {
        char *end = strchr(line, '\n'), *colon = strchr(line, ':');
        if (!end)
            break;
        *end = '\0';
        if (colon && nh < MAX_PAIRS) {
            *colon = '\0';
            headers[nh++] = (http_pair_t){ line, colon[1] == ' ' ? colon + 2 : colon + 1 };
        }
        line = end + 1;
    }
    const char *body = line < text + size ? line + 1 : "";
    size_t blen = line < text + size ? (size_t)(text + size - line - 1) : 0;
    http_synthetic_t spec = { .method = text, .path = target, .headers = headers,
                              .nheaders = nh, .query = query, .nquery = nq, .body = body,
                              .body_len = blen };
    http_req_t *r = http_synthetic_new(&spec);
    if (r) {
        api_route(&F.api, r);
        settle(r);
        http_synthetic_free(r);
        store_dispatch(F.api.store); /* a read that outlived its request frees its call */
        event_base_loop(F.api.base, EVLOOP_NONBLOCK);
    }
    free(text);
    if (++F.runs % RESET_EVERY == 0) {
        close_world();
        open_world();
    }
    return 0;
}
