/* The packed form of a job: it reads back as the same job, in every state
 * and with every optional part, and damaged or hostile bytes never do. And
 * the names a job's id, queue and type may be, which reading checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/job.h"
#include "core/names.h"
#include "util/crc32c.h"
#include "util/le.h"
#include "util/sbuf.h"

static const job_defaults_t defaults = { 3, 60000, { 1000, 3600000, 2.0, 0.2, BACKOFF_EXPONENTIAL } };

static job_t *parse(const char *spec_text)
{
    json_error_t e;
    json_t *spec = json_loads(spec_text, 0, &e);
    assert_non_null(spec);
    job_t *j = NULL;
    problem_t p;
    assert_int_equal(job_parse_spec(spec, &defaults, 1764590000123LL, &j, &p), ERR_OK);
    json_decref(spec);
    return j;
}

static void pack(const job_t *j, sbuf_t *s)
{
    sbuf_init(s, 64);
    job_pack(j, s);
}

/* Packs, unpacks, and compares the stored JSON of both: every field. */
static void assert_round_trip(const job_t *j)
{
    sbuf_t s;
    pack(j, &s);
    assert_true(job_is_packed(s.p, s.len));
    job_t *back = NULL;
    problem_t p;
    err_t e = job_unpack(s.p, s.len, j->id, j->queue, j->type, &back, &p);
    if (e)
        fail_msg("unpack: %s (%s)", p.detail, p.field);
    char *a = job_json(j, JOB_JSON_STORED), *b = job_json(back, JOB_JSON_STORED);
    assert_string_equal(a, b);
    assert_true(job_same_spec(j, back));
    free(a);
    free(b);
    job_free(back);
    sbuf_free(&s);
}

static void test_a_queued_job_reads_back_whole_and_small(void **state)
{
    (void)state;
    job_t *j = parse("{\"type\":\"deep\",\"queue\":\"q\",\"args\":{\"n\":1,\"pad\":"
                     "\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}}");
    j->state = JOB_QUEUED;
    assert_round_trip(j);
    sbuf_t s;
    pack(j, &s);
    size_t alen;
    job_args_text(j, &alen);
    /* The args, their length, 4 bytes of CRC and a few bytes of fields:
     * the defaults and the times cost almost nothing. */
    assert_true(s.len < alen + 40);
    sbuf_free(&s);
    job_free(j);
}

static void test_every_optional_part_reads_back(void **state)
{
    (void)state;
    job_t *j = parse("{\"type\":\"t\",\"args\":[1,\"two\",{\"3\":null}],\"priority\":\"background\","
                     "\"max_retries\":1000,\"timeout_ms\":86400000,\"breaker_key\":\"host:1\","
                     "\"backoff\":{\"initial_ms\":0,\"max_ms\":604800000,\"multiplier\":1.0000001,"
                     "\"jitter\":0.3333333333333333,\"curve\":\"faktory\"},"
                     "\"run_at\":\"1970-01-01T00:00:00Z\"}");
    j->state = JOB_RUNNING;
    j->attempts = 7;
    j->cancel_requested = true;
    j->discard_failed = true;
    j->started_at = j->created_at + 5;
    j->updated_at = j->created_at - 1;
    memset(j->lease_id, 'a', JOB_LEASE_ID_LEN);
    j->lease_worker = strdup("fwp-host-12");
    j->lease_expires_at = 253402300799999LL;
    json_t *v = json_pack("{s:f}", "pct", 0.5);
    job_set_progress(j, v);
    json_decref(v);
    v = json_pack("{s:s}", "ok", "fine");
    job_set_result(j, v);
    json_decref(v);
    json_t *ctx = json_pack("{s:i}", "code", 500);
    job_add_error(j, ERR_UNAVAILABLE, "boom \"quoted\"", ctx, "w1", j->created_at + 9);
    json_decref(ctx);
    v = json_pack("{s:{s:s}, s:i}", "custom", "k", "v", "retry", 25);
    job_set_faktory(j, v);
    json_decref(v);
    assert_round_trip(j);
    j->state = JOB_FAILED; /* no lease outside running */
    j->finished_at = j->created_at + 100000;
    assert_round_trip(j);
    job_free(j);
}

/* job_pack_at: the same bytes as job_pack, and where the args' text is
 * in them, whatever comes before it (a lease, a breaker key) or after. */
static void test_the_args_are_found_where_they_were_packed(void **state)
{
    (void)state;
    job_t *j = parse("{\"type\":\"t\",\"args\":{\"pad\":\"xxxxxxxxxxxxxxxx\"},"
                     "\"breaker_key\":\"host:1\"}");
    for (int running = 0; running < 2; running++) {
        j->state = running ? JOB_RUNNING : JOB_QUEUED;
        memset(j->lease_id, 'a', JOB_LEASE_ID_LEN);
        sbuf_t whole, split;
        pack(j, &whole);
        sbuf_init(&split, 64);
        sbuf_adds(&split, "prefix"); /* offsets count from the form's first byte */
        job_pack_args_t at = { 0, 0 };
        job_pack_at(j, &split, &at);
        size_t alen;
        const char *args = job_args_text(j, &alen);
        assert_int_equal(split.len - 6, whole.len);
        assert_memory_equal(split.p + 6, whole.p, whole.len);
        assert_int_equal(at.len, alen);
        assert_true(at.at + at.len < whole.len);
        assert_memory_equal(whole.p + at.at, args, alen);
        sbuf_free(&whole);
        sbuf_free(&split);
    }
    job_free(j);
}

/* Numbers a client may send that the short form cannot hold go raw. */
static void test_odd_numbers_read_back_exactly(void **state)
{
    (void)state;
    static const char *const specs[] = {
        "{\"type\":\"t\",\"backoff\":{\"jitter\":-0.0}}",
        "{\"type\":\"t\",\"backoff\":{\"jitter\":1e-7,\"multiplier\":99.9999999}}",
        "{\"type\":\"t\",\"run_at\":\"0000-01-01T00:00:00Z\",\"args\":-1.5e300}",
    };
    for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
        job_t *j = parse(specs[i]);
        assert_round_trip(j);
        job_free(j);
    }
}

/* Flipping any bit, or cutting at any byte, is caught: by the CRC or by a
 * field's bounds, never by a crash (the sanitizer build runs this). */
static void test_damage_anywhere_is_refused(void **state)
{
    (void)state;
    job_t *j = parse("{\"type\":\"t\",\"args\":{\"a\":[1,2,3]},\"breaker_key\":\"b\"}");
    j->state = JOB_RETRYING;
    job_add_error(j, ERR_TIMEOUT, "slow", NULL, NULL, j->created_at + 1);
    sbuf_t s;
    pack(j, &s);
    job_t *back = NULL;
    problem_t p;
    for (size_t cut = 0; cut < s.len; cut++)
        assert_int_not_equal(job_unpack(s.p, cut, "i", "q", "t", &back, &p), ERR_OK);
    for (size_t i = 0; i < s.len * 8; i++) {
        s.p[i / 8] = (char)(s.p[i / 8] ^ (1 << (i % 8)));
        assert_int_not_equal(job_unpack(s.p, s.len, "i", "q", "t", &back, &p), ERR_OK);
        s.p[i / 8] = (char)(s.p[i / 8] ^ (1 << (i % 8)));
    }
    assert_int_equal(job_unpack(s.p, s.len, "i", "q", "t", &back, &p), ERR_OK);
    job_free(back);
    sbuf_free(&s);
    job_free(j);
}

/* Bytes with a valid CRC (as a hostile writer could make) are still
 * checked field by field, and the field is named. */
static void test_bad_fields_with_a_good_crc_are_named(void **state)
{
    (void)state;
    static const struct {
        unsigned char bytes[24];
        size_t n;
        const char *field;
    } cases[] = {
        { { JOB_PACK_VERSION, 9 }, 2, "state" },
        { { JOB_PACK_VERSION, 1, 5 }, 3, "priority" },
        { { JOB_PACK_VERSION, 1, 2, 0, 0, 0xe9, 0x07 }, 7, "max_retries" }, /* 1001 */
        { { JOB_PACK_VERSION, 1, 2, 0, 0, 3, 5 }, 7, "timeout_ms" },
        { { JOB_PACK_VERSION, 1, 2, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0x7f }, 17, "timeout_ms" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char buf[64];
        memcpy(buf, cases[i].bytes, cases[i].n);
        memset(buf + cases[i].n, 0, 16);
        size_t n = cases[i].n + 16;
        le_put32(buf + n, crc32c(0, buf, n));
        job_t *back = NULL;
        problem_t p;
        assert_int_not_equal(job_unpack(buf, n + 4, "i", "q", "t", &back, &p), ERR_OK);
        assert_string_equal(p.field, cases[i].field);
    }
    sbuf_t s;
    job_t *j = parse("{\"type\":\"t\"}");
    pack(j, &s);
    job_t *back = NULL;
    problem_t p;
    assert_int_not_equal(job_unpack(s.p, s.len, "bad id", "q", "t", &back, &p), ERR_OK);
    assert_string_equal(p.field, "id");
    assert_int_not_equal(job_unpack(s.p, s.len, "i", "", "t", &back, &p), ERR_OK);
    assert_string_equal(p.field, "queue");
    s.p[1] = JOB_RUNNING; /* running, but without a lease */
    le_put32((unsigned char *)s.p + s.len - 4, crc32c(0, s.p, s.len - 4));
    assert_int_not_equal(job_unpack(s.p, s.len, "i", "q", "t", &back, &p), ERR_OK);
    assert_string_equal(p.field, "lease");
    sbuf_free(&s);
    job_free(j);
}

/* Exactly [A-Za-z0-9._:-], whatever the byte, and 1-200 of them. */
static void test_name_characters(void **state)
{
    (void)state;
    for (int b = 0; b < 256; b++) {
        char c = (char)b;
        bool want = (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
                    b == '.' || b == '_' || b == ':' || b == '-';
        if (job_name_char(c) != want)
            fail_msg("byte %d", b);
        char one[2] = { c, '\0' };
        assert_int_equal(job_name_valid(one), want && b != 0);
    }
    char name[JOB_NAME_MAX + 2];
    memset(name, 'a', sizeof name);
    name[JOB_NAME_MAX] = '\0';
    assert_true(job_name_valid(name));
    name[JOB_NAME_MAX] = 'a';
    name[JOB_NAME_MAX + 1] = '\0';
    assert_false(job_name_valid(name));
    assert_false(job_name_valid(""));
}

/* One shared copy per name, whether the thread's recent answers have it
 * or the table does; different names never share. */
static void test_names_share_one_copy(void **state)
{
    (void)state;
    char a[32], b[32];
    const char *first[10];
    for (int i = 0; i < 10; i++) {
        snprintf(a, sizeof a, "name-%d", i);
        first[i] = names_intern(a);
        assert_non_null(first[i]);
        assert_string_equal(first[i], a);
    }
    for (int round = 0; round < 3; round++)
        for (int i = 9; i >= 0; i--) {
            snprintf(b, sizeof b, "name-%d", i);
            assert_ptr_equal(names_intern(b), first[i]);
        }
    for (int i = 1; i < 10; i++)
        assert_ptr_not_equal(first[i], first[i - 1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_queued_job_reads_back_whole_and_small),
        cmocka_unit_test(test_every_optional_part_reads_back),
        cmocka_unit_test(test_the_args_are_found_where_they_were_packed),
        cmocka_unit_test(test_odd_numbers_read_back_exactly),
        cmocka_unit_test(test_damage_anywhere_is_refused),
        cmocka_unit_test(test_bad_fields_with_a_good_crc_are_named),
        cmocka_unit_test(test_name_characters),
        cmocka_unit_test(test_names_share_one_copy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
