/* The query cache: hits, generation invalidation, TTL, LRU under a byte cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "api/cache.h"

static void test_hit_then_invalidated_by_its_queue_only(void **state)
{
    (void)state;
    cache_t *c = cache_new(1000, 1 << 20);
    uint64_t g = cache_generation(c, "q1");
    cache_put(c, "k1", "q1", g, "one", 0);
    cache_put(c, "all", NULL, cache_generation(c, NULL), "every", 0);
    assert_string_equal(cache_get(c, "k1", "q1", 10), "one");
    cache_touch(c, "q2");
    assert_string_equal(cache_get(c, "k1", "q1", 10), "one"); /* another queue */
    assert_null(cache_get(c, "all", NULL, 10));                /* all-queue answers go */
    cache_touch(c, "q1");
    assert_null(cache_get(c, "k1", "q1", 10));
    cache_stats_t s;
    cache_stats(c, &s);
    assert_int_equal(s.hits, 2);
    assert_int_equal(s.invalidations, 2);
    cache_free(c);
}

static void test_late_answer_is_not_kept(void **state)
{
    (void)state;
    cache_t *c = cache_new(1000, 1 << 20);
    uint64_t g = cache_generation(c, "q");
    cache_touch(c, "q"); /* a write was queued while the store read */
    cache_put(c, "k", "q", g, "stale", 0);
    assert_null(cache_get(c, "k", "q", 0));
    /* A delete we cannot place touches every queue, even unseen ones. */
    g = cache_generation(c, "fresh");
    cache_touch(c, NULL);
    cache_put(c, "k2", "fresh", g, "stale", 0);
    assert_null(cache_get(c, "k2", "fresh", 0));
    cache_free(c);
}

/* Past the queues it tracks one by one (4096: names are the clients'),
 * a change to a queue it cannot track still goes stale every answer of
 * it, and of the other untracked ones, and none of a tracked queue. */
static void test_untracked_queues_still_go_stale(void **state)
{
    (void)state;
    cache_t *c = cache_new(1000, 1 << 20);
    cache_put(c, "t", "q0", cache_generation(c, "q0"), "tracked", 0);
    for (int i = 0; i < 5000; i++) {
        char q[16];
        snprintf(q, sizeof q, "q%d", i);
        cache_touch(c, q);
    }
    cache_put(c, "t", "q0", cache_generation(c, "q0"), "tracked", 0);
    cache_put(c, "a", "late-a", cache_generation(c, "late-a"), "a", 0);
    cache_put(c, "b", "late-b", cache_generation(c, "late-b"), "b", 0);
    assert_string_equal(cache_get(c, "a", "late-a", 0), "a");
    cache_touch(c, "late-b");
    assert_null(cache_get(c, "b", "late-b", 0));
    assert_null(cache_get(c, "a", "late-a", 0));
    assert_string_equal(cache_get(c, "t", "q0", 0), "tracked");
    cache_free(c);
}

static void test_ttl_and_lru(void **state)
{
    (void)state;
    char big[300];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    cache_t *c = cache_new(100, 2000); /* room for five entries of about 370 bytes */
    for (int i = 0; i < 5; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        cache_put(c, key, NULL, cache_generation(c, NULL), big, 0);
    }
    assert_non_null(cache_get(c, "k0", NULL, 1)); /* k0 now most recent */
    cache_put(c, "k5", NULL, cache_generation(c, NULL), big, 1);
    assert_null(cache_get(c, "k1", NULL, 1)); /* least recently used went */
    assert_non_null(cache_get(c, "k0", NULL, 1));
    assert_true(cache_bytes(c) <= 2000);
    assert_null(cache_get(c, "k0", NULL, 100)); /* expired */
    cache_stats_t s;
    cache_stats(c, &s);
    assert_true(s.evictions >= 1 && s.expirations == 1);
    cache_configure(c, 0, 2000); /* off: empty, and nothing is kept */
    cache_put(c, "k9", NULL, cache_generation(c, NULL), "x", 200);
    assert_null(cache_get(c, "k9", NULL, 200));
    assert_int_equal(cache_bytes(c), 0);
    cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_then_invalidated_by_its_queue_only),
        cmocka_unit_test(test_late_answer_is_not_kept),
        cmocka_unit_test(test_untracked_queues_still_go_stale),
        cmocka_unit_test(test_ttl_and_lru),
    };
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
