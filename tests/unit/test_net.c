/* Network pieces: lingering close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/linger.h"

static void pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
}

/* The client's unread bytes keep our side open for reading, and our side
 * is done writing: the client reads the reply, then the end. */
static void test_linger_reads_until_the_clients_end(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    net_linger_t *l = net_linger_new(base);
    int sv[2];
    pair(sv);
    assert_int_equal(write(sv[0], "the rest of a body", 18), 18);
    assert_int_equal(write(sv[1], "431", 3), 3);
    net_linger_closing(l, sv[1]);
    close(sv[1]); /* what libmicrohttpd does next */
    assert_int_equal(net_linger_count(l), 1);
    char buf[8];
    assert_int_equal(read(sv[0], buf, sizeof buf), 3);
    assert_int_equal(read(sv[0], buf, sizeof buf), 0); /* our FIN */
    assert_int_equal(write(sv[0], "more", 4), 4);      /* still read, not refused */
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(net_linger_count(l), 1);
    close(sv[0]);
    event_base_loop(base, EVLOOP_NONBLOCK);
    assert_int_equal(net_linger_count(l), 0);
    net_linger_free(l);
    event_base_free(base);
}

static void test_linger_leaves_a_drained_socket_alone(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    net_linger_t *l = net_linger_new(base);
    int sv[2];
    pair(sv);
    net_linger_closing(l, sv[1]);
    assert_int_equal(net_linger_count(l), 0);
    close(sv[1]);
    close(sv[0]);
    net_linger_free(l);
    event_base_free(base);
}

/* A client that never ends is cut at stop (and at LINGER_MS before). */
static void test_linger_free_closes_what_still_lingers(void **state)
{
    (void)state;
    struct event_base *base = event_base_new();
    net_linger_t *l = net_linger_new(base);
    int sv[2];
    pair(sv);
    assert_int_equal(write(sv[0], "x", 1), 1);
    net_linger_closing(l, sv[1]);
    close(sv[1]);
    assert_int_equal(net_linger_count(l), 1);
    net_linger_free(l);
    char buf[4]; /* closed with "x" unread: the end, or a reset */
    assert_true(read(sv[0], buf, sizeof buf) <= 0);
    close(sv[0]);
    event_base_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linger_reads_until_the_clients_end),
        cmocka_unit_test(test_linger_leaves_a_drained_socket_alone),
        cmocka_unit_test(test_linger_free_closes_what_still_lingers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
