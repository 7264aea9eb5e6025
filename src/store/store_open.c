/* The store's life: opening (the backend, the schema and its
 * migrations), recovery (the jobs and queues handed to the owner, the
 * journal's writes the database lacks), and starting and stopping its
 * threads. The loop thread's side is store.c; the store thread is
 * writer.c. See store.h. */
#include "store/store_internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "util/clock.h"
#include "util/log.h"
#include "util/url.h"
/* ---- opening, schema, recovery (before the thread starts) ---- */

/* url begins "scheme://" (scheme may be NULL: no). */
static bool has_scheme(const char *url, const char *scheme)
{
    size_t n = scheme ? strlen(scheme) : 0;
    return n && strncmp(url, scheme, n) == 0 && strncmp(url + n, "://", 3) == 0;
}

static const backend_ops_t *backend_for(const char *url)
{
    static const backend_ops_t *const all[] = { &backend_sqlite, &backend_postgres };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (has_scheme(url, all[i]->scheme) || has_scheme(url, all[i]->alias))
            return all[i];
    return NULL;
}

static store_t *open_as(const char *url, durability_t durability, const backend_node_t *node,
                        char *err, size_t len)
{
    const backend_ops_t *ops = backend_for(url);
    if (!ops) {
        char shown[1100];
        snprintf(err, len,
                 "JOBQ_DATABASE_URL=\"%s\" is not valid: expected sqlite://PATH or "
                 "postgres://USER[:PASSWORD]@HOST[:PORT]/DB",
                 url_redact(url, shown, sizeof shown));
        return NULL;
    }
    store_t *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, len, "out of memory");
        return NULL;
    }
    backend_sync_t sync = durability == DURABILITY_FSYNC ? BACKEND_SYNC_FULL
                          : durability == DURABILITY_OS  ? BACKEND_SYNC_OS
                                                         : BACKEND_SYNC_OFF;
    s->ops = ops;
    s->durability = durability;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0 || ops->open(url, sync, node, &s->conn, err, len) != 0) {
        if (s->efd >= 0)
            close(s->efd);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca; /* the writer's idle wait times out on the monotonic clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&s->read_cv, NULL);
    s->url = strdup(url);
    histogram_init(&s->fig.commit_seconds, histogram_seconds, histogram_seconds_n);
    histogram_init(&s->fig.batch_size, histogram_sizes, histogram_sizes_n);
    histogram_init(&s->roundtrip, histogram_seconds, histogram_seconds_n);
    for (int i = 0; i < STORE_ST_COUNT; i++) {
        histogram_init(&s->st_private[i], histogram_seconds, histogram_seconds_n);
        s->fig.statement_seconds[i] = s->st_private[i];
    }
    list_init(&s->waiters);
    hmap_init(&s->pending_ids);
    s->compact_ms = 250;
    bloom_init(&s->ids_written, 1u << 16);
    atomic_store(&s->healthy, true);
    char path[1100];
    if (ops->journal_path && ops->journal_path(s->conn, path, sizeof path) == 0 &&
        !(s->journal = journal_open(path, durability == DURABILITY_FSYNC, err, len))) {
        store_close(s);
        return NULL;
    }
    return s;
}

store_t *store_open(const char *url, durability_t durability, char *err, size_t len)
{
    return open_as(url, durability, NULL, err, len);
}

store_t *store_open_cluster(const char *url, durability_t durability, const char *node_name,
                            int64_t ttl_ms, char *err, size_t len)
{
    backend_node_t node = { node_name, ttl_ms };
    store_t *s = open_as(url, durability, &node, err, len);
    if (s)
        store_cluster_init(s, ttl_ms);
    return s;
}

int store_schema_status(store_t *s, int *current, int *latest, char *err, size_t len)
{
    if (s->ops->schema_version(s->conn, current, latest) != 0) {
        snprintf(err, len, "cannot read schema version: %s", s->ops->errmsg(s->conn));
        return -1;
    }
    return 0;
}

int store_check_schema(store_t *s, char *err, size_t len)
{
    int cur, latest;
    if (store_schema_status(s, &cur, &latest, err, len))
        return -1;
    if (cur > latest) {
        snprintf(err, len,
                 "the database is at schema version %d but this jobq knows only up to %d: "
                 "upgrade jobq, or use a database written by this version",
                 cur, latest);
        return -1;
    }
    if (cur < latest) {
        snprintf(err, len,
                 "the database is at schema version %d, this jobq needs %d: run `jobq migrate` "
                 "or set JOBQ_AUTO_MIGRATE=true",
                 cur, latest);
        return -1;
    }
    return 0;
}

int store_migrate(store_t *s, char *err, size_t len)
{
    int cur, latest;
    if (store_schema_status(s, &cur, &latest, err, len))
        return -1;
    if (cur > latest)
        return store_check_schema(s, err, len);
    if (cur < latest && s->ops->migrate(s->conn) != 0) {
        snprintf(err, len, "%s", s->ops->errmsg(s->conn));
        return -1;
    }
    if (cur < latest)
        log_info("schema migrated", LOG_I("from", cur), LOG_I("to", latest));
    return 0;
}

typedef struct load_ctx {
    store_t *s;
    const store_recovery_t *to;
    size_t n;
    char *err;
    size_t len;
} load_ctx_t;

/* One bad row never stops recovery: it is quarantined and reported. */
static int load_doc(void *ud, const store_doc_t *d)
{
    load_ctx_t *c = ud;
    job_t *job = NULL;
    problem_t p;
    if (store_doc_job(d, &job, &p) != ERR_OK) {
        log_error("stored job is unreadable: quarantined, not loaded", LOG_S("job_id", d->id),
                  LOG_S("error", p.detail));
        store_quarantine_note(c->s, d->id, p.detail);
        return 0;
    }
    c->to->job(c->to->ud, job);
    c->n++;
    return 0;
}

static int load_queue(void *ud, const char *name, bool paused)
{
    load_ctx_t *c = ud;
    c->to->queue(c->to->ud, name, paused);
    return 0;
}

typedef struct replay_ctx {
    op_t *head, *tail;
    size_t n, bad;
} replay_ctx_t;

static int replay_record(void *ud, uint8_t kind, const uint8_t *p, size_t n)
{
    replay_ctx_t *c = ud;
    op_t *op = store_record_read(kind, p, n);
    if (!op) { /* its crc held, so this is no torn write: skip it, say so */
        c->bad++;
        return 0;
    }
    store_ops_append(&c->head, &c->tail, op, op);
    c->n++;
    return 0;
}

/* Writes the journal holds that the database lacks (a crash, kill -9)
 * go into the database before anything is loaded; then a new generation
 * starts. Runs once, before the store thread. */
static int recover_journal(store_t *s, char *err, size_t len)
{
    if (!s->journal || s->journal_ready)
        return 0;
    uint64_t applied = 0, gen = 0;
    replay_ctx_t c = { 0 };
    if (s->ops->journal_applied(s->conn, &applied) != 0) {
        snprintf(err, len, "cannot read the journal state: %s", s->ops->errmsg(s->conn));
        return -1;
    }
    int64_t t0 = clock_mono_ns();
    int gens = journal_replay(s->journal, applied, &gen, replay_record, &c, err, len);
    if (gens < 0) {
        store_free_ops(c.head);
        return -1;
    }
    if (gen) {
        store_apply(s, c.head, false, gen);
        store_free_ops(c.head);
        log_info("journal replayed", LOG_I("generation", gen), LOG_I("generations", gens),
                 LOG_I("writes", c.n),
                 LOG_I("unreadable", c.bad),
                 LOG_D("ms", (double)(clock_mono_ns() - t0) / 1e6));
        if (c.bad)
            log_error("journal records that do not decode were skipped", LOG_I("count", c.bad));
    }
    journal_reset(s->journal, (gen > applied ? gen : applied) + 1);
    s->journal_ready = true;
    return 0;
}

int store_load(store_t *s, const store_recovery_t *to, size_t *njobs, char *err, size_t len)
{
    load_ctx_t c = { s, to, 0, err, len };
    err[0] = '\0';
    if (recover_journal(s, err, len) != 0)
        return -1;
    /* In cluster mode the jobs are the cluster's: a node holds only what
     * it claims. */
    if (s->ops->load_queues(s->conn, load_queue, &c) != 0 ||
        (!s->cluster && s->ops->load_active(s->conn, load_doc, &c) != 0)) {
        if (!err[0])
            snprintf(err, len, "cannot load jobs: %s", s->ops->errmsg(s->conn));
        return -1;
    }
    *njobs = c.n;
    return 0;
}

int store_start(store_t *s, char *err, size_t len)
{
    if (recover_journal(s, err, len) != 0)
        return -1;
    if (pthread_create(&s->thread, NULL, store_writer_main, s) != 0) {
        snprintf(err, len, "cannot start the store thread");
        return -1;
    }
    s->running = true;
    if (store_readers_start(s, err, len) != 0 || store_wake_start(s, err, len) != 0)
        return -1;
    store_scan_ids(s);
    return 0;
}

void store_set_faults(store_t *s, const store_faults_t *f) { s->faults = *f; }
void store_set_slow_commit_ms(store_t *s, int64_t ms) { s->slow_commit_ms = ms; }
void store_set_compact_interval_ms(store_t *s, int64_t ms) { s->compact_ms = ms > 0 ? ms : 250; }

/* The writer's end, or false once its commits have failed for give_up_ms
 * without a break: it retries for ever (nothing may be dropped while jobq
 * runs), so a stop must not wait on it for ever. */
static bool writer_ends(store_t *s, int64_t give_up_ms)
{
    int64_t failing_since = 0;
    while (give_up_ms > 0 && !atomic_load(&s->writer_exited)) {
        int64_t now = clock_mono_ns();
        if (atomic_load(&s->healthy))
            failing_since = 0;
        else if (!failing_since)
            failing_since = now;
        else if (now - failing_since > give_up_ms * 1000000)
            return false;
        nanosleep(&(struct timespec){ 0, 50 * 1000000 }, NULL);
    }
    return true;
}

int store_stop(store_t *s, int64_t give_up_ms)
{
    if (!s->running)
        return 0;
    store_wake_stop(s);
    store_flush(s);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!writer_ends(s, give_up_ms)) {
        char why[512];
        store_last_error(s, why, sizeof why);
        log_error("the store kept failing while stopping; giving up on what it had not "
                  "committed (nothing of it was acknowledged but what its journal holds)",
                  LOG_S("error", why), LOG_I("waited_ms", give_up_ms));
        return -1;
    }
    pthread_join(s->thread, NULL);
    store_readers_stop(s);
    s->running = false;
    store_figures_t f;
    store_figures(s, &f);
    uint64_t batches = f.commit_seconds.count;
    log_info("store stopped", LOG_I("batches", batches), LOG_D("ops", f.batch_size.sum),
             LOG_D("max_batch", f.batch_size.max),
             LOG_D("mean_batch", batches ? f.batch_size.sum / (double)batches : 0),
             LOG_D("mean_commit_ms", batches ? f.commit_seconds.sum * 1e3 / (double)batches : 0),
             LOG_D("mean_roundtrip_ms", f.roundtrip_seconds.count
                                            ? f.roundtrip_seconds.sum * 1e3 /
                                                  (double)f.roundtrip_seconds.count
                                            : 0));
    store_dispatch(s);
    return 0;
}

void store_close(store_t *s)
{
    if (!s)
        return;
    (void)store_stop(s, 0); /* without a give-up it always stops */
    store_flush(s); /* never started: free what was queued */
    store_free_ops(s->head);
    store_free_ops(s->rhead);
    store_free_ops(s->pending); /* the database was lost: they stay journaled */
    journal_close(s->journal);
    hmap_free(&s->pending_ids);
    store_cluster_free(s);
    bloom_free(&s->ids_written);
    if (s->ids_stored) {
        bloom_free(s->ids_stored);
        free(s->ids_stored);
    }
    free(s->url);
    free(s->quarantine);
    pthread_cond_destroy(&s->read_cv);
    s->ops->close(s->conn);
    close(s->efd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
