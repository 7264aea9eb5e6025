/* Generic pieces: heap, hash map, RFC 3339, JSON string writing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/bloom.h"
#include "util/clock.h"
#include "util/crc32c.h"
#include "util/grow.h"
#include "util/heap.h"
#include "util/histogram.h"
#include "util/jsonb.h"
#include "util/hmap.h"
#include "util/pset.h"
#include "util/sbuf.h"
#include "util/url.h"
#include "util/token_bucket.h"
#include "util/utf8.h"

static void test_heap_orders_and_removes(void **state)
{
    (void)state;
    heap_t h;
    heap_init(&h);
    heap_node_t n[100];
    for (int i = 0; i < 100; i++) {
        n[i] = (heap_node_t){ 0 };
        assert_int_equal(heap_push(&h, &n[i], (i * 37) % 100), 0);
    }
    heap_remove(&h, &n[10]);
    heap_remove(&h, &n[10]); /* twice is harmless */
    assert_false(heap_contains(&n[10]));
    int64_t last = -1;
    while (heap_len(&h)) {
        heap_node_t *top = heap_peek(&h);
        assert_true(top->key >= last);
        last = top->key;
        heap_remove(&h, top);
    }
    heap_free(&h);
}

static void test_hmap_put_get_del(void **state)
{
    (void)state;
    hmap_t m;
    hmap_init(&m);
    static char keys[5000][16];
    for (int i = 0; i < 5000; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        assert_int_equal(hmap_put(&m, keys[i], keys[i]), 0);
    }
    assert_int_equal(hmap_len(&m), 5000);
    for (int i = 0; i < 5000; i += 2)
        assert_ptr_equal(hmap_del(&m, keys[i]), keys[i]);
    for (int i = 0; i < 5000; i++)
        assert_ptr_equal(hmap_get(&m, keys[i]), i % 2 ? keys[i] : NULL);
    assert_null(hmap_del(&m, "absent"));
    size_t it = 0, seen = 0;
    const char *k;
    void *v;
    while (hmap_next(&m, &it, &k, &v))
        seen++;
    assert_int_equal(seen, 2500);
    hmap_free(&m);
}

/* An item whose key text moves (as a job's id does when it freezes). */
typedef struct item {
    char *key;
} item_t;
static const char *item_key(const void *v) { return ((const item_t *)v)->key; }

/* Random adds and deletes against a plain array as the reference: every
 * item added and not deleted is found, every deleted one is not, and the
 * backward shift never loses a member of a probe run. */
/* Never a false "no", across stage growth; false "maybe"s stay rare. */
static void test_bloom_never_forgets_and_rarely_guesses(void **state)
{
    (void)state;
    bloom_t b;
    bloom_init(&b, 1000);
    char key[32];
    assert_false(bloom_maybe(&b, "anything"));
    for (int i = 0; i < 300000; i++) {
        snprintf(key, sizeof key, "job-%d", i);
        bloom_add(&b, key);
    }
    for (int i = 0; i < 300000; i++) {
        snprintf(key, sizeof key, "job-%d", i);
        assert_true(bloom_maybe(&b, key));
    }
    int wrong = 0;
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof key, "other-%d", i);
        wrong += bloom_maybe(&b, key);
    }
    assert_true(wrong < 1000); /* 1%, with 9 stages */
    assert_true(bloom_bytes(&b) < 300000 * 4);
    bloom_free(&b);
    assert_false(bloom_maybe(&b, "job-1"));
    assert_int_equal(bloom_bytes(&b), 0);
}

static void test_pset_matches_a_reference(void **state)
{
    (void)state;
    enum { N = 6000 };
    static item_t items[N];
    static bool in[N];
    pset_t s;
    pset_init(&s, item_key);
    unsigned r = 12345;
    size_t live = 0;
    for (int i = 0; i < N; i++) {
        items[i].key = malloc(24);
        snprintf(items[i].key, 24, "job-%d", i);
    }
    for (int step = 0; step < 40000; step++) {
        r = r * 1103515245u + 12345u;
        int i = (int)((r >> 8) % N);
        if (in[i]) {
            assert_ptr_equal(pset_del(&s, items[i].key), &items[i]);
            in[i] = false;
            live--;
        } else {
            assert_null(pset_get(&s, items[i].key));
            assert_int_equal(pset_add(&s, &items[i]), 0);
            in[i] = true;
            live++;
        }
        if (step % 997 == 0) { /* move one key's bytes, keeping its text */
            char *moved = strdup(items[i].key);
            free(items[i].key);
            items[i].key = moved;
        }
    }
    assert_int_equal(pset_len(&s), live);
    size_t seen = 0;
    void *v;
    for (size_t it = 0; (v = pset_next(&s, &it));)
        seen++;
    assert_int_equal(seen, live);
    for (int i = 0; i < N; i++)
        assert_ptr_equal(pset_get(&s, items[i].key), in[i] ? &items[i] : NULL);
    assert_null(pset_del(&s, "absent"));
    pset_free(&s);
    for (int i = 0; i < N; i++)
        free(items[i].key);
}

static void test_rfc3339(void **state)
{
    (void)state;
    char buf[32];
    assert_int_equal(clock_format_rfc3339(0, buf, sizeof buf), 0);
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    assert_int_equal(clock_format_rfc3339(951782400123, buf, sizeof buf), 0);
    assert_string_equal(buf, "2000-02-29T00:00:00.123Z");
    int64_t ms;
    assert_int_equal(clock_parse_rfc3339("2000-02-29T00:00:00.123Z", &ms), 0);
    assert_int_equal(ms, 951782400123);
    assert_int_equal(clock_parse_rfc3339("2000-02-29T02:00:00+02:00", &ms), 0);
    assert_int_equal(ms, 951782400000);
    for (int64_t t = 1600000000000; t < 1900000000000; t += 7777777777) {
        assert_int_equal(clock_format_rfc3339(t, buf, sizeof buf), 0);
        assert_int_equal(clock_parse_rfc3339(buf, &ms), 0);
        assert_int_equal(ms, t);
    }
    const char *bad[] = { "", "2000-02-30T00:00:00Z", "2001-02-29T00:00:00Z", "2000-01-01",
                          "2000-01-01T00:00:00", "2000-01-01T24:00:00Z", "2000-01-01T00:00:00Zx",
                          "2000-01-01T00:00:00.Z" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(clock_parse_rfc3339(bad[i], &ms), -1);
}

static void test_sbuf_json_strings_parse_back(void **state)
{
    (void)state;
    const char *cases[] = { "plain", "quote\" back\\slash", "ctl\x01\x1f\n\t\r", "utf-8 \xc3\xa9\xe2\x82\xac", "" };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sbuf_t s;
        sbuf_init(&s, 4);
        sbuf_add_jstr(&s, cases[i]);
        json_t *v = json_loads(s.p, JSON_DECODE_ANY, NULL);
        assert_non_null(v);
        assert_string_equal(json_string_value(v), cases[i]);
        json_decref(v);
        sbuf_free(&s);
    }
    sbuf_t s;
    sbuf_init(&s, 1);
    sbuf_add_int(&s, INT64_MIN + 1);
    sbuf_addc(&s, ' ');
    sbuf_add_int(&s, 0);
    assert_string_equal(s.p, "-9223372036854775807 0");
    sbuf_free(&s);
}

/* The string writer reads 8 bytes at a time where it can: every special
 * byte must be found at every offset, in every word position, and the
 * text must read back as the string (jansson's own reader). */
static void test_sbuf_json_strings_at_every_offset(void **state)
{
    (void)state;
    const char *specials[] = { "\"", "\\", "\x01", "\x1f", "\n", "\xc3\xa9", "\xe2\x82\xac",
                               "\xf0\x9f\x98\x80", " ", "~", "\x7f" };
    char text[64];
    for (size_t k = 0; k < sizeof specials / sizeof specials[0]; k++) {
        size_t sl = strlen(specials[k]);
        for (size_t len = 0; len < 24; len++) {
            for (size_t at = 0; at <= len; at++) {
                memset(text, 'a', len);
                memcpy(text + at, specials[k], sl);
                text[len + sl] = '\0';
                memset(text + at + sl, 'b', len - at);
                text[len + sl] = '\0';
                sbuf_t s;
                sbuf_init(&s, 4);
                sbuf_add_jstr(&s, text);
                json_t *v = json_loads(s.p, JSON_DECODE_ANY, NULL);
                assert_non_null(v);
                assert_string_equal(json_string_value(v), text);
                json_decref(v);
                sbuf_free(&s);
            }
        }
    }
}

static void test_token_bucket(void **state)
{
    (void)state;
    token_bucket_t b;
    double rate = 4, depth = tb_default_depth(rate, 2);
    assert_true(depth == 2);
    assert_true(tb_default_depth(0.5, 0) == 1 && tb_default_depth(10, 0) == 10);
    tb_init(&b, depth, 1000);
    assert_true(tb_take(&b, rate, depth, 1000));
    assert_true(tb_take(&b, rate, depth, 1000));
    assert_false(tb_take(&b, rate, depth, 1000)); /* burst spent */
    assert_int_equal(tb_wait_ms(&b, rate), 250);
    assert_false(tb_take(&b, rate, depth, 1249));
    assert_true(tb_take(&b, rate, depth, 1250));
    assert_true(tb_ready(&b, rate, depth, 1000000)); /* refills, but never past depth */
    assert_true(b.tokens == depth);
    assert_true(tb_ready(&b, rate, 1, 1000000) && b.tokens == 1); /* a shallower reload */
}

/* Issue 9: p95 of samples that all sit high in one bucket came out below
 * the smallest of them (interpolated from the bucket's lower bound). */
static void test_histogram_quantile_stays_within_samples(void **state)
{
    (void)state;
    histogram_t h;
    histogram_init(&h, histogram_seconds, histogram_seconds_n);
    for (int i = 0; i < 20; i++)
        histogram_observe(&h, 0.7 + i * 0.001);
    double p95 = histogram_quantile(&h, 0.95), p50 = histogram_quantile(&h, 0.5);
    assert_true(p95 >= 0.7 && p95 <= 0.72);
    assert_true(p50 >= 0.7 && p50 <= p95);
}

/* jsonb_write says what jansson's compact dump says, reals aside (the
 * shortest text of the same double) and the case of \u escapes' hex, and
 * always reads back equal. */
static void test_jsonb_write_reads_back_as_jansson_writes(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "{}", "[]", "null", "true", "-9223372036854775808", "\"\"",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u0000x\\n\\\"\\\\\\u001f\\u00e9\\ud83d\\ude00\"}",
        "{\"key\":false,\"\":[[]],\"z\":{}}", "[\"/\",\"\\u007f\"]",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        json_error_t e;
        json_t *v = json_loads(docs[i], JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        assert_non_null(v);
        char *ours = jsonb_text(v), *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        assert_int_equal(strcasecmp(ours, theirs), 0);
        json_t *back = json_loads(ours, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
        assert_true(json_equal(back, v));
        json_decref(back);
        free(ours);
        free(theirs);
        json_decref(v);
    }
    static const double reals[] = { 0.1, 1.0, -0.0, 1e300, 2.5e-308, 123456789.125, 1.0 / 3 };
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *v = json_pack("[f]", reals[i]);
        char *text = jsonb_text(v);
        json_error_t e;
        json_t *back = json_loads(text, 0, &e);
        assert_non_null(back);
        assert_true(json_is_real(json_array_get(back, 0)));
        assert_true(json_real_value(json_array_get(back, 0)) == reals[i]);
        free(text);
        json_decref(back);
        json_decref(v);
    }
}

/* Replies keep jansson's JSON_REAL_PRECISION(15): computed figures read
 * as people write them; reals stay reals. */
static void test_jsonb_reply_text_rounds_reals_to_15_digits(void **state)
{
    (void)state;
    char *t = jsonb_reply_text(json_pack("{s:f, s:f, s:f, s:i}", "a", 0.1 + 0.2, "b", 2.0, "c",
                                         1e300, "d", 7), 15);
    assert_string_equal(t, "{\"a\":0.3,\"b\":2.0,\"c\":1e+300,\"d\":7}");
    free(t);
}

static void test_jsonb_bounds_depth(void **state)
{
    (void)state;
    char deep[400] = "", path[128];
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    for (int i = 0; i < 70; i++)
        strcat(deep, "]");
    json_error_t e;
    assert_null(jsonb_loadb(deep, strlen(deep), 0, 64, &e));
    assert_non_null(strstr(e.text, "deeper than 64"));
    json_t *v = jsonb_loadb(deep, strlen(deep), 0, 70, &e);
    assert_non_null(v);
    json_decref(v);
    v = json_loads("{\"a\":{\"b\":[1,{\"c\":[]}]}}", 0, NULL);
    assert_true(jsonb_within(v, 5, path, sizeof path));
    assert_false(jsonb_within(v, 4, path, sizeof path));
    assert_string_equal(path, "a.b[1].c");
    json_decref(v);
}

static int freed_values;
static void count_free(void *v)
{
    freed_values++;
    free(v);
}

/* The standard check value, and a checksum continued over pieces (the
 * journal's header, then its payload) equals one over the whole, at every
 * split and alignment (the hardware path takes 8 bytes at a time). */
static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(crc32c(0, "123456789", 9), 0xe3069283u);
    assert_int_equal(crc32c(0, "", 0), 0);
    char buf[64];
    for (int i = 0; i < 64; i++)
        buf[i] = (char)(i * 37 + 11);
    uint32_t whole = crc32c(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut++)
        assert_int_equal(crc32c(crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
}

/* Numbers read back as exactly what was written, by either path. */
static void test_sbuf_doubles_read_back_exactly(void **state)
{
    (void)state;
    const double vs[] = { 0, 0.2, 2, 1.5, 0.1 + 0.2, 1e-7, 123456.789012, 999999999.5, 1e9,
                          1e300, -0.0, -2.5, 3.14159265358979 };
    const char *want[] = { "0.0", "0.2", "2.0", "1.5", NULL, NULL, "123456.789012",
                           "999999999.5", NULL, NULL, "-0.0", "-2.5", NULL };
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        sbuf_t s;
        sbuf_init(&s, 8);
        sbuf_add_double(&s, vs[i], true);
        char *t = sbuf_take(&s);
        assert_true(strtod(t, NULL) == vs[i]);
        if (want[i])
            assert_string_equal(t, want[i]);
        free(t);
    }
}

static void test_hmap_free_values_frees_each_value_once(void **state)
{
    (void)state;
    hmap_t m;
    hmap_init(&m);
    static const char *const keys[] = { "a", "b", "c", "d", "e" };
    for (int i = 0; i < 5; i++)
        assert_int_equal(hmap_put(&m, keys[i], malloc(8)), 0);
    free(hmap_del(&m, "c"));
    freed_values = 0;
    hmap_free_values(&m, count_free);
    assert_int_equal(freed_values, 4);
    assert_int_equal(hmap_len(&m), 0);
}

/* The byte-at-a-time check utf8_valid's eight-byte steps stand in for. */
static bool utf8_reference(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t k = p[i] < 0x80 ? 1 : utf8_seq_len(p + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* Mostly ASCII with a multi-byte or bad byte anywhere, lengths 0-40: the
 * fast path gives the reference's answer at every offset. */
static void test_utf8_valid_matches_a_reference(void **state)
{
    (void)state;
    static const unsigned char odd[] = { 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98,
                                         0x80, 0xc0, 0xed, 0xa0, 0xff, 0x80, 0xf4, 0x90 };
    uint32_t x = 12345;
    int valid = 0;
    for (int round = 0; round < 200000; round++) {
        unsigned char buf[40];
        x = x * 1664525u + 1013904223u;
        size_t n = (x >> 8) % sizeof buf;
        for (size_t i = 0; i < n; i++) {
            x = x * 1664525u + 1013904223u;
            buf[i] = (x >> 24) < 240 ? (unsigned char)('a' + (x >> 16) % 26)
                                     : odd[(x >> 16) % sizeof odd];
        }
        bool want = utf8_reference(buf, n);
        valid += want;
        if (utf8_valid((const char *)buf, n) != want)
            fail_msg("round %d, %zu bytes", round, n);
    }
    assert_true(valid > 1000 && valid < 199000); /* both answers were tried */
}

/* A database URL's password never shows; everything else does. */
static void test_url_redact_hides_only_the_password(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        { "postgres://jobq:s3cr:et@db.example:5432/jobs?sslmode=require",
          "postgres://jobq:***@db.example:5432/jobs?sslmode=require" },
        { "postgres://jobq@127.0.0.1/jobs", "postgres://jobq@127.0.0.1/jobs" },
        { "postgres://db/jobs?user=a@b", "postgres://db/jobs?user=a@b" },
        { "postgresql://u:p@h", "postgresql://u:***@h" },
        { "sqlite:///var/lib/jobq/jobq.db", "sqlite:///var/lib/jobq/jobq.db" },
        { "u:p@h", "u:***@h" },
    };
    char out[128];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_string_equal(url_redact(cases[i][0], out, sizeof out), cases[i][1]);
    assert_string_equal(url_redact("postgres://u:p@h", out, 8), "postgre");
}

/* Room for one more: the same array while there is room, doubled from
 * the first size when full, and a size that would overflow refused with
 * the old array and capacity kept. */
static void test_grow_array_doubles_only_when_full(void **state)
{
    (void)state;
    size_t cap = 0;
    int *v = grow_array(NULL, &cap, 0, sizeof *v, 2);
    assert_non_null(v);
    assert_int_equal(cap, 2);
    v[0] = 7;
    assert_ptr_equal(grow_array(v, &cap, 1, sizeof *v, 2), v);
    assert_int_equal(cap, 2);
    v[1] = 8;
    v = grow_array(v, &cap, 2, sizeof *v, 2);
    assert_non_null(v);
    assert_int_equal(cap, 4);
    assert_int_equal(v[0] + v[1], 15);
    size_t huge = SIZE_MAX / 2 + 1;
    assert_null(grow_array(v, &huge, huge, sizeof *v, 2));
    assert_int_equal(huge, SIZE_MAX / 2 + 1);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_orders_and_removes),
        cmocka_unit_test(test_url_redact_hides_only_the_password),
        cmocka_unit_test(test_hmap_put_get_del),
        cmocka_unit_test(test_pset_matches_a_reference),
        cmocka_unit_test(test_bloom_never_forgets_and_rarely_guesses),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_sbuf_json_strings_parse_back),
        cmocka_unit_test(test_sbuf_json_strings_at_every_offset),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_histogram_quantile_stays_within_samples),
        cmocka_unit_test(test_jsonb_bounds_depth),
        cmocka_unit_test(test_jsonb_write_reads_back_as_jansson_writes),
        cmocka_unit_test(test_jsonb_reply_text_rounds_reals_to_15_digits),
        cmocka_unit_test(test_hmap_free_values_frees_each_value_once),
        cmocka_unit_test(test_sbuf_doubles_read_back_exactly),
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_grow_array_doubles_only_when_full),
        cmocka_unit_test(test_utf8_valid_matches_a_reference),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
