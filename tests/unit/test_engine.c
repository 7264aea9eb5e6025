/* Engine: ordering, transitions (allowed and refused), backoff, leases. */
#include "engine_fixture.h"

static void test_priority_then_fifo(void **state)
{
    engine_t *e = *state;
    put(e, "low1", "\"priority\":\"low\"");
    put(e, "n1", NULL);
    put(e, "crit", "\"priority\":0");
    put(e, "n2", NULL);
    put(e, "bg", "\"priority\":\"background\"");
    put(e, "high", "\"priority\":\"high\"");
    job_t *out[10];
    assert_int_equal(lease(e, 10, out), 6);
    const char *want[] = { "crit", "high", "n1", "n2", "low1", "bg" };
    for (int i = 0; i < 6; i++)
        assert_string_equal(out[i]->id, want[i]);
}

static void test_scheduled_not_leased_early(void **state)
{
    engine_t *e = *state;
    const job_t *j = put(e, "later", "\"delay_ms\":5000");
    assert_int_equal(j->state, JOB_PENDING);
    job_t *out[1];
    assert_int_equal(lease(e, 1, out), 0);
    fake_now += 4999;
    engine_tick(e);
    assert_int_equal(lease(e, 1, out), 0);
    fake_now += 1;
    engine_tick(e);
    assert_int_equal(engine_get(e, "later")->state, JOB_QUEUED);
    assert_int_equal(lease(e, 1, out), 1);
}

static void test_complete_and_fencing(void **state)
{
    engine_t *e = *state;
    put(e, "a", NULL);
    job_t *out[1];
    assert_int_equal(lease(e, 1, out), 1);
    char lease_id[64];
    strcpy(lease_id, out[0]->lease_id);
    assert_int_equal(strlen(lease_id), 32);
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_complete(e, "a", "0000", NULL, &j, &p), ERR_CONFLICT);
    assert_string_equal(p.field, "lease_id");
    assert_int_equal(engine_complete(e, "a", lease_id, NULL, &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_COMPLETED);
    assert_int_equal(engine_complete(e, "a", lease_id, NULL, &j, &p), ERR_CONFLICT);
    assert_int_equal(engine_fail(e, "a", lease_id, ERR_INTERNAL, "x", NULL, -1, &j, &p),
                     ERR_CONFLICT);
    assert_int_equal(engine_complete(e, "nope", lease_id, NULL, &j, &p), ERR_NOT_FOUND);
}

static void test_retry_backoff_then_failed(void **state)
{
    engine_t *e = *state;
    put(e, "f", "\"max_retries\":2,\"backoff\":{\"initial_ms\":1000,\"jitter\":0}");
    const job_t *j;
    problem_t p;
    job_t *out[1];
    int64_t expect_delay[] = { 1000, 2000 };
    for (int attempt = 1; attempt <= 3; attempt++) {
        assert_int_equal(lease(e, 1, out), 1);
        assert_int_equal(out[0]->attempts, attempt);
        char lid[64];
        strcpy(lid, out[0]->lease_id);
        assert_int_equal(engine_fail(e, "f", lid, ERR_UNAVAILABLE, "down", NULL, -1, &j, &p), ERR_OK);
        if (attempt < 3) {
            assert_int_equal(j->state, JOB_RETRYING);
            assert_int_equal(j->run_at - fake_now, expect_delay[attempt - 1]);
            int64_t run_at = j->run_at; /* j lives until the next engine call */
            assert_int_equal(lease(e, 1, out), 0);
            fake_now = run_at;
            engine_tick(e);
        }
    }
    j = engine_get(e, "f");
    assert_int_equal(j->state, JOB_FAILED);
    assert_int_equal(json_array_size(j->errors), 3);
    json_t *last = json_array_get(j->errors, 2);
    assert_int_equal(json_integer_value(json_object_get(last, "attempt")), 3);
    assert_string_equal(json_string_value(json_object_get(last, "type")), "unavailable");
    assert_string_equal(json_string_value(json_object_get(last, "worker")), "w");
    assert_int_equal(persisted[JOB_EV_RETRIED], 2);
    assert_int_equal(persisted[JOB_EV_FAILED], 1);
}

static void test_retry_after_is_a_floor_on_the_delay(void **state)
{
    engine_t *e = *state;
    put(e, "ra", "\"backoff\":{\"initial_ms\":1000,\"jitter\":0}");
    job_t *out[1];
    lease(e, 1, out);
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_fail_after(e, "ra", out[0]->lease_id, ERR_UNAVAILABLE, "slow down",
                                       NULL, -1, 5000, &j, &p), ERR_OK);
    assert_int_equal(j->run_at - fake_now, 5000);
    fake_now = j->run_at;
    engine_tick(e);
    lease(e, 1, out);
    assert_int_equal(engine_fail_after(e, "ra", out[0]->lease_id, ERR_UNAVAILABLE, "x", NULL, -1,
                                       10, &j, &p), ERR_OK);
    assert_int_equal(j->run_at - fake_now, 2000); /* the backoff is longer: it wins */
}

static void test_non_retryable_and_forced(void **state)
{
    engine_t *e = *state;
    const job_t *j;
    problem_t p;
    job_t *out[1];
    put(e, "v", NULL);
    lease(e, 1, out);
    assert_int_equal(engine_fail(e, "v", out[0]->lease_id, ERR_VALIDATION, "bad", NULL, -1, &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_FAILED);
    put(e, "r", NULL);
    lease(e, 1, out);
    assert_int_equal(engine_fail(e, "r", out[0]->lease_id, ERR_INTERNAL, "x", NULL, 0, &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_FAILED);
}

static void test_backoff_jitter_bounds(void **state)
{
    (void)state;
    backoff_t b = { 1000, 10000, 2.0, 0.2 };
    for (int n = 1; n <= 8; n++) {
        double base = 1000.0 * (1 << (n - 1));
        if (base > 10000)
            base = 10000;
        assert_true(backoff_delay_ms(&b, n, 0.0) >= (int64_t)(base * 0.8) - 1);
        assert_true(backoff_delay_ms(&b, n, 0.999999) <= (int64_t)(base * 1.2) + 1);
        assert_int_equal(backoff_delay_ms(&b, n, 0.5), (int64_t)base);
    }
    backoff_t huge = { 1000, 3600000, 100.0, 0 };
    assert_int_equal(backoff_delay_ms(&huge, 1000, 0.5), 3600000);
}

static void test_lease_expiry_is_timeout(void **state)
{
    engine_t *e = *state;
    put(e, "x", "\"timeout_ms\":1000,\"max_retries\":0");
    job_t *out[1];
    lease(e, 1, out);
    char lid[64];
    strcpy(lid, out[0]->lease_id);
    fake_now += 999;
    engine_tick(e);
    assert_int_equal(engine_get(e, "x")->state, JOB_RUNNING);
    fake_now += 1;
    engine_tick(e);
    const job_t *j = engine_get(e, "x");
    assert_int_equal(j->state, JOB_FAILED);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j->errors, 0), "type")), "timeout");
    problem_t p;
    assert_int_equal(engine_complete(e, "x", lid, NULL, &j, &p), ERR_CONFLICT);
}

static void test_heartbeat_extends(void **state)
{
    engine_t *e = *state;
    put(e, "h", "\"timeout_ms\":1000");
    job_t *out[1];
    lease(e, 1, out);
    char lid[64];
    strcpy(lid, out[0]->lease_id);
    const job_t *j;
    problem_t p;
    fake_now += 900;
    assert_int_equal(engine_heartbeat(e, "h", lid, NULL, 5000, &j, &p), ERR_OK);
    fake_now += 4000;
    engine_tick(e);
    assert_int_equal(engine_get(e, "h")->state, JOB_RUNNING);
    fake_now += 1000;
    engine_tick(e);
    assert_int_equal(engine_get(e, "h")->state, JOB_RETRYING);
}

static void test_cancel_states(void **state)
{
    engine_t *e = *state;
    const job_t *j;
    problem_t p;
    put(e, "q", NULL);
    assert_int_equal(engine_cancel(e, "q", &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_CANCELLED);
    assert_int_equal(engine_cancel(e, "q", &j, &p), ERR_CONFLICT);
    put(e, "p", "\"delay_ms\":100000");
    assert_int_equal(engine_cancel(e, "p", &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_CANCELLED);
    put(e, "run", NULL);
    job_t *out[1];
    lease(e, 1, out);
    char lid[64];
    strcpy(lid, out[0]->lease_id);
    assert_int_equal(engine_cancel(e, "run", &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_RUNNING);
    assert_true(j->cancel_requested);
    assert_int_equal(engine_heartbeat(e, "run", lid, NULL, 0, &j, &p), ERR_OK);
    assert_true(j->cancel_requested);
    assert_int_equal(engine_fail(e, "run", lid, ERR_INTERNAL, "stopped", NULL, -1, &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_CANCELLED);
}

static void test_retry_and_delete(void **state)
{
    engine_t *e = *state;
    const job_t *j;
    problem_t p;
    put(e, "d", NULL);
    assert_int_equal(engine_retry(e, "d", &j, &p), ERR_CONFLICT);
    assert_int_equal(engine_delete(e, "d", &p), ERR_CONFLICT);
    engine_cancel(e, "d", &j, &p);
    assert_int_equal(engine_retry(e, "d", &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_QUEUED);
    engine_cancel(e, "d", &j, &p);
    assert_int_equal(engine_delete(e, "d", &p), ERR_OK);
    assert_null(engine_get(e, "d"));
    assert_int_equal(deletes, 1);
    assert_int_equal(engine_delete(e, "d", &p), ERR_NOT_FOUND);
}

static void test_idempotent_enqueue(void **state)
{
    engine_t *e = *state;
    put(e, "same", "\"args\":{\"a\":1}");
    job_t *job;
    problem_t p;
    json_t *spec = json_pack("{s:s, s:s, s:{s:i}}", "id", "same", "type", "t", "args", "a", 1);
    assert_int_equal(job_parse_spec(spec, &defaults, fake_now, &job, &p), ERR_OK);
    bool created = true;
    const job_t *out;
    assert_int_equal(engine_enqueue(e, job, &created, &out, &p), ERR_OK);
    assert_false(created);
    json_object_set_new(spec, "args", json_integer(2));
    assert_int_equal(job_parse_spec(spec, &defaults, fake_now, &job, &p), ERR_OK);
    assert_int_equal(engine_enqueue(e, job, &created, &out, &p), ERR_CONFLICT);
    json_decref(spec);
    assert_int_equal(persisted[JOB_EV_ENQUEUED], 1);
}

static int woken;
static void on_wake(engine_waiter_t *w, job_t **jobs, int n)
{
    (void)w;
    (void)jobs;
    woken = n;
}

static void test_waiter_gets_new_job_and_times_out(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = { .worker = "w", .queues = default_queue, .nqueues = 1, .max = 5, .cb = on_wake };
    job_t *out[5];
    woken = -1;
    assert_int_equal(engine_lease(e, &w, 1000, out), 0);
    assert_true(engine_waiter_waiting(&w));
    put(e, "now", NULL);
    assert_int_equal(woken, 1);
    assert_false(engine_waiter_waiting(&w));
    woken = -1;
    assert_int_equal(engine_lease(e, &w, 1000, out), 0);
    fake_now += 1000;
    engine_tick(e);
    assert_int_equal(woken, 0);
}

static bool dead(engine_waiter_t *w) { (void)w; return false; }

static void test_gone_waiter_is_skipped(void **state)
{
    engine_t *e = *state;
    engine_waiter_t gone = { .worker = "gone", .queues = default_queue, .nqueues = 1, .max = 1,
                             .cb = on_wake, .alive = dead };
    job_t *out[1];
    assert_int_equal(engine_lease(e, &gone, 5000, out), 0);
    woken = -1;
    put(e, "j", NULL);
    assert_int_equal(woken, 0); /* answered empty, not handed the job */
    assert_false(engine_waiter_waiting(&gone));
    assert_int_equal(engine_get(e, "j")->state, JOB_QUEUED);
}

static void test_paused_queue(void **state)
{
    engine_t *e = *state;
    put(e, "pq", NULL);
    engine_pause(e, "default", true);
    job_t *out[1];
    assert_int_equal(lease(e, 1, out), 0);
    engine_pause(e, "default", false);
    assert_int_equal(lease(e, 1, out), 1);
    assert_int_equal(queue_writes, 2);
}

static void count_queue(void *ud, const engine_queue_info_t *q)
{
    (void)q;
    ++*(size_t *)ud;
}

static void note_limited(void *ud, const engine_limit_info_t *l)
{
    if (l->kind == ENGINE_LIMIT_QUEUE && strcmp(l->name, "kept-limited") == 0)
        *(bool *)ud = true;
}

static size_t queues_held(engine_t *e)
{
    size_t n = 0;
    engine_queue_foreach(e, count_queue, &n);
    return n;
}

/* n jobs, each in a queue of its own (prefix0, prefix1, ...), each
 * cancelled and deleted at once: queues left with no job. */
static void churn_queues(engine_t *e, const char *prefix, int n)
{
    const job_t *j;
    problem_t p;
    for (int i = 0; i < n; i++) {
        char id[48], extra[80];
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        snprintf(extra, sizeof extra, "\"queue\":\"%s%d\"", prefix, i);
        put(e, id, extra);
        assert_int_equal(engine_cancel(e, id, &j, &p), ERR_OK);
        assert_int_equal(engine_delete(e, id, &p), ERR_OK);
    }
}

/* Queue names are the clients' to invent: a queue the engine holds no job
 * of, not paused and not limited, goes (when new queues have doubled the
 * map), so a client naming a new queue for every job cannot grow it for
 * good. */
static void test_queues_without_jobs_go(void **state)
{
    engine_t *e = *state;
    engine_pause(e, "kept-paused", true);
    engine_limit_t one = { .concurrency = 1 };
    assert_int_equal(engine_set_limit(e, ENGINE_LIMIT_QUEUE, "kept-limited", &one), 0);
    put(e, "live", "\"queue\":\"kept-live\"");
    churn_queues(e, "gone", 1000);
    assert_true(queues_held(e) < 200);
    assert_true(engine_queue_paused(e, "kept-paused"));
    job_t *out[1];
    const char *live[] = { "kept-live" };
    engine_waiter_t w = { .worker = "w", .queues = live, .nqueues = 1, .max = 1 };
    assert_int_equal(engine_lease(e, &w, 0, out), 1); /* the live job's queue is whole */
    assert_string_equal(out[0]->id, "live");
    bool limited = false;
    engine_limit_foreach(e, note_limited, &limited);
    assert_true(limited);
}

/* What a queue and a lane hold counts toward the memory limit, and comes
 * back when they go: the same job costs more in a queue of its own. */
static void test_queues_and_lanes_count_in_memory(void **state)
{
    engine_t *e = *state;
    put(e, "first", "\"queue\":\"qa\"");
    int64_t one = engine_memory_bytes(e);
    put(e, "other", "\"queue\":\"qa\""); /* same sizes, queue and lane there */
    int64_t shared = engine_memory_bytes(e) - one;
    put(e, "third", "\"queue\":\"qb\"");
    int64_t own = engine_memory_bytes(e) - one - shared;
    assert_true(own > shared + (int64_t)(200));
    churn_queues(e, "x", 200); /* new queues until a sweep has run */
    /* What is left over is the empty queues not yet swept, no more. */
    int64_t left = engine_memory_bytes(e) - one - shared - own;
    assert_true(left >= 0 && left <= (int64_t)(queues_held(e) - 2) * (own - shared));
}

static void test_parse_spec_refusals(void **state)
{
    (void)state;
    const char *bad[][2] = {
        { "{\"type\":\"t\",\"zzz\":1}", "zzz" },
        { "{}", "type" },
        { "{\"type\":\"a b\"}", "type" },
        { "{\"type\":\"t\",\"id\":\"\"}", "id" },
        { "{\"type\":\"t\",\"priority\":5}", "priority" },
        { "{\"type\":\"t\",\"priority\":\"urgent\"}", "priority" },
        { "{\"type\":\"t\",\"max_retries\":1001}", "max_retries" },
        { "{\"type\":\"t\",\"timeout_ms\":999}", "timeout_ms" },
        { "{\"type\":\"t\",\"run_at\":\"tomorrow\"}", "run_at" },
        { "{\"type\":\"t\",\"run_at\":\"2026-01-01T00:00:00Z\",\"delay_ms\":1}", "delay_ms" },
        { "{\"type\":\"t\",\"backoff\":{\"jitter\":2}}", "backoff.jitter" },
        { "{\"type\":\"t\",\"backoff\":{\"initial_ms\":5000,\"max_ms\":10}}", "backoff.max_ms" },
        { "{\"type\":\"t\",\"backoff\":{\"nope\":1}}", "backoff" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *spec = json_loads(bad[i][0], 0, NULL);
        job_t *job = NULL;
        problem_t p;
        assert_int_equal(job_parse_spec(spec, &defaults, 0, &job, &p), ERR_VALIDATION);
        assert_string_equal(p.field, bad[i][1]);
        assert_null(job);
        json_decref(spec);
    }
}

static void test_doc_round_trip(void **state)
{
    engine_t *e = *state;
    put(e, "rt", "\"args\":[1,\"x\"],\"breaker_key\":\"k\",\"backoff\":{\"multiplier\":1.7}");
    job_t *out[1];
    lease(e, 1, out);
    char *text = job_json(out[0], JOB_JSON_STORED);
    json_t *doc = json_loads(text, 0, NULL);
    free(text);
    job_t *back;
    problem_t p;
    assert_int_equal(job_from_doc(doc, &back, &p), ERR_OK);
    json_decref(doc);
    assert_true(job_same_spec(back, out[0]));
    assert_string_equal(back->lease_id, out[0]->lease_id);
    assert_int_equal(back->lease_expires_at, out[0]->lease_expires_at);
    assert_int_equal(back->state, JOB_RUNNING);
    assert_int_equal(back->attempts, 1);
    job_free(back);
}

static void test_discard_failed_leaves_at_once(void **state)
{
    engine_t *e = *state;
    const job_t *j = put(e, "d1", "\"timeout_ms\":1000,\"max_retries\":0");
    ((job_t *)j)->discard_failed = true;
    job_t *out[1];
    lease(e, 1, out);
    char lid[64];
    strcpy(lid, out[0]->lease_id);
    problem_t p;
    const job_t *f;
    assert_int_equal(engine_fail(e, "d1", lid, ERR_INTERNAL, "x", NULL, 1, &f, &p), ERR_OK);
    assert_int_equal(f->state, JOB_FAILED); /* still readable until the next call */
    assert_int_equal(persisted[JOB_EV_FAILED], 1);
    assert_int_equal(deletes, 1);
    assert_null(engine_get(e, "d1"));
    /* the same on a lease that runs out */
    j = put(e, "d2", "\"timeout_ms\":1000,\"max_retries\":0");
    ((job_t *)j)->discard_failed = true;
    lease(e, 1, out);
    fake_now += 1000;
    engine_tick(e);
    assert_null(engine_get(e, "d2"));
    assert_int_equal(deletes, 2);
    assert_int_equal(engine_job_count(e), 0);
}

static void test_remove_kill_and_run_now(void **state)
{
    engine_t *e = *state;
    put(e, "q", NULL);
    put(e, "s", "\"delay_ms\":60000");
    put(e, "r", NULL);
    job_t *out[1];
    problem_t p;
    const job_t *j;
    assert_int_equal(lease(e, 1, out), 1); /* q runs */
    assert_int_equal(engine_remove(e, "q", &p), ERR_CONFLICT);
    assert_int_equal(engine_run_now(e, "r", &j, &p), ERR_CONFLICT); /* queued, not scheduled */
    assert_int_equal(engine_run_now(e, "s", &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_QUEUED);
    assert_int_equal(engine_kill(e, "s", &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_FAILED);
    assert_int_equal(engine_kill(e, "s", &j, &p), ERR_CONFLICT);
    assert_int_equal(engine_remove(e, "r", &p), ERR_OK);
    assert_int_equal(engine_remove(e, "s", &p), ERR_OK);
    assert_null(engine_get(e, "r"));
    assert_int_equal(deletes, 2);
    assert_int_equal(engine_job_count(e), 1);
    assert_int_equal(engine_lease(e, &(engine_waiter_t){ .worker = "w", .queues = default_queue,
                                                          .nqueues = 1, .max = 1 }, 0, out), 0);
}

/* Counts by state and priority follow every transition, frozen jobs and
 * dropped ones included, and always add up to the counts by state. */
static void by_priority(void *ud, const engine_queue_info_t *q)
{
    if (strcmp(q->name, "default") == 0)
        memcpy(ud, q, sizeof *q);
}

static engine_queue_info_t counts(engine_t *e)
{
    engine_queue_info_t q = { 0 };
    engine_queue_foreach(e, by_priority, &q);
    for (int s = 0; s < JOB_STATE_COUNT; s++) {
        size_t sum = 0;
        for (int p = 0; p < JOB_PRIORITIES; p++)
            sum += q.by_priority[s][p];
        assert_int_equal(sum, q.count[s]);
    }
    return q;
}

static void test_counts_by_state_and_priority(void **state)
{
    engine_t *e = *state;
    put(e, "c1", "\"priority\":\"critical\",\"max_retries\":0");
    put(e, "h1", "\"priority\":\"high\"");
    put(e, "h2", "\"priority\":\"high\"");
    put(e, "b1", "\"priority\":\"background\",\"run_at\":\"2099-01-01T00:00:00Z\"");
    engine_freeze_idle(e); /* frozen ones count by their lane's priority */
    engine_queue_info_t q = counts(e);
    assert_int_equal(q.by_priority[JOB_QUEUED][0], 1);
    assert_int_equal(q.by_priority[JOB_QUEUED][1], 2);
    assert_int_equal(q.by_priority[JOB_PENDING][4], 1);
    job_t *out[2];
    assert_int_equal(lease(e, 2, out), 2); /* c1, h1 */
    char lid[64];
    strcpy(lid, out[0]->lease_id);
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_fail(e, "c1", lid, ERR_VALIDATION, "no", NULL, -1, &j, &p), ERR_OK);
    q = counts(e);
    assert_int_equal(q.by_priority[JOB_FAILED][0], 1);
    assert_int_equal(q.by_priority[JOB_RUNNING][1], 1);
    assert_int_equal(q.by_priority[JOB_QUEUED][1], 1);
    assert_int_equal(engine_cancel(e, "b1", &j, &p), ERR_OK);
    assert_int_equal(engine_delete(e, "b1", &p), ERR_OK);
    assert_int_equal(engine_delete(e, "c1", &p), ERR_OK);
    q = counts(e);
    assert_int_equal(q.by_priority[JOB_PENDING][4] + q.by_priority[JOB_CANCELLED][4], 0);
    assert_int_equal(q.by_priority[JOB_FAILED][0], 0);
}

/* A waiting job freezes once no caller can hold it (the next engine call)
 * and reads back the same: every field of a retrying job with its errors,
 * a pending one, and a queued one, in the order they were due. Memory
 * drops while they are frozen. */
static void test_frozen_jobs_read_back_the_same(void **state)
{
    engine_t *e = *state;
    put(e, "r", "\"priority\":\"high\",\"breaker_key\":\"api.example\",\"args\":{\"a\":[1,2.5,\"x\"]},"
                "\"max_retries\":5,\"backoff\":{\"initial_ms\":2000,\"jitter\":0}");
    job_t *out[1];
    const job_t *j;
    problem_t p;
    assert_int_equal(lease(e, 1, out), 1);
    char lid[64];
    strcpy(lid, out[0]->lease_id);
    json_t *ctx = json_pack("{s:i}", "code", 503);
    assert_int_equal(engine_fail(e, "r", lid, ERR_UNAVAILABLE, "down", ctx, -1, &j, &p), ERR_OK);
    json_decref(ctx);
    char *before = job_json(j, JOB_JSON_STORED);
    put(e, "later", "\"run_at\":\"2099-01-01T00:00:00Z\"");
    put(e, "q1", NULL);
    put(e, "q2", "\"args\":[true]");
    int64_t thawed = engine_memory_bytes(e);
    engine_freeze_idle(e);
    assert_true(engine_memory_bytes(e) < thawed);

    j = engine_get(e, "r");
    char *after = job_json(j, JOB_JSON_STORED);
    assert_string_equal(after, before);
    assert_int_equal(j->state, JOB_RETRYING);
    assert_string_equal(json_string_value(json_object_get(json_array_get(j->errors, 0), "message")),
                        "down");
    free(before);
    free(after);
    j = engine_get(e, "later");
    assert_int_equal(j->state, JOB_PENDING);
    assert_string_equal(j->type, "t");
    j = engine_get(e, "q2");
    char *args = json_dumps(job_args(j), JSON_COMPACT);
    assert_string_equal(args, "[true]");
    free(args);

    assert_int_equal(lease(e, 1, out), 1); /* FIFO among the frozen */
    assert_string_equal(out[0]->id, "q1");
    assert_int_equal(lease(e, 1, out), 1);
    assert_string_equal(out[0]->id, "q2");
    fake_now += 2000;
    engine_tick(e); /* the retry comes due while frozen */
    assert_int_equal(lease(e, 1, out), 1);
    assert_string_equal(out[0]->id, "r");
    assert_int_equal(out[0]->attempts, 2);
    assert_string_equal(out[0]->breaker_key, "api.example");
}

/* ---- the spill tier, faked in memory ---- */

static struct {
    char *bytes[64];
    size_t len[64];
    int live, writes;
    bool fail_reads;
} tier;

static int64_t tier_write(void *ud, const void *b, size_t n)
{
    (void)ud;
    for (int i = 0; i < 64; i++) {
        if (!tier.bytes[i]) {
            tier.bytes[i] = malloc(n);
            memcpy(tier.bytes[i], b, n);
            tier.len[i] = n;
            tier.live++, tier.writes++;
            return i * 1000; /* offsets are the tier's business */
        }
    }
    return -1;
}

static int tier_read(void *ud, int64_t off, void *buf, size_t n)
{
    (void)ud;
    char *b = tier.bytes[off / 1000];
    if (tier.fail_reads || !b || tier.len[off / 1000] != n)
        return -1;
    memcpy(buf, b, n);
    return 0;
}

static void tier_free(void *ud, int64_t off, size_t n)
{
    (void)ud;
    assert_int_equal(tier.len[off / 1000], n);
    free(tier.bytes[off / 1000]);
    tier.bytes[off / 1000] = NULL;
    tier.live--;
}

static int setup_spill(void **state)
{
    memset(&tier, 0, sizeof tier);
    fake_now = 1700000000000;
    fake_rand = 0.5;
    memset(persisted, 0, sizeof persisted);
    engine_hooks_t h = { .now_ms = now_fn, .rand_unit = rand_fn, .persist = persist_fn,
                         .persist_delete = delete_fn, .persist_queue = queue_fn,
                         .spill_write = tier_write, .spill_read = tier_read,
                         .spill_free = tier_free };
    /* Room for about two queued jobs in memory; the rest spill. */
    engine_options_t o = { .finished_in_memory = 100, .resident_budget_bytes = 300 };
    *state = engine_new(&h, &o);
    return *state ? 0 : -1;
}

static int teardown_spill(void **state)
{
    engine_free(*state);
    assert_int_equal(tier.live, 0); /* every spilled slot was given back */
    return 0;
}

/* Past the budget, queued jobs go to the tier and come back the same, in
 * FIFO order; a failed read leaves the job queued, not lost. */
static void test_spilled_jobs_come_back_in_order(void **state)
{
    engine_t *e = *state;
    char id[16], extra[96];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "s%d", i);
        snprintf(extra, sizeof extra, "\"args\":{\"n\":%d,\"pad\":\"%040d\"}", i, i);
        put(e, id, extra);
    }
    job_t *out[1];
    assert_int_equal(engine_spilled_count(e), 0); /* used lately: parked, thawed */
    engine_freeze_idle(e);
    assert_true(engine_spilled_count(e) >= 7);
    assert_int_equal((int)engine_spilled_count(e), tier.live);

    const job_t *j = engine_get(e, "s8"); /* read back from the tier */
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(job_args(j), "n")), 8);
    assert_int_equal(j->state, JOB_QUEUED);

    tier.fail_reads = true; /* a spilled head that cannot be read is not leased, not lost */
    int leased = 0;
    while (lease(e, 1, out) == 1)
        leased++;
    assert_true(leased < 10);
    assert_null(engine_get(e, "s9"));
    tier.fail_reads = false;
    for (int i = leased; i < 10; i++) {
        assert_int_equal(lease(e, 1, out), 1);
        snprintf(id, sizeof id, "s%d", i);
        assert_string_equal(out[0]->id, id);
        assert_int_equal(json_integer_value(json_object_get(job_args(out[0]), "n")), i);
    }
    assert_int_equal(engine_spilled_count(e), 0);
    assert_int_equal(tier.live, 0);
}

/* Only queued jobs spill: a scheduled one stays in memory. Spilled jobs
 * are gone from the tier once removed, and engine_free gives back the
 * rest (teardown_spill checks). */
static void test_only_queued_jobs_spill(void **state)
{
    engine_t *e = *state;
    put(e, "a", "\"args\":{\"pad\":\"0123456789012345678901234567890123456789\"}");
    put(e, "b", "\"args\":{\"pad\":\"0123456789012345678901234567890123456789\"}");
    put(e, "c", NULL);
    put(e, "d", NULL);
    put(e, "e", NULL);
    put(e, "f", NULL);
    engine_freeze_idle(e);
    size_t spilled = engine_spilled_count(e);
    assert_true(spilled >= 1); /* the budget is spent */
    put(e, "later", "\"run_at\":\"2099-01-01T00:00:00Z\"");
    engine_freeze_idle(e);
    assert_int_equal(engine_spilled_count(e), spilled); /* frozen, but in memory */
    problem_t p;
    assert_int_equal(engine_remove(e, "d", &p), ERR_OK);
    assert_int_equal(engine_get(e, "later")->state, JOB_PENDING);
    assert_int_equal(tier.live, (int)engine_spilled_count(e));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_priority_then_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_by_state_and_priority, setup, teardown),
        cmocka_unit_test_setup_teardown(test_frozen_jobs_read_back_the_same, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spilled_jobs_come_back_in_order, setup_spill, teardown_spill),
        cmocka_unit_test_setup_teardown(test_only_queued_jobs_spill, setup_spill, teardown_spill),
        cmocka_unit_test_setup_teardown(test_scheduled_not_leased_early, setup, teardown),
        cmocka_unit_test_setup_teardown(test_complete_and_fencing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_backoff_then_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_non_retryable_and_forced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_after_is_a_floor_on_the_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff_jitter_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_expiry_is_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_heartbeat_extends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_states, setup, teardown),
        cmocka_unit_test_setup_teardown(test_retry_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idempotent_enqueue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_waiter_gets_new_job_and_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gone_waiter_is_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paused_queue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_without_jobs_go, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queues_and_lanes_count_in_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_spec_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_doc_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard_failed_leaves_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_kill_and_run_now, setup, teardown),
    };
    return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
