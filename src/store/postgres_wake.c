/* Wake-ups between cluster nodes for the PostgreSQL backend (backend.h:
 * wake_*): LISTEN and pg_notify() on a session of their own. Never inside
 * a data transaction: PostgreSQL serialises every notifying commit on one
 * lock, which would make every batch of every node wait on every other. */
#include <stdio.h>
#include <stdlib.h>

#include "store/postgres_internal.h"

#define WAKE_CHANNEL "jobq_ready"

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
    PGresult *r = PQexec(k->db, "LISTEN " WAKE_CHANNEL);
    bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, len, "LISTEN: %s", PQresultErrorMessage(r));
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
    PGresult *r = PQexecParams(k->db, "SELECT pg_notify('" WAKE_CHANNEL "', $1)", 1, NULL, vals,
                               NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_TUPLES_OK ? 0 : -1;
    PQclear(r);
    return rc;
}
