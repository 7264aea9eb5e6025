/* Engine in shared mode (cluster mode): only jobs this node runs stay in
 * memory; lessees turn into claims; what no lessee takes goes back. */
#include "engine_fixture.h"

static int claims, claim_max, claim_nqueues;
static int claim_maxes[16]; /* every claim's max, in order */
static bool claim_order;
static int waited; /* lessee callbacks: jobs handed over, or -1 for none */
static const char *handed[8];

static void claim_fn(void *ud, const engine_claim_t *c)
{
    (void)ud;
    if (claims < 16)
        claim_maxes[claims] = c->max;
    claims++;
    claim_max = c->max;
    claim_nqueues = c->nqueues;
    claim_order = c->queue_order;
}

static int setup_shared(void **state)
{
    fake_now = 1700000000000;
    fake_rand = 0.5;
    memset(persisted, 0, sizeof persisted);
    claims = claim_max = claim_nqueues = 0;
    waited = 0;
    engine_hooks_t h = { .now_ms = now_fn, .rand_unit = rand_fn, .persist = persist_fn,
                         .persist_delete = delete_fn, .persist_queue = queue_fn,
                         .claim = claim_fn };
    engine_options_t o = { .finished_in_memory = 100, .shared = true, .claim_poll_ms = 400 };
    *state = engine_new(&h, &o);
    return *state ? 0 : -1;
}

/* A job as a claim brings it back: queued, stored. */
static job_t *stored(const char *id, const char *extra_json)
{
    char text[256];
    snprintf(text, sizeof text, "{\"id\":\"%s\",\"type\":\"t\"%s%s}", id,
             extra_json ? "," : "", extra_json ? extra_json : "");
    json_t *spec = json_loads(text, 0, NULL);
    job_t *job;
    problem_t p;
    assert_int_equal(job_parse_spec(spec, &defaults, fake_now, &job, &p), ERR_OK);
    json_decref(spec);
    job->stored = true;
    job->stored_state = JOB_QUEUED;
    return job;
}

/* The claim comes back with these jobs (at most 8). */
static void claimed(engine_t *e, const char *const *ids, int n, int asked)
{
    job_t *got[8];
    for (int i = 0; i < n; i++)
        got[i] = stored(ids[i], NULL);
    engine_claimed(e, got, NULL, n, asked);
}
#define CLAIMED(e, asked, ...)                                                              \
    claimed((e), (const char *const[]){ __VA_ARGS__ },                                     \
            (int)(sizeof((const char *const[]){ __VA_ARGS__ }) / sizeof(const char *)), (asked))

static void on_jobs(engine_waiter_t *w, job_t **jobs, int n)
{
    (void)w;
    waited = n ? n : -1;
    for (int i = 0; i < n && i < 8; i++)
        handed[i] = jobs[i]->id;
}

static engine_waiter_t waiter(int max)
{
    return (engine_waiter_t){ .worker = "w", .queues = default_queue, .nqueues = 1,
                              .max = max, .cb = on_jobs };
}

static void test_an_enqueued_job_is_written_and_not_kept(void **state)
{
    engine_t *e = *state;
    const job_t *j = put(e, "a", NULL);
    assert_string_equal(j->id, "a"); /* alive until the next call */
    assert_int_equal(persisted[JOB_EV_ENQUEUED], 1);
    assert_int_equal(engine_job_count(e), 0);
    assert_null(engine_get(e, "a"));
}

static void test_a_lessee_waits_for_its_claim_even_without_wait(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(2);
    job_t *out[2];
    assert_int_equal(engine_lease(e, &w, 0, out), 0);
    assert_true(engine_waiter_waiting(&w));
    assert_int_equal(claims, 1);
    assert_int_equal(claim_max, 2);
    assert_int_equal(claim_nqueues, 1);
    assert_false(claim_order);
    CLAIMED(e, 2, "x", "y");
    assert_int_equal(waited, 2);
    assert_string_equal(handed[0], "x");
    assert_int_equal(persisted[JOB_EV_LEASED], 2);
    assert_int_equal(engine_get(e, "x")->state, JOB_RUNNING);
}

static void test_an_empty_claim_answers_a_lessee_that_would_not_wait(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(1);
    job_t *out[1];
    engine_lease(e, &w, 0, out);
    engine_claimed(e, NULL, NULL, 0, 1);
    assert_int_equal(waited, -1);
    assert_false(engine_waiter_waiting(&w));
}

static void test_what_no_lessee_takes_goes_back_and_claims_wait_a_poll(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(1);
    job_t *out[1];
    engine_lease(e, &w, 5000, out);
    CLAIMED(e, 1, "p", "q", "r");
    assert_int_equal(waited, 1);
    assert_int_equal(persisted[JOB_EV_LEASED], 1);
    assert_int_equal(persisted[JOB_EV_UPDATED], 2); /* given back */
    assert_int_equal(engine_job_count(e), 1);
    /* Another lessee waits: its claim goes out at once (new demand)... */
    engine_waiter_t w2 = waiter(1);
    engine_lease(e, &w2, 5000, out);
    assert_int_equal(claims, 2);
    /* ...and comes back empty: the next waits 0.5-1.5x the poll. */
    engine_claimed(e, NULL, NULL, 0, 1);
    assert_int_equal(claims, 2);
    int64_t next = engine_next_deadline(e);
    assert_true(next >= fake_now + 200 && next <= fake_now + 600);
    fake_now = next;
    engine_tick(e);
    assert_int_equal(claims, 3);
    engine_waiter_cancel(e, &w2);
}

static void test_a_wake_up_for_a_waited_queue_claims_before_the_poll(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(1);
    job_t *out[1];
    engine_lease(e, &w, 5000, out);
    engine_claimed(e, NULL, NULL, 0, 1); /* empty: the next claim waits a poll */
    assert_int_equal(claims, 1);
    engine_woken(e, (const char *const[]){ "elsewhere" }, 1);
    assert_int_equal(claims, 1); /* nobody here waits on it */
    engine_woken(e, (const char *const[]){ "elsewhere", "default" }, 2);
    assert_int_equal(claims, 2);
    /* It may come back empty (the claim read before the job was there):
     * the wake-up is news, so the next one does not wait a poll either. */
    engine_claimed(e, NULL, NULL, 0, 1);
    assert_int_equal(claims, 3);
    engine_claimed(e, NULL, NULL, 0, 1);
    assert_int_equal(claims, 3);
    engine_woken(e, NULL, 0); /* any queue */
    assert_int_equal(claims, 4);
    engine_waiter_cancel(e, &w);
}

static void test_a_job_leaves_when_its_attempt_ends(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(2);
    job_t *out[2];
    engine_lease(e, &w, 0, out);
    CLAIMED(e, 2, "ok", "bad");
    char l1[64], l2[64];
    strcpy(l1, engine_get(e, "ok")->lease_id);
    strcpy(l2, engine_get(e, "bad")->lease_id);
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_complete(e, "ok", l1, NULL, &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_COMPLETED);
    assert_int_equal(engine_fail(e, "bad", l2, ERR_INTERNAL, "x", NULL, -1, &j, &p), ERR_OK);
    assert_int_equal(j->state, JOB_RETRYING);
    assert_int_equal(engine_job_count(e), 0);
    assert_int_equal(engine_next_deadline(e), INT64_MAX); /* no timer for a job given back */
}

static void test_a_dropped_job_is_forgotten(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(1);
    job_t *out[1];
    engine_lease(e, &w, 0, out);
    CLAIMED(e, 1, "d");
    char lid[64];
    strcpy(lid, engine_get(e, "d")->lease_id);
    int writes = persisted[JOB_EV_LEASED] + persisted[JOB_EV_COMPLETED];
    engine_drop(e, "d");
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_complete(e, "d", lid, NULL, &j, &p), ERR_NOT_FOUND);
    assert_int_equal(persisted[JOB_EV_LEASED] + persisted[JOB_EV_COMPLETED], writes);
    assert_int_equal(engine_job_count(e), 0);
}

static void test_a_job_read_from_the_database_is_never_leased(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(1);
    job_t *out[1];
    engine_lease(e, &w, 5000, out);
    engine_load(e, stored("read", NULL));
    assert_int_equal(waited, 0); /* not handed to the lessee: no claim holds it */
    assert_non_null(engine_get(e, "read")); /* the next call may act on it */
    engine_get(e, "read");
    engine_tick(e);
    assert_null(engine_get(e, "read")); /* and then it is gone */
    assert_int_equal(persisted[JOB_EV_LEASED], 0);
    engine_waiter_cancel(e, &w);
}

static void test_drop_all_forgets_every_job(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(3);
    job_t *out[3];
    engine_lease(e, &w, 0, out);
    CLAIMED(e, 3, "a1", "a2", "a3");
    assert_int_equal(engine_job_count(e), 3);
    engine_drop_all(e);
    assert_int_equal(engine_job_count(e), 0);
}

static void test_a_claimed_job_replaces_a_copy_read_before(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(1);
    job_t *out[1];
    engine_lease(e, &w, 5000, out);
    engine_load(e, stored("c", NULL)); /* read, say, for a GET */
    CLAIMED(e, 1, "c");
    assert_int_equal(waited, 1);
    assert_string_equal(handed[0], "c");
    assert_int_equal(engine_get(e, "c")->state, JOB_RUNNING);
}

static void test_a_dead_nodes_job_is_retried_at_once(void **state)
{
    engine_t *e = *state;
    job_t *j = stored("orphan", NULL);
    j->state = j->stored_state = JOB_RUNNING;
    j->attempts = 1;
    j->lease_expires_at = fake_now + 60000; /* its lease had a minute to go */
    strcpy(j->lease_id, "00112233445566778899aabbccddeeff");
    engine_take_over(e, j);
    assert_int_equal(persisted[JOB_EV_RETRIED], 1);
    assert_int_equal(engine_job_count(e), 0); /* given back, due after its backoff */
}

static void test_lessees_of_the_same_queues_share_one_claim(void **state)
{
    engine_t *e = *state;
    static const char *const other[] = { "other" };
    engine_waiter_t a = waiter(2), b = waiter(3);
    engine_waiter_t c = { .worker = "w", .queues = other, .nqueues = 1, .max = 1, .cb = on_jobs };
    job_t *out[3];
    engine_lease(e, &a, 5000, out); /* each asked for on arrival... */
    engine_lease(e, &b, 5000, out);
    engine_lease(e, &c, 5000, out);
    assert_int_equal(claims, 3);
    engine_claimed(e, NULL, NULL, 0, 2); /* ...and all come back empty */
    engine_claimed(e, NULL, NULL, 0, 3);
    engine_claimed(e, NULL, NULL, 0, 1);
    assert_int_equal(claims, 3);
    fake_now = engine_next_deadline(e); /* a poll later: one claim for a and b */
    engine_tick(e);
    assert_int_equal(claims, 5);
    assert_int_equal(claim_maxes[3], 5);
    assert_int_equal(claim_maxes[4], 1); /* c's, on its own queue */
    engine_waiter_cancel(e, &a);
    engine_waiter_cancel(e, &b);
    engine_waiter_cancel(e, &c);
}

static void test_a_retry_due_at_once_is_not_leased_without_a_claim(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(1);
    job_t *out[1];
    engine_lease(e, &w, 0, out);
    job_t *got[1] = { stored("r0", "\"timeout_ms\":1000,\"backoff\":{\"initial_ms\":0,\"jitter\":0}") };
    engine_claimed(e, got, NULL, 1, 1);
    assert_int_equal(waited, 1);
    engine_waiter_t late = waiter(1);
    engine_lease(e, &late, 5000, out); /* waits, and its claim goes out */
    int asked = claims;
    fake_now += 1000; /* the lease runs out; its retry is due at once */
    engine_tick(e);
    assert_int_equal(persisted[JOB_EV_RETRIED], 1);
    assert_int_equal(persisted[JOB_EV_LEASED], 1); /* not leased again here */
    assert_int_equal(engine_job_count(e), 0);
    assert_true(engine_waiter_waiting(&late));
    assert_int_equal(claims, asked); /* it waits for its claim, which sees the retry */
    engine_waiter_cancel(e, &late);
}

/* ---- breakers shared by the cluster ---- */

static engine_shared_change_t shared_changes[8];
static int nshared;

static void shared_fn(void *ud, const char *key, engine_shared_change_t change)
{
    (void)ud;
    assert_string_equal(key, "t");
    if (nshared < 8)
        shared_changes[nshared] = change;
    nshared++;
}

static int setup_breakers(void **state)
{
    setup_shared(state);
    engine_free(*state);
    nshared = 0;
    transitions = 0;
    engine_hooks_t h = { .now_ms = now_fn, .rand_unit = rand_fn, .persist = persist_fn,
                         .persist_delete = delete_fn, .persist_queue = queue_fn,
                         .claim = claim_fn, .breaker_changed = breaker_fn,
                         .breaker_shared = shared_fn };
    engine_options_t o = { .finished_in_memory = 100, .shared = true, .claim_poll_ms = 400,
                           .breaker = { .failures = 2, .window_ms = 10000, .cooldown_ms = 1000,
                                        .cooldown_max_ms = 8000, .probes = 1 } };
    *state = engine_new(&h, &o);
    return *state ? 0 : -1;
}

/* One lessee, one claim that brings these jobs (probe: the first is its
 * breaker's probe); returns the lease id of the first job handed over, or
 * NULL if none was. */
static const char *lease_claimed(engine_t *e, const char *id, bool probe)
{
    static char lease[64];
    engine_waiter_t w = waiter(1);
    job_t *out[1];
    waited = 0;
    engine_lease(e, &w, 0, out);
    job_t *got[1] = { stored(id, "\"timeout_ms\":60000") };
    bool probes[1] = { probe };
    engine_claimed(e, got, probe ? probes : NULL, 1, 1);
    if (waited != 1)
        return NULL;
    const job_t *j = engine_get(e, id);
    snprintf(lease, sizeof lease, "%s", j->lease_id);
    return lease;
}

static void fail_it(engine_t *e, const char *id, const char *lease)
{
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_fail(e, id, lease, ERR_UNAVAILABLE, "down", NULL, -1, &j, &p),
                     ERR_OK);
}

static void state_of_t(void *ud, const engine_breaker_info_t *b)
{
    if (!strcmp(b->key, "t"))
        *(engine_breaker_state_t *)ud = b->state;
}

static engine_breaker_state_t local_state(engine_t *e)
{
    engine_breaker_state_t s = ENGINE_BREAKER_CLOSED;
    engine_breaker_foreach(e, state_of_t, &s);
    return s;
}

/* It opens for the cluster (the database's claims pass over its jobs);
 * here it only counts, or it would hold jobs back after another node's
 * probe closed it. */
static void test_a_breaker_opening_here_opens_for_the_cluster(void **state)
{
    engine_t *e = *state;
    fail_it(e, "f1", lease_claimed(e, "f1", false));
    assert_int_equal(nshared, 0);
    fail_it(e, "f2", lease_claimed(e, "f2", false));
    assert_int_equal(nshared, 1);
    assert_int_equal(shared_changes[0], ENGINE_SHARED_OPEN);
    assert_int_equal(last_breaker_state, ENGINE_BREAKER_OPEN); /* logged, counted */
    assert_int_equal(local_state(e), ENGINE_BREAKER_CLOSED);
    assert_non_null(lease_claimed(e, "next", false)); /* what a claim brings is leased */
}

static void test_the_probe_claimed_here_closes_it_for_the_cluster(void **state)
{
    engine_t *e = *state;
    const char *lease = lease_claimed(e, "p", true);
    assert_non_null(lease);
    assert_int_equal(local_state(e), ENGINE_BREAKER_HALF_OPEN);
    assert_int_equal(nshared, 0);
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_complete(e, "p", lease, NULL, &j, &p), ERR_OK);
    assert_int_equal(nshared, 1);
    assert_int_equal(shared_changes[0], ENGINE_SHARED_CLOSE);
    assert_int_equal(local_state(e), ENGINE_BREAKER_CLOSED);
}

static void test_a_failed_probe_reopens_it_for_the_cluster(void **state)
{
    engine_t *e = *state;
    fail_it(e, "p", lease_claimed(e, "p", true));
    assert_int_equal(nshared, 1);
    assert_int_equal(shared_changes[0], ENGINE_SHARED_REOPEN);
    assert_int_equal(local_state(e), ENGINE_BREAKER_CLOSED); /* the database holds it open */
}

/* A probe no lessee took goes back; the database's probe lapses, and no
 * verdict is written. */
static void test_a_probe_no_lessee_took_decides_nothing(void **state)
{
    engine_t *e = *state;
    engine_waiter_t w = waiter(1);
    job_t *out[1];
    engine_lease(e, &w, 5000, out);
    engine_waiter_cancel(e, &w); /* gone before its claim came back */
    job_t *got[1] = { stored("p", NULL) };
    bool probes[1] = { true };
    engine_claimed(e, got, probes, 1, 1);
    assert_int_equal(persisted[JOB_EV_UPDATED], 1);
    assert_int_equal(local_state(e), ENGINE_BREAKER_CLOSED);
    assert_int_equal(nshared, 0);
}

static void test_a_reset_closes_the_clusters_breaker_unknown_here(void **state)
{
    engine_t *e = *state;
    problem_t p;
    assert_int_equal(engine_breaker_reset(e, "t", &p), ERR_OK);
    assert_int_equal(nshared, 1);
    assert_int_equal(shared_changes[0], ENGINE_SHARED_RESET);
}

/* Regression (Faktory MUTATE on a cluster node skipped jobs): a page of
 * jobs is loaded, then acted on one by one under an eviction hold; a job
 * still in memory from an earlier read, on its way out, was kept as it was
 * and left at the first action's end, before its own turn. */
static void test_a_copy_on_its_way_out_read_again_stays_for_the_next_call(void **state)
{
    engine_t *e = *state;
    engine_load(e, stored("a", NULL)); /* it leaves at the end of the next call */
    assert_non_null(engine_get(e, "a"));
    engine_hold_eviction(e);
    engine_load(e, stored("a", NULL)); /* the page's read of it */
    engine_load(e, stored("c", NULL)); /* the page's next read, or an action */
    assert_non_null(engine_get(e, "a"));
    engine_release_eviction(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_an_enqueued_job_is_written_and_not_kept, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_lessee_waits_for_its_claim_even_without_wait, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_an_empty_claim_answers_a_lessee_that_would_not_wait, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_what_no_lessee_takes_goes_back_and_claims_wait_a_poll, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_wake_up_for_a_waited_queue_claims_before_the_poll, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_job_leaves_when_its_attempt_ends, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_dropped_job_is_forgotten, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_job_read_from_the_database_is_never_leased, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_drop_all_forgets_every_job, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_claimed_job_replaces_a_copy_read_before, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_dead_nodes_job_is_retried_at_once, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_lessees_of_the_same_queues_share_one_claim, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_retry_due_at_once_is_not_leased_without_a_claim, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_copy_on_its_way_out_read_again_stays_for_the_next_call, setup_shared, teardown),
        cmocka_unit_test_setup_teardown(test_a_breaker_opening_here_opens_for_the_cluster, setup_breakers, teardown),
        cmocka_unit_test_setup_teardown(test_the_probe_claimed_here_closes_it_for_the_cluster, setup_breakers, teardown),
        cmocka_unit_test_setup_teardown(test_a_failed_probe_reopens_it_for_the_cluster, setup_breakers, teardown),
        cmocka_unit_test_setup_teardown(test_a_probe_no_lessee_took_decides_nothing, setup_breakers, teardown),
        cmocka_unit_test_setup_teardown(test_a_reset_closes_the_clusters_breaker_unknown_here, setup_breakers, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
