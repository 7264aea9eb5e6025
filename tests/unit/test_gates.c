/* Engine gates: breakers, execution limits, rate_limited holds, aging. */
#include "engine_fixture.h"

static const engine_breaker_options_t breaker3 = {
    .failures = 3, .window_ms = 60000, .cooldown_ms = 1000, .cooldown_max_ms = 3000, .probes = 1,
};

/* Fails a leased job (its id copied first: the engine lends pointers only
 * until its next call). */
static void fail_leased(engine_t *e, job_t *j, err_t type)
{
    const job_t *out;
    problem_t p;
    char id[JOB_NAME_MAX + 1];
    snprintf(id, sizeof id, "%s", j->id);
    assert_int_equal(engine_fail(e, id, j->lease_id, type, "down", NULL, -1, &out, &p), ERR_OK);
}

/* Leases one job (id, if given, says which) and fails it with type. */
static void lease_and_fail(engine_t *e, const char *id, err_t type)
{
    job_t *out[1];
    assert_int_equal(lease(e, 1, out), 1);
    if (id)
        assert_string_equal(out[0]->id, id);
    fail_leased(e, out[0], type);
}

static void finish(engine_t *e, job_t *j)
{
    const job_t *out;
    problem_t p;
    char id[JOB_NAME_MAX + 1];
    snprintf(id, sizeof id, "%s", j->id);
    assert_int_equal(engine_complete(e, id, j->lease_id, NULL, &out, &p), ERR_OK);
}

static const char *blocked(engine_t *e, const char *id)
{
    static char buf[256];
    return engine_blocked_by(e, engine_get(e, id), buf, sizeof buf);
}

static void test_breaker_opens_and_other_keys_flow(void **state)
{
    engine_t *e = *state;
    engine_set_options(e, &breaker3, 0);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "a%d", i);
        put(e, id, "\"breaker_key\":\"hostA\",\"max_retries\":5");
        lease_and_fail(e, id, ERR_TIMEOUT);
    }
    assert_int_equal(last_breaker_state, ENGINE_BREAKER_OPEN);
    put(e, "a9", "\"breaker_key\":\"hostA\"");
    put(e, "b1", "\"breaker_key\":\"hostB\"");
    assert_string_equal(blocked(e, "a9"), "breaker:hostA");
    assert_null(blocked(e, "b1"));
    job_t *out[10];
    assert_int_equal(lease(e, 10, out), 1); /* only hostB's job */
    assert_string_equal(out[0]->id, "b1");
    /* The failed ones come back from backoff but stay held; attempts unspent. */
    fake_now += 900;
    engine_tick(e);
    assert_int_equal(lease(e, 10, out), 0);
    assert_int_equal(engine_get(e, "a0")->attempts, 1);
}

static void test_half_open_probe_closes_or_reopens(void **state)
{
    engine_t *e = *state;
    engine_set_options(e, &breaker3, 0);
    for (int i = 0; i < 3; i++) {
        put(e, i == 0 ? "x0" : i == 1 ? "x1" : "x2", "\"max_retries\":0");
        lease_and_fail(e, NULL, ERR_UNAVAILABLE);
    }
    put(e, "p1", NULL);
    put(e, "p2", NULL);
    job_t *out[10];
    assert_int_equal(lease(e, 10, out), 0);
    fake_now += 1000; /* cool-down over: one probe */
    assert_int_equal(lease(e, 10, out), 1);
    assert_string_equal(out[0]->id, "p1");
    assert_int_equal(last_breaker_state, ENGINE_BREAKER_HALF_OPEN);
    assert_string_equal(blocked(e, "p2"), "breaker:t");
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_fail(e, "p1", out[0]->lease_id, ERR_TIMEOUT, "x", NULL, 0, &j, &p),
                     ERR_OK);
    assert_int_equal(last_breaker_state, ENGINE_BREAKER_OPEN);
    fake_now += 1999; /* the cool-down doubled */
    assert_int_equal(lease(e, 10, out), 0);
    fake_now += 1;
    assert_int_equal(lease(e, 10, out), 1);
    finish(e, out[0]);
    assert_int_equal(last_breaker_state, ENGINE_BREAKER_CLOSED);
    put(e, "p3", NULL);
    assert_int_equal(lease(e, 10, out), 1);
}

static void test_not_found_does_not_count(void **state)
{
    engine_t *e = *state;
    engine_set_options(e, &breaker3, 0);
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "n%d", i);
        put(e, id, NULL);
        lease_and_fail(e, id, ERR_NOT_FOUND);
    }
    assert_int_equal(transitions, 0);
}

static void test_breaker_reset_and_report(void **state)
{
    engine_t *e = *state;
    engine_set_options(e, &breaker3, 0);
    for (int i = 0; i < 3; i++) {
        put(e, i == 0 ? "r0" : i == 1 ? "r1" : "r2", "\"breaker_key\":\"k\",\"max_retries\":0");
        lease_and_fail(e, NULL, ERR_INTERNAL);
    }
    problem_t p;
    assert_int_equal(engine_breaker_reset(e, "nope", &p), ERR_NOT_FOUND);
    assert_int_equal(engine_breaker_reset(e, "k", &p), ERR_OK);
    assert_int_equal(last_breaker_state, ENGINE_BREAKER_CLOSED);
    put(e, "r3", "\"breaker_key\":\"k\"");
    job_t *out[1];
    assert_int_equal(lease(e, 1, out), 1);
}

static void test_type_concurrency_limit(void **state)
{
    engine_t *e = *state;
    engine_limit_t two = { .concurrency = 2 };
    assert_int_equal(engine_set_limit(e, ENGINE_LIMIT_TYPE, "t", &two), 0);
    for (int i = 0; i < 4; i++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", i);
        put(e, id, NULL);
    }
    put(e, "other", "\"type\":\"u\"");
    job_t *out[10];
    assert_int_equal(lease(e, 10, out), 3); /* two of t, and u */
    assert_string_equal(blocked(e, "c2"), "concurrency:type:t");
    finish(e, out[0]);
    assert_int_equal(lease(e, 10, out), 1);
    engine_clear_limits(e);
    assert_int_equal(lease(e, 10, out), 1);
}

static int got;
static void on_jobs(engine_waiter_t *w, job_t **jobs, int n)
{
    (void)w;
    (void)jobs;
    got = n;
}

/* Jobs "<prefix>0" .. "<prefix>n-1", each with extra_json. */
static void put_n(engine_t *e, const char *prefix, int n, const char *extra_json)
{
    for (int i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        put(e, id, extra_json);
    }
}

static void test_queue_rate_limit_wakes_waiter(void **state)
{
    engine_t *e = *state;
    engine_limit_t rate = { .rate = 2, .burst = 2 };
    assert_int_equal(engine_set_limit(e, ENGINE_LIMIT_QUEUE, "default", &rate), 0);
    put_n(e, "q", 5, NULL);
    job_t *out[10];
    assert_int_equal(lease(e, 10, out), 2); /* the burst */
    assert_string_equal(blocked(e, "q2"), "rate:queue:default");
    engine_waiter_t w = { .worker = "w", .queues = default_queue, .nqueues = 1, .max = 10,
                          .cb = on_jobs };
    got = -1;
    assert_int_equal(engine_lease(e, &w, 5000, out), 0);
    assert_int_equal(engine_next_deadline(e) - fake_now, 500); /* one token */
    fake_now += 500;
    engine_tick(e);
    assert_int_equal(got, 1);
}

/* Issue 9: a key's rate limit took no token at lease, so it held nothing. */
static void test_key_rate_limit_takes_tokens(void **state)
{
    engine_t *e = *state;
    engine_limit_t rate = { .rate = 0.1, .burst = 2 };
    assert_int_equal(engine_set_limit(e, ENGINE_LIMIT_KEY, "kr", &rate), 0);
    put_n(e, "k", 4, "\"breaker_key\":\"kr\"");
    put(e, "free", "\"breaker_key\":\"other\"");
    job_t *out[10];
    assert_int_equal(lease(e, 10, out), 3); /* the burst of kr, and the other key */
    assert_string_equal(blocked(e, "k2"), "rate:key:kr");
    fake_now += 10000; /* one token */
    assert_int_equal(lease(e, 10, out), 1);
    assert_int_equal(lease(e, 10, out), 0);
}

static void test_rate_limited_holds_key_without_spending(void **state)
{
    engine_t *e = *state;
    put(e, "h1", "\"breaker_key\":\"api\",\"max_retries\":0");
    put(e, "h2", "\"breaker_key\":\"api\"");
    put(e, "o1", "\"breaker_key\":\"other\"");
    job_t *out[10];
    engine_waiter_t w = { .worker = "w", .queues = default_queue, .nqueues = 1, .max = 1 };
    assert_int_equal(engine_lease(e, &w, 0, out), 1);
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_fail_after(e, "h1", out[0]->lease_id, ERR_RATE_LIMITED, "429", NULL,
                                       -1, 3000, &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_RETRYING); /* not failed, though max_retries is 0 */
    assert_int_equal(j->attempts, 0);
    assert_int_equal(json_array_size(j->errors), 1);
    assert_string_equal(blocked(e, "h2"), "held:api");
    assert_int_equal(lease(e, 10, out), 1);
    assert_string_equal(out[0]->id, "o1");
    fake_now += 3000;
    engine_tick(e);
    assert_int_equal(lease(e, 10, out), 2);
}

static void test_aging_lifts_old_background_work(void **state)
{
    engine_t *e = *state;
    engine_set_options(e, &breaker3, 1000);
    put(e, "old", "\"priority\":\"background\"");
    fake_now += 4000; /* four levels: background -> critical */
    engine_tick(e);
    put(e, "new", "\"priority\":\"high\"");
    job_t *out[2];
    assert_int_equal(lease(e, 2, out), 2);
    assert_string_equal(out[0]->id, "old");
    assert_string_equal(out[1]->id, "new");
}

/* Runs one job per letter of outcomes, each to its end before the next is
 * enqueued: 'o' completes it, 'f' fails it as unavailable. */
static void run_outcomes(engine_t *e, const char *prefix, const char *outcomes)
{
    job_t *out[1];
    for (int i = 0; outcomes[i]; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s%d", prefix, i);
        put(e, id, "\"max_retries\":0");
        assert_int_equal(lease(e, 1, out), 1);
        if (outcomes[i] == 'o')
            finish(e, out[0]);
        else
            fail_leased(e, out[0], ERR_UNAVAILABLE);
    }
}

static void test_failure_ratio_over_window(void **state)
{
    engine_t *e = *state;
    engine_breaker_options_t o = { .ratio = 0.5, .min_requests = 4, .window_ms = 10000,
                                   .cooldown_ms = 1000, .cooldown_max_ms = 1000, .probes = 1 };
    engine_set_options(e, &o, 0);
    run_outcomes(e, "a", "fof");
    assert_int_equal(transitions, 0); /* 2 of 3: too few outcomes yet */
    fake_now += 11000;                /* the window forgets them */
    run_outcomes(e, "b", "f");
    assert_int_equal(transitions, 0); /* 1 of 1 in the window */
    run_outcomes(e, "c", "off");
    assert_int_equal(last_breaker_state, ENGINE_BREAKER_OPEN); /* 3 of 4 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_breaker_opens_and_other_keys_flow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_open_probe_closes_or_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_found_does_not_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_breaker_reset_and_report, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_concurrency_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_rate_limit_wakes_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_rate_limit_takes_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_limited_holds_key_without_spending, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_aging_lifts_old_background_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failure_ratio_over_window, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
