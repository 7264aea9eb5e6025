/* Store: migration from an empty file, round trip, newer-schema refusal. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/engine.h"
#include "store/store.h"
#include "tmpdir_fixture.h"

static char dir[64];
static char url[320], path[256];

static int64_t now_fn(void *ud) { (void)ud; return 1700000000000; }
static double rand_fn(void *ud) { (void)ud; return 0.5; }
static store_t *g_store;
static void persist_fn(void *ud, const job_t *j, job_event_t ev) { (void)ud; store_put_job(g_store, j, ev); }
static void delete_fn(void *ud, const char *id) { (void)ud; store_delete_job(g_store, id); }
static void queue_fn(void *ud, const char *q, bool p) { (void)ud; store_put_queue(g_store, q, p); }

static engine_t *new_engine(void)
{
    engine_hooks_t h = { .now_ms = now_fn, .rand_unit = rand_fn, .persist = persist_fn,
                         .persist_delete = delete_fn, .persist_queue = queue_fn };
    engine_options_t o = { .finished_in_memory = 100 };
    return engine_new(&h, &o);
}

/* Enqueues a job from a spec (stolen); asserts it was accepted. */
static void enqueue(engine_t *e, json_t *spec)
{
    static const job_defaults_t d = { 3, 60000, { 1000, 3600000, 2.0, 0.2 } };
    job_t *job;
    problem_t p;
    assert_int_equal(job_parse_spec(spec, &d, now_fn(NULL), &job, &p), ERR_OK);
    json_decref(spec);
    bool created;
    const job_t *out;
    assert_int_equal(engine_enqueue(e, job, &created, &out, &p), ERR_OK);
}

static int setup(void **state)
{
    (void)state;
    if (tmpdir_make(dir, "store") != 0)
        return -1;
    snprintf(path, sizeof path, "%.200s/sub/jobq.db", dir);
    snprintf(url, sizeof url, "sqlite://%s", path);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(dir);
}

/* Recovery into an engine, as `jobq serve` does. */
static void recover_job(void *ud, job_t *job) { engine_load(ud, job); }
static void recover_queue(void *ud, const char *name, bool paused)
{
    engine_load_queue(ud, name, paused);
}

/* A migrated store, its writer started, as g_store. */
static void open_started(void)
{
    char err[512];
    g_store = store_open(url, DURABILITY_FSYNC, err, sizeof err);
    assert_non_null(g_store);
    assert_int_equal(store_migrate(g_store, err, sizeof err), 0);
    assert_int_equal(store_start(g_store, err, sizeof err), 0);
}

static void test_migrates_empty_file(void **state)
{
    (void)state;
    char err[512];
    store_t *s = store_open(url, DURABILITY_FSYNC, err, sizeof err);
    assert_non_null(s);
    int cur, latest;
    assert_int_equal(store_schema_status(s, &cur, &latest, err, sizeof err), 0);
    assert_int_equal(cur, 0);
    assert_true(latest >= 1);
    assert_int_equal(store_check_schema(s, err, sizeof err), -1);
    assert_non_null(strstr(err, "jobq migrate"));
    assert_int_equal(store_migrate(s, err, sizeof err), 0);
    assert_int_equal(store_schema_status(s, &cur, &latest, err, sizeof err), 0);
    assert_int_equal(cur, latest);
    assert_int_equal(store_check_schema(s, err, sizeof err), 0);
    assert_int_equal(store_migrate(s, err, sizeof err), 0); /* idempotent */
    store_close(s);
}

static void test_refuses_newer_schema(void **state)
{
    (void)state;
    char err[512];
    store_t *s = store_open(url, DURABILITY_FSYNC, err, sizeof err);
    assert_int_equal(store_migrate(s, err, sizeof err), 0);
    store_close(s);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "INSERT INTO schema_migrations VALUES(999, 0)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    s = store_open(url, DURABILITY_FSYNC, err, sizeof err);
    assert_int_equal(store_migrate(s, err, sizeof err), -1);
    assert_non_null(strstr(err, "999"));
    assert_int_equal(store_check_schema(s, err, sizeof err), -1);
    store_close(s);
}

static void test_round_trip_through_recovery(void **state)
{
    (void)state;
    char err[512];
    g_store = store_open(url, DURABILITY_FSYNC, err, sizeof err);
    assert_int_equal(store_migrate(g_store, err, sizeof err), 0);
    assert_int_equal(store_start(g_store, err, sizeof err), 0);
    engine_t *e = new_engine();
    const char *ids[] = { "queued", "running", "done", "later", "paused-q" };
    for (int i = 0; i < 5; i++) {
        json_t *spec = json_pack("{s:s, s:s, s:{s:i}}", "id", ids[i], "type", "t", "args", "n", i);
        if (i == 3)
            json_object_set_new(spec, "delay_ms", json_integer(60000));
        if (i == 4)
            json_object_set_new(spec, "queue", json_string("side"));
        enqueue(e, spec);
    }
    engine_pause(e, "side", true);
    const char *q[] = { "default" };
    engine_waiter_t w = { .worker = "w", .queues = q, .nqueues = 1, .max = 2 };
    job_t *got[2];
    assert_int_equal(engine_lease(e, &w, 0, got), 2);
    char lid[64];
    strcpy(lid, got[1]->lease_id);
    const job_t *j;
    problem_t p;
    json_t *result = json_integer(7);
    assert_int_equal(engine_complete(e, got[1]->id, lid, result, &j, &p), ERR_OK);
    json_decref(result);
    assert_int_equal(store_stop(g_store, 0), 0); /* commits everything */
    engine_free(e);
    store_close(g_store);

    g_store = store_open(url, DURABILITY_FSYNC, err, sizeof err);
    assert_int_equal(store_check_schema(g_store, err, sizeof err), 0);
    e = new_engine();
    size_t n;
    store_recovery_t to = { .ud = e, .job = recover_job, .queue = recover_queue };
    assert_int_equal(store_load(g_store, &to, &n, err, sizeof err), 0);
    assert_int_equal(n, 4); /* the completed one stays in the store only */
    assert_int_equal(engine_get(e, "queued")->state, JOB_RUNNING);
    assert_null(engine_get(e, "running"));
    assert_int_equal(engine_get(e, "later")->state, JOB_PENDING);
    assert_true(engine_queue_paused(e, "side"));
    assert_int_equal(json_integer_value(json_object_get(job_args(engine_get(e, "later")), "n")), 3);
    engine_free(e);
    store_close(g_store);
}

static int fired;
static void on_durable(store_waiter_t *w) { (void)w; fired++; }

static json_t *read_result;
static void on_read(void *ud, json_t *result, const char *error)
{
    (void)ud;
    assert_null(error);
    read_result = json_incref(result);
}

/* Waits for the store thread's notification and runs the callbacks. */
static void pump(store_t *s)
{
    struct pollfd p = { .fd = store_notify_fd(s), .events = POLLIN };
    assert_int_equal(poll(&p, 1, 5000), 1);
    store_dispatch(s);
}

/* A point read of a stored job finds this string in its field. */
static void assert_stored(const char *id, const char *field, const char *want)
{
    store_get_job(g_store, id, on_read, NULL);
    while (!read_result)
        pump(g_store);
    assert_string_equal(json_string_value(json_object_get(read_result, field)), want);
    json_decref(read_result);
    read_result = NULL;
}

static void test_group_commit_acknowledges_after_commit_in_order(void **state)
{
    (void)state;
    char err[512];
    g_store = store_open(url, DURABILITY_FSYNC, err, sizeof err);
    assert_int_equal(store_migrate(g_store, err, sizeof err), 0);
    store_faults_t faults = { .commit_delay_ms = 200 }; /* a wide window to look into */
    store_set_faults(g_store, &faults);
    assert_int_equal(store_start(g_store, err, sizeof err), 0);
    engine_t *e = new_engine();
    enqueue(e, json_pack("{s:s, s:s}", "id", "g1", "type", "t"));
    store_waiter_t w = { .cb = on_durable };
    fired = 0;
    store_when_durable(g_store, &w, store_last_seq(g_store));
    assert_int_equal(fired, 0); /* not before the commit */
    store_get_job(g_store, "g1", on_read, NULL); /* queued after the write */
    while (!read_result || !fired)
        pump(g_store);
    assert_int_equal(fired, 1);
    assert_string_equal(json_string_value(json_object_get(read_result, "id")), "g1");
    json_decref(read_result);
    read_result = NULL;
    store_when_durable(g_store, &w, store_last_seq(g_store)); /* already durable: at once */
    assert_int_equal(fired, 2);
    engine_free(e);
    store_close(g_store);
}

/* The filter of stored ids: "maybe" for everything until the scan at
 * start lands, then "maybe" for every id the database held and every id
 * written since, and "no" for (nearly) every other. */
static void test_the_id_filter_knows_what_was_stored(void **state)
{
    (void)state;
    char err[512], id[32];
    g_store = store_open(url, DURABILITY_OS, err, sizeof err);
    assert_int_equal(store_migrate(g_store, err, sizeof err), 0);
    assert_int_equal(store_start(g_store, err, sizeof err), 0);
    engine_t *e = new_engine();
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "old-%d", i);
        enqueue(e, json_pack("{s:s, s:s}", "id", id, "type", "t"));
    }
    assert_int_equal(store_stop(g_store, 0), 0);
    engine_free(e);
    store_close(g_store);

    g_store = store_open(url, DURABILITY_OS, err, sizeof err);
    e = new_engine();
    size_t n;
    store_recovery_t to = { .ud = e, .job = recover_job, .queue = recover_queue };
    assert_int_equal(store_load(g_store, &to, &n, err, sizeof err), 0);
    assert_true(store_may_hold(g_store, "never-written")); /* no scan yet */
    assert_int_equal(store_start(g_store, err, sizeof err), 0);
    for (int i = 0; i < 50 && store_may_hold(g_store, "never-written"); i++)
        pump(g_store);
    assert_false(store_may_hold(g_store, "never-written"));
    int wrong = 0;
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "old-%d", i);
        assert_true(store_may_hold(g_store, id));
        snprintf(id, sizeof id, "new-%d", i);
        wrong += store_may_hold(g_store, id);
    }
    assert_true(wrong < 5);
    enqueue(e, json_pack("{s:s, s:s}", "id", "new-x", "type", "t"));
    assert_true(store_may_hold(g_store, "new-x"));
    assert_true(store_id_filter_bytes(g_store) > 0);
    engine_free(e);
    store_close(g_store);
}

/* Three writes of one job queued while a slow commit runs land in one
 * batch: only the last row is written, every event is still counted. */
static void test_writes_of_one_job_in_one_batch_write_one_row(void **state)
{
    (void)state;
    char err[512];
    g_store = store_open(url, DURABILITY_FSYNC, err, sizeof err);
    assert_int_equal(store_migrate(g_store, err, sizeof err), 0);
    store_faults_t faults = { .commit_delay_ms = 300 };
    store_set_faults(g_store, &faults);
    assert_int_equal(store_start(g_store, err, sizeof err), 0);
    engine_t *e = new_engine();
    enqueue(e, json_pack("{s:s, s:s}", "id", "first", "type", "other")); /* the slow commit */
    store_flush(g_store);
    struct timespec ts = { 0, 50 * 1000000 };
    nanosleep(&ts, NULL); /* the writer has taken it and sleeps in its commit */
    enqueue(e, json_pack("{s:s, s:s}", "id", "c1", "type", "t"));
    static const char *const q[] = { "default" };
    engine_waiter_t w = { .worker = "w", .queues = q, .nqueues = 1, .max = 2 };
    job_t *got[2];
    assert_int_equal(engine_lease(e, &w, 0, got), 2);
    int k = strcmp(got[0]->id, "c1") == 0 ? 0 : 1;
    char lid[64];
    strcpy(lid, got[k]->lease_id);
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_complete(e, "c1", lid, NULL, &j, &p), ERR_OK);
    store_stats(g_store, on_read, NULL);
    while (!read_result)
        pump(g_store);
    json_t *totals = json_object_get(read_result, "totals");
    assert_int_equal(json_integer_value(json_object_get(totals, "enqueued")), 2);
    assert_int_equal(json_integer_value(json_object_get(totals, "leased")), 2);
    assert_int_equal(json_integer_value(json_object_get(totals, "completed")), 1);
    json_decref(read_result);
    read_result = NULL;
    assert_stored("c1", "state", "completed");
    store_figures_t f;
    store_figures(g_store, &f);
    /* first, then one row for c1 and one for first's lease: not 1 + 3 + 1
     * (2 if the writer was slow enough to take all of them in one batch) */
    assert_true(f.statement_seconds[STORE_ST_PUT].count <= 3);
    engine_free(e);
    store_close(g_store);
}

/* The queue's count of jobs in `state`, as statistics read it (each read
 * compacts what is pending first). */
static json_int_t count_of(const char *state)
{
    store_stats(g_store, on_read, NULL);
    while (!read_result)
        pump(g_store);
    json_t *q = json_object_get(json_object_get(read_result, "queues"), "default");
    json_int_t n = json_integer_value(json_object_get(q, state));
    json_decref(read_result);
    read_result = NULL;
    return n;
}

/* A job's later writes update its row without reading which state it
 * leaves (the engine says); a row retention deleted meanwhile is inserted
 * again, and its old state is not uncounted twice. */
static void test_counts_follow_known_states_and_purged_rows(void **state)
{
    (void)state;
    open_started();
    engine_t *e = new_engine();
    enqueue(e, json_pack("{s:s, s:s}", "id", "k1", "type", "t"));
    assert_int_equal(count_of("queued"), 1);
    const job_t *j;
    problem_t p;
    assert_int_equal(engine_cancel(e, "k1", &j, &p), ERR_OK);
    assert_int_equal(count_of("queued"), 0);
    assert_int_equal(count_of("cancelled"), 1);
    store_purge_t pu = { .completed_before = now_fn(NULL) + 1, .limit = 10 };
    store_purge(g_store, &pu, on_read, NULL);
    while (!read_result)
        pump(g_store);
    assert_int_equal(json_array_size(json_object_get(read_result, "deleted")), 1);
    json_decref(read_result);
    read_result = NULL;
    assert_int_equal(count_of("cancelled"), 0);
    assert_int_equal(engine_retry(e, "k1", &j, &p), ERR_OK); /* its row is gone */
    assert_int_equal(count_of("queued"), 1);
    assert_int_equal(count_of("cancelled"), 0);
    assert_int_equal(engine_cancel(e, "k1", &j, &p), ERR_OK);
    assert_int_equal(count_of("queued"), 0);
    assert_int_equal(count_of("cancelled"), 1);
    engine_free(e);
    store_close(g_store);
}

/* Seventy new jobs in one transaction go in as two INSERTs of 32 rows and
 * six of one (sqlite_rows.h); a lookup between them sees them all. */
static void test_new_rows_inserted_many_to_a_statement(void **state)
{
    (void)state;
    open_started();
    engine_t *e = new_engine();
    char id[32];
    for (int i = 0; i < 70; i++) {
        snprintf(id, sizeof id, "many-%02d", i);
        enqueue(e, json_pack("{s:s, s:s}", "id", id, "type", "t"));
    }
    assert_int_equal(count_of("queued"), 70);
    for (int i = 0; i < 70; i += 23) {
        snprintf(id, sizeof id, "many-%02d", i);
        assert_stored(id, "id", id);
    }
    engine_free(e);
    store_close(g_store);
}

static void no_kick(void *ud) { (void)ud; }

/* A compaction runs in steps, and a write that arrives meanwhile is
 * journaled (and acknowledged) between two of them: in fsync durability
 * the store thread does both, and an acknowledgement must not wait for a
 * whole transaction. The 320 writes travel in one hand-off (a kick, then
 * one flush, as the loop does), so the first compaction holds all of them:
 * at least ten 50 ms steps. The write arrives after 100 ms and must be
 * durable before any compaction commits. */
static void test_a_write_is_acknowledged_during_a_compaction(void **state)
{
    (void)state;
    char err[512];
    g_store = store_open(url, DURABILITY_FSYNC, err, sizeof err);
    assert_int_equal(store_migrate(g_store, err, sizeof err), 0);
    store_faults_t faults = { .step_delay_ms = 50 };
    store_set_faults(g_store, &faults);
    store_set_compact_interval_ms(g_store, 1);
    store_set_kick(g_store, no_kick, NULL);
    assert_int_equal(store_start(g_store, err, sizeof err), 0);
    engine_t *e = new_engine();
    char id[32];
    for (int i = 0; i < 320; i++) {
        snprintf(id, sizeof id, "slow-%03d", i);
        enqueue(e, json_pack("{s:s, s:s}", "id", id, "type", "t"));
    }
    store_flush(g_store);
    store_waiter_t w = { .cb = on_durable };
    fired = 0;
    store_when_durable(g_store, &w, store_last_seq(g_store));
    while (!fired)
        pump(g_store);
    nanosleep(&(struct timespec){ 0, 100000000 }, NULL); /* the compaction is under way */
    enqueue(e, json_pack("{s:s, s:s}", "id", "during", "type", "t"));
    store_flush(g_store);
    store_when_durable(g_store, &w, store_last_seq(g_store));
    while (fired < 2)
        pump(g_store);
    store_figures_t f;
    store_figures(g_store, &f);
    assert_int_equal(f.statement_seconds[STORE_ST_COMMIT].count, 0); /* not committed yet */
    assert_int_equal(count_of("queued"), 321); /* once both compactions have */
    store_figures(g_store, &f);
    assert_true(f.statement_seconds[STORE_ST_COMMIT].count >= 1);
    engine_free(e);
    store_close(g_store);
}

/* Enqueues a job and leases it: running, as a worker's job is. */
static void enqueue_running(engine_t *e, const char *id)
{
    enqueue(e, json_pack("{s:s, s:s, s:s}", "id", id, "type", "t", "queue", id));
    const char *q[] = { id };
    engine_waiter_t w = { .worker = "w", .queues = q, .nqueues = 1, .max = 1 };
    job_t *got[1];
    assert_int_equal(engine_lease(e, &w, 0, got), 1);
}

/* Waits until the store has committed n compactions. */
static void wait_commits(uint64_t n)
{
    store_figures_t f;
    for (int i = 0; i < 5000; i++) {
        store_figures(g_store, &f);
        if (f.statement_seconds[STORE_ST_COMMIT].count >= n)
            return;
        nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
    }
    fail_msg("no compaction committed");
}

static uint64_t puts_so_far(void)
{
    store_figures_t f;
    store_figures(g_store, &f);
    return f.statement_seconds[STORE_ST_PUT].count;
}

/* A job running at a timed compaction is carried past it (carry.c): its
 * row is written once, when it has finished; a job still waiting is
 * written at once. A read that needs the database takes everything. */
static void test_a_running_job_is_written_once_it_has_finished(void **state)
{
    (void)state;
    char err[512];
    g_store = store_open(url, DURABILITY_OS, err, sizeof err);
    assert_int_equal(store_migrate(g_store, err, sizeof err), 0);
    store_set_compact_interval_ms(g_store, 100);
    assert_int_equal(store_start(g_store, err, sizeof err), 0);
    engine_t *e = new_engine();
    enqueue_running(e, "runs");
    enqueue(e, json_pack("{s:s, s:s}", "id", "waits", "type", "t"));
    store_flush(g_store);
    wait_commits(1);
    assert_int_equal(puts_so_far(), 1); /* "waits" alone */
    const job_t *j = engine_get(e, "runs");
    char lid[64];
    strcpy(lid, j->lease_id);
    problem_t p;
    assert_int_equal(engine_complete(e, "runs", lid, NULL, &j, &p), ERR_OK);
    store_flush(g_store);
    assert_int_equal(count_of("completed"), 0); /* "runs" has a queue of its own */
    assert_int_equal(puts_so_far(), 2);         /* "runs", completed, in one row */
    assert_stored("runs", "state", "completed");
    engine_free(e);
    store_close(g_store);
}

/* What a carried job's copy is for: the compaction that carried it marks
 * its generation applied, so replay no longer reads the job's writes
 * there. A process that dies right after it (here a child's _exit, as a
 * kill -9 leaves the files) must still find the job at the next start. */
static void test_a_carried_job_survives_a_crash_after_the_compaction(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char err[512];
        g_store = store_open(url, DURABILITY_OS, err, sizeof err);
        if (!g_store || store_migrate(g_store, err, sizeof err) != 0)
            _exit(2);
        store_set_compact_interval_ms(g_store, 300); /* one compaction before _exit */
        if (store_start(g_store, err, sizeof err) != 0)
            _exit(3);
        engine_t *e = new_engine();
        enqueue_running(e, "carried");
        store_flush(g_store);
        wait_commits(1);
        _exit(puts_so_far() == 0 ? 0 : 4); /* carried, not written */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    char err[512];
    g_store = store_open(url, DURABILITY_OS, err, sizeof err);
    assert_non_null(g_store);
    engine_t *e = new_engine();
    size_t n;
    store_recovery_t to = { .ud = e, .job = recover_job, .queue = recover_queue };
    assert_int_equal(store_load(g_store, &to, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_non_null(engine_get(e, "carried"));
    engine_free(e);
    store_close(g_store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_migrates_empty_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_newer_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip_through_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_acknowledges_after_commit_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_of_one_job_in_one_batch_write_one_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_id_filter_knows_what_was_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_follow_known_states_and_purged_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_rows_inserted_many_to_a_statement, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_write_is_acknowledged_during_a_compaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_running_job_is_written_once_it_has_finished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_carried_job_survives_a_crash_after_the_compaction, setup, teardown),
    };
    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
