/* The Faktory front end's pure parts: password hashes, the job mapping
 * both ways, the failure object, and its retry curve. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "faktory/auth.h"
#include "faktory/job.h"
#include "faktory/proto.h"

static const job_defaults_t defaults = { 3, 60000, { 1000, 3600000, 2.0, 0.2 } };
#define NOW 1764547200000LL

static job_t *parse_ok(const char *text)
{
    json_t *v = json_loads(text, 0, NULL);
    assert_non_null(v);
    job_t *j = NULL;
    problem_t p;
    err_t e = fwp_job_parse(v, &defaults, NOW, &j, &p);
    if (e)
        fail_msg("refused %s: %s (%s)", text, p.detail, p.field);
    json_decref(v);
    return j;
}

static void refused(const char *text, const char *field)
{
    json_t *v = json_loads(text, 0, NULL);
    job_t *j = NULL;
    problem_t p;
    assert_int_not_equal(fwp_job_parse(v, &defaults, NOW, &j, &p), ERR_OK);
    assert_null(j);
    assert_string_equal(p.field, field);
    json_decref(v);
}

static void test_pwdhash_vectors(void **state)
{
    (void)state;
    char h[FWP_HASH_HEX + 1];
    fwp_pwdhash("foobar", "55104dc76695721d", 1545, h);
    assert_string_equal(h, "6d877f8e5544b1f2598768f817413ab8a357afffa924dedae99eb91472d4ec30");
    fwp_pwdhash("abcde123", "123", 3, h);
    assert_string_equal(h, "ef646abadf4ffba660d9bbb8de8e45576970de917b4c9da8cad96b49e64636d9");
    assert_true(fwp_hash_equal(h, h));
    assert_false(fwp_hash_equal("ef64", h));
    assert_false(fwp_hash_equal("", h));
}

static void test_defaults_and_mapping(void **state)
{
    (void)state;
    job_t *j = parse_ok("{\"jid\":\"abcdefgh\",\"jobtype\":\"Mail::Send\",\"args\":[1]}");
    assert_string_equal(j->queue, "default");
    assert_int_equal(j->max_retries, 25);
    assert_int_equal(j->timeout_ms, 1800000);
    assert_int_equal(j->priority, 2);
    assert_int_equal(j->backoff.curve, BACKOFF_FAKTORY);
    assert_false(j->discard_failed);
    assert_int_equal(j->run_at, NOW);
    job_free(j);
    j = parse_ok("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"retry\":0,"
                 "\"reserve_for\":60,\"priority\":9,\"at\":\"2025-12-01T00:00:10.5Z\","
                 "\"custom\":{\"breaker_key\":\"smtp\",\"backoff\":{\"initial_ms\":5}}}");
    assert_true(j->discard_failed);
    assert_int_equal(j->max_retries, 0);
    assert_int_equal(j->timeout_ms, 60000);
    assert_int_equal(j->priority, 0);
    assert_string_equal(j->breaker_key, "smtp");
    assert_int_equal(j->backoff.curve, BACKOFF_EXPONENTIAL);
    assert_int_equal(j->backoff.initial_ms, 5);
    assert_int_equal(j->run_at, NOW + 10500);
    job_free(j);
    /* Faktory 1-9 onto jobq's five; custom.priority wins. */
    static const struct { int in, out; } prio[] = { { 1, 4 }, { 2, 3 }, { 3, 3 }, { 4, 2 },
                                                    { 5, 2 }, { 6, 2 }, { 7, 1 }, { 8, 1 },
                                                    { 9, 0 } };
    for (size_t i = 0; i < sizeof prio / sizeof prio[0]; i++) {
        char text[128];
        snprintf(text, sizeof text,
                 "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"priority\":%d}", prio[i].in);
        j = parse_ok(text);
        assert_int_equal(j->priority, prio[i].out);
        job_free(j);
    }
    j = parse_ok("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"priority\":9,"
                 "\"custom\":{\"priority\":\"background\"}}");
    assert_int_equal(j->priority, 4);
    job_free(j);
}

static void test_refusals_name_the_field(void **state)
{
    (void)state;
    refused("[]", "");
    refused("{\"jobtype\":\"T\",\"args\":[]}", "jid");
    refused("{\"jid\":\"short\",\"jobtype\":\"T\",\"args\":[]}", "jid");
    refused("{\"jid\":\"abcdefgh\",\"args\":[]}", "jobtype");
    refused("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\"}", "args");
    refused("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"retry\":1001}", "retry");
    refused("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"reserve_for\":59}", "reserve_for");
    refused("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"at\":\"soon\"}", "at");
    refused("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"custom\":1}", "custom");
    refused("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"custom\":{\"priority\":7}}",
            "custom.priority");
    refused("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],"
            "\"custom\":{\"backoff\":{\"curve\":\"x\"}}}", "custom.backoff.curve");
}

static void test_stored_form_keeps_the_faktory_fields(void **state)
{
    (void)state;
    job_t *j = parse_ok("{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"retry\":0,"
                        "\"custom\":{\"k\":[1,2]},\"backtrace\":7,\"created_at\":\"x\"}");
    char *text = job_json(j, JOB_JSON_STORED);
    json_t *doc = json_loads(text, 0, NULL);
    job_t *again;
    problem_t p;
    assert_int_equal(job_from_doc(doc, &again, &p), ERR_OK);
    assert_true(job_same_spec(j, again));
    assert_true(again->discard_failed);
    assert_int_equal(again->backoff.curve, BACKOFF_FAKTORY);
    sbuf_t s;
    sbuf_init(&s, 256);
    fwp_job_write(again, &s);
    json_t *f = json_loadb(s.p, s.len, 0, NULL);
    assert_non_null(f);
    assert_int_equal(json_integer_value(json_object_get(f, "retry")), 0);
    assert_int_equal(json_integer_value(json_object_get(f, "backtrace")), 7);
    assert_string_equal(json_string_value(json_object_get(f, "created_at")), "x");
    assert_true(json_equal(json_object_get(f, "custom"), json_object_get(job_faktory(j), "custom")));
    assert_null(json_object_get(f, "failure"));
    json_decref(f);
    sbuf_free(&s);
    json_decref(doc);
    free(text);
    job_free(again);
    job_free(j);
}

static json_t *fetch_form(const job_t *j)
{
    sbuf_t s;
    sbuf_init(&s, 256);
    fwp_job_write(j, &s);
    json_t *f = json_loadb(s.p, s.len, JSON_REJECT_DUPLICATES, NULL);
    sbuf_free(&s);
    assert_non_null(f);
    return f;
}

/* A job read back from its packed form keeps its extension as text and a
 * FETCH copies it: the same object as a FETCH built from the values. */
static void test_fetch_copies_a_plain_extension(void **state)
{
    (void)state;
    static const char *const pushes[] = {
        "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[1]}",
        "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[],\"retry\":0,\"priority\":9,"
        "\"custom\":{\"k\":[1,{\"created_at\":2}]},\"backtrace\":7,\"created_at\":\"x\"}",
        "{\"jid\":\"abcdefgh\",\"jobtype\":\"T\",\"args\":[\"a\"],\"custom\":{}}",
    };
    for (size_t i = 0; i < sizeof pushes / sizeof pushes[0]; i++) {
        job_t *j = parse_ok(pushes[i]);
        assert_true(j->faktory_plain);
        j->attempts = 1;
        if (i == 1)
            job_add_error(j, ERR_TIMEOUT, ENGINE_LEASE_EXPIRED, NULL, "w", NOW);
        sbuf_t packed;
        sbuf_init(&packed, 256);
        job_pack(j, &packed);
        job_t *back;
        problem_t p;
        assert_int_equal(job_unpack(packed.p, packed.len, j->id, j->queue, j->type, &back, &p),
                         ERR_OK);
        assert_null(back->faktory); /* text only, until asked */
        assert_true(back->faktory_plain);
        json_t *copied = fetch_form(back);
        j->faktory_plain = false; /* the values' way */
        json_t *built = fetch_form(j);
        if (!json_equal(copied, built))
            fail_msg("push %zu: %s vs %s", i, json_dumps(copied, JSON_COMPACT | JSON_SORT_KEYS),
                     json_dumps(built, JSON_COMPACT | JSON_SORT_KEYS));
        assert_true(job_same_spec(j, back));
        assert_true(json_equal(job_faktory(back), job_faktory(j)));
        json_decref(copied);
        json_decref(built);
        sbuf_free(&packed);
        job_free(back);
        job_free(j);
    }
}

static void test_fetch_form_of_an_http_job(void **state)
{
    (void)state;
    json_t *spec = json_loads("{\"id\":\"h1\",\"type\":\"t\",\"args\":{\"a\":1},"
                              "\"priority\":\"high\"}", 0, NULL);
    job_t *j;
    problem_t p;
    assert_int_equal(job_parse_spec(spec, &defaults, NOW, &j, &p), ERR_OK);
    j->attempts = 1;
    job_add_error(j, ERR_TIMEOUT, ENGINE_LEASE_EXPIRED, NULL, "w", NOW);
    j->state = JOB_RETRYING;
    sbuf_t s;
    sbuf_init(&s, 256);
    fwp_job_write(j, &s);
    json_t *f = json_loadb(s.p, s.len, 0, NULL);
    assert_non_null(f);
    json_t *want = json_pack("[{s:i}]", "a", 1);
    assert_true(json_equal(json_object_get(f, "args"), want));
    json_decref(want);
    json_t *jq = json_object_get(json_object_get(f, "custom"), "jobq");
    assert_string_equal(json_string_value(json_object_get(jq, "priority")), "high");
    assert_true(json_is_true(json_object_get(jq, "args_wrapped")));
    json_t *fail = json_object_get(f, "failure");
    assert_string_equal(json_string_value(json_object_get(fail, "errtype")), "ReservationExpired");
    assert_int_equal(json_integer_value(json_object_get(fail, "retry_count")), 0);
    assert_int_equal(json_integer_value(json_object_get(fail, "remaining")), 3);
    json_decref(f);
    sbuf_free(&s);
    json_decref(spec);
    job_free(j);
}

static void test_faktory_retry_curve(void **state)
{
    (void)state;
    backoff_t b = { .curve = BACKOFF_FAKTORY };
    /* n^4 + 15 + rand(30) * (n + 1) seconds, n = retries so far. */
    assert_int_equal(backoff_delay_ms(&b, 1, 0.0), 15000);
    assert_int_equal(backoff_delay_ms(&b, 1, 0.999), 44000);
    assert_int_equal(backoff_delay_ms(&b, 3, 0.5), (16 + 15 + 15 * 3) * 1000);
    assert_true(backoff_delay_ms(&b, 1001, 0.999) > 0); /* no overflow at the bound */
    assert_int_equal(fwp_errtype("timeout"), ERR_TIMEOUT);
    assert_int_equal(fwp_errtype("RuntimeError"), ERR_INTERNAL);
}

static void test_lines(void **state)
{
    (void)state;
    fwp_cmd_t c;
    fwp_parse("PUSH {}", 7, &c);
    assert_int_equal(c.verb, FWP_PUSH);
    assert_int_equal(c.args_len, 2);
    fwp_parse("INFO", 4, &c);
    assert_int_equal(c.verb, FWP_INFO);
    assert_int_equal(c.args_len, 0);
    fwp_parse("push x", 6, &c);
    assert_int_equal(c.verb, FWP_UNKNOWN);
    assert_string_equal(c.name, "push");
    fwp_parse("\x01\xff", 2, &c);
    assert_string_equal(c.name, "??");
    char buf[32];
    const char *w[2];
    assert_int_equal(fwp_words(" a  b ", 6, buf, w, 2), 2);
    assert_string_equal(w[1], "b");
    assert_int_equal(fwp_words("a b c", 5, buf, w, 2), -1);
    sbuf_t s;
    sbuf_init(&s, 16);
    fwp_reply_err(&s, "two\r\nlines");
    assert_string_equal(s.p, "-ERR two  lines\r\n");
    sbuf_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pwdhash_vectors),
        cmocka_unit_test(test_defaults_and_mapping),
        cmocka_unit_test(test_refusals_name_the_field),
        cmocka_unit_test(test_stored_form_keeps_the_faktory_fields),
        cmocka_unit_test(test_fetch_form_of_an_http_job),
        cmocka_unit_test(test_fetch_copies_a_plain_extension),
        cmocka_unit_test(test_faktory_retry_curve),
        cmocka_unit_test(test_lines),
    };
    return cmocka_run_group_tests_name("faktory", tests, NULL, NULL);
}
