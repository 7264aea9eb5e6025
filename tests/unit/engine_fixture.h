/*
 * engine_fixture: a fresh engine per test on a fake clock, with helpers to
 * enqueue and lease. Included by the engine's unit tests only.
 */
#ifndef JOBQ_ENGINE_FIXTURE_H
#define JOBQ_ENGINE_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

static int64_t fake_now;
static double fake_rand;
static int persisted[JOB_EV_COUNT];
static int deletes, queue_writes;
static int transitions; /* breaker state changes */
static engine_breaker_state_t last_breaker_state;

static int64_t now_fn(void *ud) { (void)ud; return fake_now; }
static double rand_fn(void *ud) { (void)ud; return fake_rand; }
static void persist_fn(void *ud, const job_t *j, job_event_t ev) { (void)ud; (void)j; persisted[ev]++; }
static void delete_fn(void *ud, const char *id) { (void)ud; (void)id; deletes++; }
static void queue_fn(void *ud, const char *q, bool p) { (void)ud; (void)q; (void)p; queue_writes++; }

static void breaker_fn(void *ud, const char *key, engine_breaker_state_t from,
                       engine_breaker_state_t to)
{
    (void)ud;
    (void)key;
    (void)from;
    transitions++;
    last_breaker_state = to;
}

static const job_defaults_t defaults = { 3, 60000, { 1000, 3600000, 2.0, 0.2 } };

static inline int setup(void **state)
{
    fake_now = 1700000000000;
    fake_rand = 0.5;
    memset(persisted, 0, sizeof persisted);
    deletes = queue_writes = transitions = 0;
    engine_hooks_t h = { .now_ms = now_fn, .rand_unit = rand_fn, .persist = persist_fn,
                         .persist_delete = delete_fn, .persist_queue = queue_fn,
                         .breaker_changed = breaker_fn };
    engine_options_t o = { .finished_in_memory = 100 };
    *state = engine_new(&h, &o);
    return *state ? 0 : -1;
}

static inline int teardown(void **state)
{
    engine_free(*state);
    return 0;
}

/* Enqueues {"id":id, "type":"t", ...extra}; asserts success. */
static inline const job_t *put(engine_t *e, const char *id, const char *extra_json)
{
    char text[512];
    snprintf(text, sizeof text, "{\"id\":\"%s\",\"type\":\"t\"%s%s}", id,
             extra_json ? "," : "", extra_json ? extra_json : "");
    json_t *spec = json_loads(text, 0, NULL);
    assert_non_null(spec);
    job_t *job;
    problem_t p;
    assert_int_equal(job_parse_spec(spec, &defaults, fake_now, &job, &p), ERR_OK);
    json_decref(spec);
    bool created;
    const job_t *out;
    assert_int_equal(engine_enqueue(e, job, &created, &out, &p), ERR_OK);
    return out;
}

static const char *const default_queue[] = { "default" };

static inline int lease(engine_t *e, int max, job_t **out)
{
    engine_waiter_t w = { .worker = "w", .queues = default_queue, .nqueues = 1, .max = max };
    return engine_lease(e, &w, 0, out);
}

#endif
