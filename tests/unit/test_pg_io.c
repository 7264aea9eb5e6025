/* The PostgreSQL backend's waits (postgres_io.c) against a server that
 * stops answering: a listener that never accepts, and one that takes a
 * session and then says nothing. Real sockets on loopback; the fake
 * speaks only the three messages a connection needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store/postgres_internal.h"
#include "util/clock.h"

static int listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof a;
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

static PGconn *connect_to(int port, int64_t ms, char *err, size_t len)
{
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    const char *keys[] = { "host", "port", "dbname", "user", "sslmode", "gssencmode", NULL };
    const char *vals[] = { "127.0.0.1", p, "jobq", "jobq", "disable", "disable", NULL };
    return pgio_connect(keys, vals, ms, err, len);
}

static int64_t ms_since(int64_t t0) { return (clock_mono_ns() - t0) / 1000000; }

/* The kernel completes the handshake for the backlog, so the startup
 * message is sent and nothing ever comes back. */
static void test_a_connect_nobody_answers_ends_at_its_bound(void **state)
{
    (void)state;
    int port, fd = listener(&port);
    char err[256] = "";
    int64_t t0 = clock_mono_ns();
    PGconn *db = connect_to(port, 300, err, sizeof err);
    int64_t took = ms_since(t0);
    assert_null(db);
    assert_non_null(strstr(err, "no answer within 300 ms"));
    assert_true(took >= 290 && took < 5000);
    close(fd);
}

/* Accepts one session, lets it in (AuthenticationOk, ReadyForQuery),
 * then reads what comes and answers nothing, until the client's end. */
static void *silent_server(void *arg)
{
    int fd = accept(*(int *)arg, NULL, NULL), n;
    char buf[4096];
    static const char hello[] = { 'R', 0, 0, 0, 8, 0, 0, 0, 0, 'Z', 0, 0, 0, 5, 'I' };
    if (fd < 0)
        return NULL;
    if (read(fd, buf, sizeof buf) > 0 && write(fd, hello, sizeof hello) == sizeof hello)
        while ((n = (int)read(fd, buf, sizeof buf)) > 0) {
        }
    close(fd);
    return NULL;
}

static void test_a_session_that_goes_silent_is_cut_at_its_bound(void **state)
{
    (void)state;
    int port, fd = listener(&port);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, silent_server, &fd), 0);
    char err[256] = "";
    PGconn *db = connect_to(port, 5000, err, sizeof err);
    assert_non_null(db);
    assert_int_equal(PQstatus(db), CONNECTION_OK);
    assert_int_equal(PQisnonblocking(db), 1);
    bool cut = false;
    int64_t t0 = clock_mono_ns();
    PGresult *r = pgio_last(db, PQsendQuery(db, "SELECT 1"), 300, &cut);
    int64_t took = ms_since(t0);
    assert_true(cut);
    assert_true(took >= 290 && took < 5000);
    assert_int_not_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQstatus(db), CONNECTION_BAD); /* the caller's path for a lost session */
    PQclear(r);
    PQfinish(db);
    assert_int_equal(pthread_join(t, NULL), 0); /* the fake saw the end of the session */
    close(fd);
}

int main(void)
{
    alarm(60); /* a wait that is not bounded fails the run instead of hanging it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_connect_nobody_answers_ends_at_its_bound),
        cmocka_unit_test(test_a_session_that_goes_silent_is_cut_at_its_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
