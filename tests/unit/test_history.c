/* Chart history: points from deltas of cumulative figures, both rings,
 * wrap-around, and the percentiles of an interval. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/history.h"
#include "metrics/metrics.h"
#include "util/clock.h"

static histogram_t wait, run;
static history_input_t in;

static void reset(void)
{
    histogram_init(&wait, histogram_seconds, histogram_seconds_n);
    histogram_init(&run, histogram_seconds, histogram_seconds_n);
    in = (history_input_t){ .wait = &wait, .run = &run };
}

static json_t *points(history_t *h, int res)
{
    json_t *out = history_json(h, res, 0);
    assert_non_null(out);
    assert_int_equal(json_integer_value(json_object_get(out, "resolution_s")), res);
    return out;
}

static json_int_t field(json_t *p, const char *k) { return json_integer_value(json_object_get(p, k)); }

/* Each tick adds what changed since the one before; the first, what
 * happened since the figures started from zero. */
static void test_a_point_is_what_changed_in_its_second(void **state)
{
    (void)state;
    reset();
    history_t *h = history_new();
    in.completed = 5; /* before the first tick: in the first point */
    history_tick(h, 1000, &in);
    in.completed = 8;
    in.failed = 1;
    in.depth[HISTORY_QUEUED] = 42;
    histogram_observe(&wait, 0.002);
    histogram_observe(&run, 0.3);
    history_tick(h, 2000, &in);
    history_tick(h, 3000, &in); /* nothing happened in this one */
    json_t *out = points(h, 1), *ps = json_object_get(out, "points");
    assert_int_equal(json_array_size(ps), 3);
    assert_int_equal(field(json_array_get(ps, 0), "completed"), 5);
    json_t *p = json_array_get(ps, 1);
    assert_string_equal(json_string_value(json_object_get(p, "t")), "1970-01-01T00:00:01.000Z");
    assert_int_equal(field(p, "completed"), 3);
    assert_int_equal(field(p, "failed"), 1);
    assert_int_equal(field(p, "queued"), 42);
    double w = json_real_value(json_object_get(json_object_get(p, "wait_ms"), "p50"));
    assert_true(w >= 1.0 && w <= 2.5); /* within the sample's bucket, in ms */
    double r = json_real_value(json_object_get(json_object_get(p, "run_ms"), "p99"));
    assert_true(r >= 250.0 && r <= 500.0);
    p = json_array_get(ps, 2);
    assert_int_equal(field(p, "completed"), 0);
    assert_true(json_is_null(json_object_get(p, "wait_ms")));
    json_decref(out);
    history_free(h);
}

/* The second ring keeps 15 minutes, then drops the oldest; the minute
 * ring gets a point each time a minute turns, over the whole minute. */
static void test_rings_wrap_and_minutes_add_up(void **state)
{
    (void)state;
    reset();
    history_t *h = history_new();
    int64_t t = 60000;
    history_tick(h, t, &in);
    for (int i = 1; i <= HISTORY_SECONDS + 130; i++) {
        in.completed++;
        history_tick(h, t + i * 1000, &in);
    }
    json_t *out = points(h, 1), *ps = json_object_get(out, "points");
    assert_int_equal(json_array_size(ps), HISTORY_SECONDS);
    int64_t first;
    assert_int_equal(clock_parse_rfc3339(json_string_value(json_object_get(json_array_get(ps, 0), "t")), &first), 0);
    assert_int_equal(first, t + 130 * 1000); /* 1031 points made, the last 900 kept */
    json_decref(out);
    out = points(h, 60);
    ps = json_object_get(out, "points");
    /* The minute before the first tick (nothing in it), then 17 whole ones. */
    assert_int_equal(json_array_size(ps), 1 + (HISTORY_SECONDS + 130) / 60);
    assert_int_equal(field(json_array_get(ps, 0), "completed"), 0);
    for (size_t i = 1; i < json_array_size(ps); i++)
        assert_int_equal(field(json_array_get(ps, i), "completed"), 60);
    json_decref(out);
    out = history_json(h, 60, t + 5 * 60000); /* since: the first five minutes left out */
    assert_int_equal(json_array_size(json_object_get(out, "points")), (HISTORY_SECONDS + 130) / 60 - 5);
    json_decref(out);
    history_free(h);
}

/* The newest point, and outcomes over a span to the minute: whole minutes
 * from the minute ring plus the seconds of the minute still open. */
static void test_latest_point_and_outcomes_since(void **state)
{
    (void)state;
    reset();
    history_t *h = history_new();
    json_t *none = history_latest_json(h);
    assert_true(json_is_null(none));
    json_decref(none);
    uint64_t out[3];
    history_outcomes_since(h, 0, out);
    assert_true(out[0] == 0 && out[1] == 0 && out[2] == 0);
    int64_t t = 600000; /* a minute boundary */
    history_tick(h, t, &in);
    for (int i = 1; i <= 150; i++) { /* two whole minutes and 30 s */
        in.failed += 2;
        in.completed++;
        history_tick(h, t + i * 1000, &in);
    }
    json_t *last = history_latest_json(h);
    assert_int_equal(field(last, "failed"), 2);
    assert_string_equal(json_string_value(json_object_get(last, "t")), "1970-01-01T00:12:29.000Z");
    json_decref(last);
    history_outcomes_since(h, 0, out);
    assert_int_equal(out[1], 300); /* every failure, none twice */
    assert_int_equal(out[0], 150);
    history_outcomes_since(h, t + 60000, out); /* from the second minute on */
    assert_int_equal(out[1], 180);
    history_free(h);
}

/* Requests counted by route, method and status, however they interleave:
 * metrics_http remembers recent entries in 64 slots by route address,
 * and 100 routes x 2 methods x 2 statuses share them. */
static char route_names[100][24]; /* routes live as long as the process */

static void test_requests_counted_by_route_method_and_status(void **state)
{
    (void)state;
    static const char *const methods[] = { "GET", "POST" };
    static const int statuses[] = { 200, 404 };
    metrics_t *m = metrics_new("test");
    assert_non_null(m);
    static int want[100][2][2];
    for (int r = 0; r < 100; r++)
        snprintf(route_names[r], sizeof route_names[r], "/v1/r%d", r);
    for (int i = 0; i < 40000; i++) {
        int r = (i * 37) % 100, k = (i / 7) % 2, st = (i % 11) < 4;
        metrics_http(m, route_names[r], methods[k], statuses[st], 0.001);
        want[r][k][st]++;
    }
    metrics_gauges_t g = { 0 };
    char *text = metrics_render(m, &g);
    for (int r = 0; r < 100; r++)
        for (int k = 0; k < 2; k++)
            for (int st = 0; st < 2; st++) {
                char line[200];
                snprintf(line, sizeof line,
                         "jobq_http_request_duration_seconds_count{route=\"%s\",method=\"%s\","
                         "status=\"%d\"} %d\n", route_names[r], methods[k], statuses[st],
                         want[r][k][st]);
                if (want[r][k][st] && !strstr(text, line))
                    fail_msg("missing: %s", line);
            }
    free(text);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest_point_and_outcomes_since),
        cmocka_unit_test(test_a_point_is_what_changed_in_its_second),
        cmocka_unit_test(test_rings_wrap_and_minutes_add_up),
        cmocka_unit_test(test_requests_counted_by_route_method_and_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
