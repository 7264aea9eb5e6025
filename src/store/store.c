/* The group-commit writer in front of a backend; see store.h. */
#include "store/store.h"

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

/* Same order as store_statement_t, which times them. */
typedef enum { OP_PUT, OP_DELETE, OP_QUEUE, OP_GET, OP_LIST, OP_STATS } op_kind_t;

typedef struct op {
    struct op *next;
    op_kind_t kind;
    int64_t queued_ns; /* when the loop queued it, for the round-trip figure */
    uint64_t seq; /* writes: their number; reads: the last write before them */
    engine_event_t ev;
    store_row_t row;   /* OP_PUT; strings point into str[] and doc */
    store_query_t q;   /* OP_LIST; strings point into str[] */
    const char *name;  /* OP_DELETE id, OP_QUEUE name, OP_GET id */
    bool paused;
    char *doc;         /* owned */
    store_read_cb cb;
    void *ud;
    json_t *result;
    char *error;
    char str[];
} op_t;

struct store {
    const backend_ops_t *ops;
    void *conn;
    durability_t durability;
    int efd;
    pthread_t thread;
    bool running;

    pthread_mutex_t mu; /* guards everything down to `committed` */
    pthread_cond_t cv;
    op_t *head, *tail;  /* queued for the thread */
    op_t *done;         /* processed, for store_dispatch */
    op_t *done_tail;
    bool stopping;
    uint64_t committed;
    char last_error[512];

    /* Group-commit figures: written by the store thread under mu, except
     * the round trip, which the loop thread owns. */
    store_figures_t fig;
    histogram_t roundtrip;
    histogram_t st_private[STORE_ST_COUNT]; /* store thread; copied into fig per batch */
    store_faults_t faults;
    int64_t slow_commit_ms;
    double last_commit_s; /* store thread: the COMMIT statement alone, last batch */
    int64_t fail_started_ns; /* store thread: first commit under commit_fail_ms */
    bool injected;           /* store thread: the last failure was a fault seam's */

    _Atomic bool healthy;
    _Atomic bool disk_full;
    uint64_t next_seq;        /* loop thread */
    op_t *local, *local_tail; /* loop thread: not yet handed to the store thread */
    void (*kick)(void *ud);
    void *kick_ud;
    uint64_t committed_seen;  /* loop thread's copy */
    list_node_t waiters;      /* store_waiter_t, by seq */
};

/* ---- opening, schema, recovery (before the thread starts) ---- */

static const backend_ops_t *backend_for(const char *url)
{
    static const backend_ops_t *const all[] = { &backend_sqlite };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        size_t n = strlen(all[i]->scheme);
        if (strncmp(url, all[i]->scheme, n) == 0 && strncmp(url + n, "://", 3) == 0)
            return all[i];
    }
    return NULL;
}

store_t *store_open(const char *url, durability_t durability, char *err, size_t len)
{
    const backend_ops_t *ops = backend_for(url);
    if (!ops) {
        snprintf(err, len, "JOBQ_DATABASE_URL=\"%s\" is not valid: expected sqlite://PATH", url);
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
    if (s->efd < 0 || ops->open(url, sync, &s->conn, err, len) != 0) {
        if (s->efd >= 0)
            close(s->efd);
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    histogram_init(&s->fig.commit_seconds, histogram_seconds, histogram_seconds_n);
    histogram_init(&s->fig.batch_size, histogram_sizes, histogram_sizes_n);
    histogram_init(&s->roundtrip, histogram_seconds, histogram_seconds_n);
    for (int i = 0; i < STORE_ST_COUNT; i++) {
        histogram_init(&s->st_private[i], histogram_seconds, histogram_seconds_n);
        s->fig.statement_seconds[i] = s->st_private[i];
    }
    list_init(&s->waiters);
    atomic_store(&s->healthy, true);
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
    engine_t *e;
    size_t n;
    char *err;
    size_t len;
} load_ctx_t;

static int load_doc(void *ud, const char *text, int64_t created_at, const char *id)
{
    (void)created_at;
    load_ctx_t *c = ud;
    json_error_t jerr;
    json_t *doc = json_loads(text, 0, &jerr);
    job_t *job = NULL;
    problem_t p;
    if (!doc || job_from_doc(doc, &job, &p) != ERR_OK) {
        snprintf(c->err, c->len, "stored job %s is unreadable: %s", id,
                 doc ? p.detail : jerr.text);
        json_decref(doc);
        return -1;
    }
    json_decref(doc);
    engine_load(c->e, job);
    c->n++;
    return 0;
}

static int load_queue(void *ud, const char *name, bool paused)
{
    engine_load_queue(((load_ctx_t *)ud)->e, name, paused);
    return 0;
}

int store_load(store_t *s, engine_t *e, size_t *njobs, char *err, size_t len)
{
    load_ctx_t c = { e, 0, err, len };
    err[0] = '\0';
    if (s->ops->load_queues(s->conn, load_queue, &c) != 0 ||
        s->ops->load_active(s->conn, load_doc, &c) != 0) {
        if (!err[0])
            snprintf(err, len, "cannot load jobs: %s", s->ops->errmsg(s->conn));
        return -1;
    }
    *njobs = c.n;
    return 0;
}

/* ---- the store thread ---- */

static void free_op(op_t *op)
{
    free(op->doc);
    free(op->error);
    json_decref(op->result);
    free(op);
}

typedef struct list_ctx {
    json_t *jobs;
    int limit;
    int64_t last_created;
    char last_id[JOB_NAME_MAX + 1];
    bool more;
} list_ctx_t;

static int list_doc(void *ud, const char *text, int64_t created_at, const char *id)
{
    list_ctx_t *c = ud;
    if ((int)json_array_size(c->jobs) == c->limit) {
        c->more = true;
        return 0;
    }
    json_t *doc = json_loads(text, 0, NULL);
    json_array_append_new(c->jobs, doc ? doc : json_null());
    c->last_created = created_at;
    snprintf(c->last_id, sizeof c->last_id, "%s", id);
    return 0;
}

static int get_doc(void *ud, const char *text, int64_t created_at, const char *id)
{
    (void)created_at;
    (void)id;
    json_t **out = ud;
    *out = json_loads(text, 0, NULL);
    return 0;
}

static int count_row(void *ud, const char *queue, const char *state, int64_t n)
{
    json_t *queues = ud, *q = json_object_get(queues, queue);
    if (!q) {
        q = json_object();
        json_object_set_new(queues, queue, q);
    }
    json_object_set_new(q, state, json_integer(n));
    return 0;
}

static int counter_row(void *ud, const char *name, int64_t value)
{
    json_object_set_new(ud, name, json_integer(value));
    return 0;
}

static int run_read(store_t *s, op_t *op)
{
    json_decref(op->result);
    op->result = NULL;
    int rc = -1;
    if (op->kind == OP_GET) {
        json_t *doc = NULL;
        rc = s->ops->get_job(s->conn, op->name, get_doc, &doc);
        op->result = doc ? doc : json_null();
    } else if (op->kind == OP_LIST) {
        list_ctx_t c = { .jobs = json_array(), .limit = op->q.limit };
        op->q.limit++; /* one extra row tells whether there is a next page */
        rc = s->ops->list_jobs(s->conn, &op->q, list_doc, &c);
        op->q.limit--;
        char cursor[JOB_NAME_MAX + 32];
        snprintf(cursor, sizeof cursor, "%lld:%s", (long long)c.last_created, c.last_id);
        op->result = json_pack("{s:o, s:o}", "jobs", c.jobs, "next_cursor",
                               c.more ? json_string(cursor) : json_null());
    } else {
        json_t *queues = json_object(), *totals = json_object();
        rc = s->ops->count_states(s->conn, count_row, queues);
        if (rc == 0)
            rc = s->ops->counters(s->conn, counter_row, totals);
        op->result = json_pack("{s:o, s:o}", "queues", queues, "totals", totals);
    }
    free(op->error);
    op->error = rc == 0 ? NULL : strdup(s->ops->errmsg(s->conn));
    return 0; /* a failed read fails only itself */
}

const char *store_statement_name(store_statement_t st)
{
    static const char *const names[STORE_ST_COUNT] = { "put_job", "delete_job", "put_queue",
                                                       "get_job", "list_jobs", "stats",
                                                       "commit" };
    return st < STORE_ST_COUNT ? names[st] : "?";
}

/* op kinds and statement kinds share their order up to STORE_ST_COMMIT */
static void timed(store_t *s, store_statement_t st, int64_t t0)
{
    histogram_observe(&s->st_private[st], (double)(clock_mono_ns() - t0) / 1e9);
}

static int run_write(store_t *s, op_t *op, int64_t *totals)
{
    switch (op->kind) {
    case OP_PUT:
        totals[op->ev]++;
        return s->ops->put_job(s->conn, &op->row);
    case OP_DELETE: return s->ops->delete_job(s->conn, op->name);
    case OP_QUEUE: return s->ops->put_queue(s->conn, op->name, op->paused);
    default: return run_read(s, op);
    }
}

static bool injected_failure(store_t *s)
{
    if (s->faults.commit_fail_ms <= 0)
        return false;
    int64_t now = clock_mono_ns();
    if (!s->fail_started_ns)
        s->fail_started_ns = now;
    s->injected = now - s->fail_started_ns < s->faults.commit_fail_ms * 1000000;
    return s->injected;
}

static int run_batch(store_t *s, op_t *batch)
{
    int64_t totals[ENGINE_EV_COUNT] = { 0 };
    s->injected = false;
    if (s->ops->begin(s->conn) != 0)
        return -1;
    for (op_t *op = batch; op; op = op->next) {
        int64_t t0 = clock_mono_ns();
        if (run_write(s, op, totals) != 0)
            return -1;
        timed(s, (store_statement_t)op->kind, t0);
    }
    for (int ev = 0; ev < ENGINE_EV_COUNT; ev++)
        if (ev != ENGINE_EV_UPDATED && totals[ev] &&
            s->ops->add_counter(s->conn, engine_event_name(ev), totals[ev]) != 0)
            return -1;
    if (s->faults.commit_delay_ms > 0) {
        int64_t ms = s->faults.commit_delay_ms;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
    if (injected_failure(s))
        return -1;
    int64_t t0 = clock_mono_ns();
    int rc = s->ops->commit(s->conn);
    timed(s, STORE_ST_COMMIT, t0);
    s->last_commit_s = (double)(clock_mono_ns() - t0) / 1e9;
    return rc;
}

static void set_health(store_t *s, bool ok)
{
    atomic_store(&s->healthy, ok);
    atomic_store(&s->disk_full, !ok && !s->injected && s->ops->err_is_full(s->conn));
    const char *why = ok           ? ""
                      : s->injected ? "injected fault: commit refused (JOBQ_FAULT_COMMIT_FAIL_MS)"
                                    : s->ops->errmsg(s->conn);
    pthread_mutex_lock(&s->mu);
    snprintf(s->last_error, sizeof s->last_error, "%s", why);
    pthread_mutex_unlock(&s->mu);
}

/* Retries until the batch commits: an acknowledged job must never be lost,
 * and nothing in this batch has been acknowledged yet. */
static void apply_batch(store_t *s, op_t *batch)
{
    for (int attempt = 0;; attempt++) {
        if (run_batch(s, batch) == 0) {
            if (!atomic_load(&s->healthy))
                log_info("store recovered", LOG_I("attempts", attempt + 1));
            set_health(s, true);
            return;
        }
        set_health(s, false);
        pthread_mutex_lock(&s->mu);
        s->fig.failed_commits++;
        pthread_mutex_unlock(&s->mu);
        char why[512];
        store_last_error(s, why, sizeof why);
        log_error("store commit failed; will retry", LOG_S("error", why),
                  LOG_I("attempt", attempt + 1));
        s->ops->rollback(s->conn);
        int64_t ms = attempt < 6 ? 50LL << attempt : 2000;
        struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
        nanosleep(&ts, NULL);
    }
}

static void *store_thread(void *arg)
{
    store_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->stopping)
            pthread_cond_wait(&s->cv, &s->mu);
        op_t *batch = s->head, *last = s->tail;
        s->head = s->tail = NULL;
        pthread_mutex_unlock(&s->mu);
        if (!batch)
            break; /* stopping, and everything is committed */
        int64_t t0 = clock_mono_ns();
        apply_batch(s, batch);
        double secs = (double)(clock_mono_ns() - t0) / 1e9;
        uint64_t n = 0;
        for (op_t *op = batch; op; op = op->next)
            n++;
        if (s->slow_commit_ms && secs * 1e3 > (double)s->slow_commit_ms)
            log_warn("slow commit", LOG_D("duration_ms", secs * 1e3), LOG_I("batch", n),
                     LOG_D("commit_ms", s->st_private[STORE_ST_COMMIT].count
                                            ? s->last_commit_s * 1e3 : 0));
        pthread_mutex_lock(&s->mu);
        histogram_observe(&s->fig.commit_seconds, secs);
        histogram_observe(&s->fig.batch_size, (double)n);
        memcpy(s->fig.statement_seconds, s->st_private, sizeof s->st_private);
        if (s->done_tail)
            s->done_tail->next = batch;
        else
            s->done = batch;
        s->done_tail = last;
        s->committed = last->seq;
        pthread_mutex_unlock(&s->mu);
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof one) < 0 && errno != EAGAIN)
            log_error("store notify failed", LOG_S("error", strerror(errno)));
    }
    return NULL;
}

int store_start(store_t *s, char *err, size_t len)
{
    if (pthread_create(&s->thread, NULL, store_thread, s) != 0) {
        snprintf(err, len, "cannot start the store thread");
        return -1;
    }
    s->running = true;
    return 0;
}

void store_set_faults(store_t *s, const store_faults_t *f) { s->faults = *f; }
void store_set_slow_commit_ms(store_t *s, int64_t ms) { s->slow_commit_ms = ms; }

void store_stop(store_t *s)
{
    if (!s->running)
        return;
    store_flush(s);
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
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
}

void store_close(store_t *s)
{
    if (!s)
        return;
    store_stop(s);
    store_flush(s); /* never started: free what was queued */
    for (op_t *op = s->head; op;) {
        op_t *next = op->next;
        free_op(op);
        op = next;
    }
    s->ops->close(s->conn);
    close(s->efd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ---- the loop thread's side ---- */

/* Allocates an op with copies of up to four strings (NULL stays NULL). */
static op_t *new_op(op_kind_t kind, const char *in[4], const char *out[4])
{
    size_t n = 0;
    for (int i = 0; i < 4; i++)
        n += in[i] ? strlen(in[i]) + 1 : 0;
    op_t *op = calloc(1, sizeof *op + n);
    if (!op)
        abort(); /* the write path cannot report it; see docs/architecture.md */
    op->kind = kind;
    char *p = op->str;
    for (int i = 0; i < 4; i++) {
        out[i] = NULL;
        if (!in[i])
            continue;
        size_t l = strlen(in[i]) + 1;
        memcpy(p, in[i], l);
        out[i] = p;
        p += l;
    }
    return op;
}

void store_set_kick(store_t *s, void (*kick)(void *ud), void *ud)
{
    s->kick = kick;
    s->kick_ud = ud;
}

void store_flush(store_t *s)
{
    if (!s->local)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->tail)
        s->tail->next = s->local;
    else
        s->head = s->local;
    s->tail = s->local_tail;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    s->local = s->local_tail = NULL;
}

static uint64_t submit(store_t *s, op_t *op, bool is_write)
{
    op->queued_ns = clock_mono_ns();
    op->seq = is_write ? ++s->next_seq : s->next_seq;
    bool first = !s->local;
    if (s->local_tail)
        s->local_tail->next = op;
    else
        s->local = op;
    s->local_tail = op;
    if (!s->kick)
        store_flush(s);
    else if (first)
        s->kick(s->kick_ud);
    return op->seq;
}

uint64_t store_put_job(store_t *s, const job_t *job, engine_event_t ev)
{
    const char *in[4] = { job->id, job->queue, job->type, job_state_name(job->state) }, *out[4];
    op_t *op = new_op(OP_PUT, in, out);
    op->doc = job_json(job, JOB_JSON_STORED);
    op->ev = ev;
    op->row = (store_row_t){ .id = out[0], .queue = out[1], .type = out[2], .state = out[3],
                             .priority = job->priority, .created_at = job->created_at,
                             .updated_at = job->updated_at, .run_at = job->run_at,
                             .doc = op->doc };
    return submit(s, op, true);
}

uint64_t store_delete_job(store_t *s, const char *id)
{
    const char *in[4] = { id }, *out[4];
    op_t *op = new_op(OP_DELETE, in, out);
    op->name = out[0];
    return submit(s, op, true);
}

uint64_t store_put_queue(store_t *s, const char *name, bool paused)
{
    const char *in[4] = { name }, *out[4];
    op_t *op = new_op(OP_QUEUE, in, out);
    op->name = out[0];
    op->paused = paused;
    return submit(s, op, true);
}

uint64_t store_last_seq(const store_t *s) { return s->next_seq; }

void store_when_durable(store_t *s, store_waiter_t *w, uint64_t seq)
{
    w->seq = seq;
    if (seq <= s->committed_seen || s->durability == DURABILITY_MEMORY) {
        list_init(&w->link);
        w->cb(w);
        return;
    }
    list_node_t *at = s->waiters.prev; /* keep the list sorted by seq */
    while (at != &s->waiters && LIST_ENTRY(at, store_waiter_t, link)->seq > seq)
        at = at->prev;
    list_push_back(at->next, &w->link);
}

void store_get_job(store_t *s, const char *id, store_read_cb cb, void *ud)
{
    const char *in[4] = { id }, *out[4];
    op_t *op = new_op(OP_GET, in, out);
    op->name = out[0];
    op->cb = cb;
    op->ud = ud;
    submit(s, op, false);
}

void store_list_jobs(store_t *s, const store_query_t *q, store_read_cb cb, void *ud)
{
    const char *in[4] = { q->queue, q->state, q->type, q->cursor_id }, *out[4];
    op_t *op = new_op(OP_LIST, in, out);
    op->q = *q;
    op->q.queue = out[0];
    op->q.state = out[1];
    op->q.type = out[2];
    op->q.cursor_id = out[3];
    op->cb = cb;
    op->ud = ud;
    submit(s, op, false);
}

void store_stats(store_t *s, store_read_cb cb, void *ud)
{
    const char *in[4] = { 0 }, *out[4];
    op_t *op = new_op(OP_STATS, in, out);
    op->cb = cb;
    op->ud = ud;
    submit(s, op, false);
}

int store_notify_fd(const store_t *s) { return s->efd; }

void store_dispatch(store_t *s)
{
    uint64_t n;
    while (read(s->efd, &n, sizeof n) > 0)
        ;
    pthread_mutex_lock(&s->mu);
    op_t *done = s->done;
    s->done = s->done_tail = NULL;
    s->committed_seen = s->committed;
    pthread_mutex_unlock(&s->mu);
    int64_t now = clock_mono_ns();
    while (done) {
        op_t *next = done->next;
        histogram_observe(&s->roundtrip, (double)(now - done->queued_ns) / 1e9);
        if (done->cb)
            done->cb(done->ud, done->result, done->error);
        free_op(done);
        done = next;
    }
    while (!list_empty(&s->waiters)) {
        store_waiter_t *w = LIST_ENTRY(list_first(&s->waiters), store_waiter_t, link);
        if (w->seq > s->committed_seen)
            break;
        list_remove(&w->link);
        w->cb(w);
    }
}

void store_figures(store_t *s, store_figures_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->fig;
    pthread_mutex_unlock(&s->mu);
    out->roundtrip_seconds = s->roundtrip; /* the caller is the loop thread */
}

bool store_healthy(const store_t *s) { return atomic_load(&s->healthy); }
bool store_disk_full(const store_t *s) { return atomic_load(&s->disk_full); }

void store_last_error(store_t *s, char *buf, size_t len)
{
    pthread_mutex_lock(&s->mu);
    snprintf(buf, len, "%s", s->last_error);
    pthread_mutex_unlock(&s->mu);
}
