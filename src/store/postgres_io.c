/*
 * Every wait of the PostgreSQL backend on its server, through libpq's
 * asynchronous API: a session is non-blocking, and a wait polls its socket
 * for at most a bound of silence. A server that stops answering without
 * closing (SIGSTOP, a hung host or disk) is the case this is for: the
 * kernel still acknowledges what is sent, so neither keepalives nor the
 * TCP user timeout ever fire, and a blocking libpq call waited for good,
 * with the store thread, readiness and the stop behind it. Past the bound
 * the session is cut (its socket shut), libpq reports it broken, and the
 * caller's path for a lost session follows (the batch is retried on a new
 * one; what it held was never acknowledged).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>

#include "store/postgres_internal.h"
#include "util/clock.h"

static int64_t now_ms(void) { return clock_mono_ns() / 1000000; }

/* One poll of the session's socket, for at most `left` ms: 1 if it is
 * ready for what was asked, 0 if not yet, -1 on an error. */
static int wait_on(PGconn *db, short events, int64_t left)
{
    struct pollfd p = { .fd = PQsocket(db), .events = events };
    if (p.fd < 0)
        return -1;
    int n = poll(&p, 1, (int)(left < 1000 ? left : 1000));
    if (n < 0)
        return errno == EINTR ? 0 : -1;
    return n > 0 ? 1 : 0;
}

PGconn *pgio_connect(const char *const *keys, const char *const *vals, int64_t ms, char *err,
                     size_t len)
{
    PGconn *db = PQconnectStartParams(keys, vals, 1);
    if (!db) {
        snprintf(err, len, "cannot connect to PostgreSQL: out of memory");
        return NULL;
    }
    /* libpq's own connect_timeout holds only for its blocking connect. */
    int64_t deadline = now_ms() + ms;
    PostgresPollingStatusType st =
        PQstatus(db) == CONNECTION_BAD ? PGRES_POLLING_FAILED : PGRES_POLLING_WRITING;
    while (st == PGRES_POLLING_READING || st == PGRES_POLLING_WRITING) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            snprintf(err, len, "cannot connect to PostgreSQL: no answer within %lld ms",
                     (long long)ms);
            PQfinish(db);
            return NULL;
        }
        int ready = wait_on(db, st == PGRES_POLLING_READING ? POLLIN : POLLOUT, left);
        if (ready < 0)
            st = PGRES_POLLING_FAILED;
        else if (ready)
            st = PQconnectPoll(db);
    }
    if (st != PGRES_POLLING_OK || PQsetnonblocking(db, 1) != 0) {
        snprintf(err, len, "cannot connect to PostgreSQL: %s", PQerrorMessage(db));
        PQfinish(db);
        return NULL;
    }
    return db;
}

/* Shut, so that libpq reads the end of the session and calls it broken
 * (PQstatus), and nothing waits on it again. */
static void cut_off(PGconn *db, bool *cut)
{
    int fd = PQsocket(db);
    if (fd >= 0)
        (void)shutdown(fd, SHUT_RDWR);
    (void)PQconsumeInput(db);
    *cut = true;
}

/* Until a result can be taken without blocking, or the session broke:
 * what was sent goes out meanwhile, and what arrives is read. The bound
 * starts again whenever the server moves (reads or sends), so a long
 * stream of rows is not cut, a silent server is. */
static void ready(PGconn *db, int64_t ms, bool *cut)
{
    int64_t deadline = now_ms() + ms;
    for (;;) {
        if (PQstatus(db) != CONNECTION_OK)
            return;
        int unsent = PQflush(db);
        if (unsent < 0 || (!unsent && !PQisBusy(db)))
            return;
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            cut_off(db, cut);
            return;
        }
        int moved = wait_on(db, (short)(POLLIN | (unsent ? POLLOUT : 0)), left);
        if (moved < 0 || (moved && !PQconsumeInput(db)))
            return; /* libpq has the error; PQgetResult reports it */
        if (moved)
            deadline = now_ms() + ms;
    }
}

PGresult *pgio_result(PGconn *db, int64_t ms, bool *cut)
{
    ready(db, ms, cut);
    return PQgetResult(db); /* never blocks now: ready, or broken */
}

static bool failed(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && st != PGRES_EMPTY_QUERY;
}

PGresult *pgio_last(PGconn *db, int sent, int64_t ms, bool *cut)
{
    if (!sent)
        return NULL;
    PGresult *keep = NULL, *r;
    while ((r = pgio_result(db, ms, cut))) {
        if (keep && failed(keep)) { /* the first error is the one the caller hears */
            PQclear(r);
        } else {
            PQclear(keep);
            keep = r;
        }
        if (PQstatus(db) != CONNECTION_OK)
            break;
    }
    return keep;
}
