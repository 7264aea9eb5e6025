/* Wake-ups between cluster nodes for the PostgreSQL backend (backend.h:
 * wake_*): LISTEN and pg_notify() on a session of their own. Never inside
 * a data transaction: PostgreSQL serialises every notifying commit on one
 * lock, which would make every batch of every node wait on every other. */
#include <stdio.h>
#include <stdlib.h>

#include "store/postgres_internal.h"

#define WAKE_CHANNEL "jobq_ready"
#define WAKE_WAIT_MS 5000 /* a silent server is given up this soon (postgres_io.c) */

typedef struct pg_wake {
    PGconn *db;
    int me; /* this session's backend pid: its own announcements come back too */
} pg_wake_t;

void pg_wake_close(void *w)
{
    pg_wake_t *k = w;
    if (!k)
        return;
    PQfinish(k->db);
    free(k);
}

void *pg_wake_open(const char *url, char *err, size_t len)
{
    pg_wake_t *k = calloc(1, sizeof *k);
    if (!k) {
        snprintf(err, len, "out of memory");
        return NULL;
    }
    if (!(k->db = pg_connect(url, true, err, len))) {
        free(k);
        return NULL;
    }
    bool cut = false;
    PGresult *r = pgio_last(k->db, PQsendQuery(k->db, "LISTEN " WAKE_CHANNEL), WAKE_WAIT_MS, &cut);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, len, "LISTEN: %s", cut ? "no answer" : r ? PQresultErrorMessage(r)
                                                                : PQerrorMessage(k->db));
    PQclear(r);
    if (!ok) {
        pg_wake_close(k);
        return NULL;
    }
    k->me = PQbackendPID(k->db);
    return k;
}

int pg_wake_fd(void *w) { return PQsocket(((pg_wake_t *)w)->db); }

int pg_wake_read(void *w, void (*cb)(void *ud, const char *payload), void *ud)
{
    pg_wake_t *k = w;
    if (!PQconsumeInput(k->db))
        return -1;
    PGnotify *n;
    while ((n = PQnotifies(k->db))) {
        if (n->be_pid != k->me)
            cb(ud, n->extra);
        PQfreemem(n);
    }
    return PQstatus(k->db) == CONNECTION_OK ? 0 : -1;
}

int pg_wake_send(void *w, const char *payload)
{
    pg_wake_t *k = w;
    const char *vals[1] = { payload };
    bool cut = false;
    PGresult *r = pgio_last(k->db,
                            PQsendQueryParams(k->db, "SELECT pg_notify('" WAKE_CHANNEL "', $1)", 1,
                                              NULL, vals, NULL, NULL, 0),
                            WAKE_WAIT_MS, &cut);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
    PQclear(r);
    return rc;
}
