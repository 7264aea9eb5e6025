/*
 * The yardstick of issue 13: a plain PostgreSQL queue, one transaction per
 * operation, the way an application without jobq would build one. P
 * producer and C consumer threads, one connection each; a producer
 * INSERTs a job of `payload` bytes; a consumer takes the oldest queued job
 * of the highest priority (UPDATE ... WHERE id = (SELECT ... FOR UPDATE
 * SKIP LOCKED LIMIT 1) RETURNING) and then marks it done, two more
 * transactions: three per job, as jobq's enqueue, lease and complete.
 * An empty queue is polled every millisecond. Prints what loadgen prints.
 *
 * Usage: pgqueue --url postgres://... [--producers 4] [--consumers 4]
 *                [--jobs 20000] [--payload 90] [--max-seconds 120]
 */
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *url;
static int producers = 4, consumers = 4, payload = 90;
static long jobs = 20000;
static double max_seconds = 120;
static atomic_long claimed, enqueued, done;
static double t0;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static PGconn *connect_db(void)
{
    PGconn *c = PQconnectdb(url);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "pgqueue: %s", PQerrorMessage(c));
        exit(1);
    }
    return c;
}

static void must(PGconn *c, PGresult *r, const char *what)
{
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "pgqueue: %s: %s", what, PQerrorMessage(c));
        exit(1);
    }
}

static void *produce(void *arg)
{
    (void)arg;
    PGconn *c = connect_db();
    char *body = malloc((size_t)payload + 1);
    memset(body, 'x', (size_t)payload);
    body[payload] = '\0';
    const char *vals[1] = { body };
    while (atomic_fetch_add(&claimed, 1) < jobs && now() - t0 < max_seconds) {
        PGresult *r = PQexecParams(c, "INSERT INTO q(priority, state, payload)"
                                      " VALUES(2, 'queued', $1)", 1, NULL, vals, NULL, NULL, 0);
        must(c, r, "insert");
        PQclear(r);
        atomic_fetch_add(&enqueued, 1);
    }
    free(body);
    PQfinish(c);
    return NULL;
}

static void *consume(void *arg)
{
    (void)arg;
    PGconn *c = connect_db();
    while (atomic_load(&done) < jobs && now() - t0 < max_seconds) {
        PGresult *r = PQexec(c, "UPDATE q SET state='running' WHERE id = (SELECT id FROM q"
                                " WHERE state='queued' ORDER BY priority, id"
                                " FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id, payload");
        must(c, r, "take");
        if (PQntuples(r) == 0) {
            PQclear(r);
            usleep(1000);
            continue;
        }
        const char *vals[1] = { PQgetvalue(r, 0, 0) };
        PGresult *f = PQexecParams(c, "UPDATE q SET state='done' WHERE id=$1", 1, NULL, vals,
                                   NULL, NULL, 0);
        must(c, f, "finish");
        PQclear(f);
        PQclear(r);
        atomic_fetch_add(&done, 1);
    }
    PQfinish(c);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--url")) url = argv[i + 1];
        else if (!strcmp(argv[i], "--producers")) producers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--consumers")) consumers = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--jobs")) jobs = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--payload")) payload = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-seconds")) max_seconds = atof(argv[i + 1]);
        else return fprintf(stderr, "pgqueue: unknown option %s\n", argv[i]), 2;
    }
    if (!url || producers < 1 || consumers < 0 || jobs < 1 || payload < 0)
        return fprintf(stderr, "pgqueue: --url is required\n"), 2;
    PGconn *c = connect_db();
    PGresult *r = PQexec(c, "DROP TABLE IF EXISTS q; CREATE TABLE q (id bigserial PRIMARY KEY,"
                            " priority int NOT NULL, state text NOT NULL, payload text NOT NULL);"
                            " CREATE INDEX q_ready ON q(priority, id) WHERE state='queued'");
    must(c, r, "schema");
    PQclear(r);
    PQfinish(c);
    pthread_t th[256];
    int n = 0;
    t0 = now();
    for (int i = 0; i < producers && n < 256; i++)
        pthread_create(&th[n++], NULL, produce, NULL);
    for (int i = 0; i < consumers && n < 256; i++)
        pthread_create(&th[n++], NULL, consume, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
    double secs = now() - t0;
    long made = atomic_load(&enqueued), finished = consumers ? atomic_load(&done) : made;
    printf("producers=%d consumers=%d enqueued=%ld completed=%ld seconds=%.2f\n", producers,
           consumers, made, finished, secs);
    printf("full_cycle_jobs_per_s=%.0f\n", (double)finished / secs);
    return 0;
}
