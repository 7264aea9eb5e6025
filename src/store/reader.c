/*
 * The readers: a small pool of threads, each with its own read-only
 * connection, that run get/list/stats off the store thread, so a slow
 * query delays neither commits nor the loop. A read waits until every
 * write queued before it is in the database (journaled writes wait for a
 * compaction, which a waiting read asks for: writer.c), so it sees them
 * all, exactly as if it had run between the writer's operations.
 *
 * Reader 0 takes only point lookups (a job by id: idempotent enqueues and
 * reads of finished jobs), so they never queue behind a slow list or stats
 * scan; the others take anything, point lookups first.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/store_internal.h"
#include "util/clock.h"
#include "util/jsonb.h"
#include "util/log.h"

typedef struct list_ctx {
    const store_query_t *q;
    json_t *jobs;
    int limit, scanned;
    size_t bytes; /* of the stored forms of the jobs in the page */
    bool scans; /* store_query_scans(q) */
    int64_t last_created;
    char last_id[JOB_NAME_MAX + 1];
    bool more, done;
} list_ctx_t;

bool store_query_scans(const store_query_t *q)
{
    return q->text || q->breaker_key || q->worker || q->finished_from || q->finished_to;
}

static bool has_text(json_t *v, const char *text)
{
    if (!v || json_is_null(v))
        return false;
    char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    bool found = dump && strcasestr(dump, text);
    free(dump);
    return found;
}

static bool text_matches(json_t *doc, const char *text)
{
    if (has_text(json_object_get(doc, "args"), text) ||
        has_text(json_object_get(doc, "result"), text))
        return true;
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "errors"), i, e) {
        const char *m = json_string_value(json_object_get(e, "message"));
        if (m && strcasestr(m, text))
            return true;
    }
    return false;
}

static bool same_string(json_t *v, const char *want)
{
    const char *s = json_string_value(v);
    return s && strcmp(s, want) == 0;
}

/* The filters a stored document alone can answer (store_query_scans). */
static bool doc_matches(json_t *doc, const store_query_t *q)
{
    if (!doc)
        return false;
    if (q->breaker_key && !same_string(json_object_get(doc, "breaker_key"), q->breaker_key))
        return false;
    if (q->worker && !same_string(json_object_get(json_object_get(doc, "lease"), "worker"),
                                  q->worker))
        return false;
    if (q->finished_from || q->finished_to) {
        int64_t at = 0;
        const char *t = json_string_value(json_object_get(doc, "finished_at"));
        if (!t || clock_parse_rfc3339(t, &at) != 0 || (q->finished_from && at < q->finished_from) ||
            (q->finished_to && at >= q->finished_to))
            return false;
    }
    return !q->text || text_matches(doc, q->text);
}

/* Without scanning filters every row is a match and the query's limit + 1
 * rows come (the extra one says whether there is a next page). With them,
 * STORE_LIST_SCAN + 1 rows come; the page fills from the matches, and the
 * cursor is the last row examined, so the next call resumes there. */
static int list_doc(void *ud, const store_doc_t *d)
{
    list_ctx_t *c = ud;
    if (c->done)
        return 0;
    size_t n = json_array_size(c->jobs);
    if ((int)n == c->limit || (c->scans && c->scanned == STORE_LIST_SCAN) ||
        (n && c->bytes + d->len > STORE_LIST_BYTES)) {
        c->more = c->done = true;
        return 0;
    }
    c->scanned++;
    c->last_created = d->created_at;
    snprintf(c->last_id, sizeof c->last_id, "%s", d->id);
    json_t *doc = store_doc_json(d);
    if (c->scans && !doc_matches(doc, c->q)) {
        json_decref(doc);
        return 0;
    }
    c->bytes += d->len;
    json_array_append_new(c->jobs, doc ? doc : json_null());
    return 0;
}

typedef struct got_doc {
    json_t *doc;
    size_t len; /* its stored form's */
    int64_t token; /* cluster mode: the row's claim token, for store_cluster_done */
} got_doc_t;

static int get_doc(void *ud, const store_doc_t *d)
{
    got_doc_t *out = ud;
    out->doc = store_doc_json(d);
    out->len = d->len;
    out->token = d->token;
    return 0;
}

/* OP_STATS: the counts of the first STORE_STATS_QUEUES queues (rows come
 * in queue order), and of every queue by state. */
typedef struct counts_ctx {
    json_t *queues, *states, *oldest;
    size_t nqueues, nall; /* listed; every queue counted */
    char last[JOB_NAME_MAX + 1]; /* the queue of the row before (rows come by queue) */
    bool truncated;
} counts_ctx_t;

static int count_row(void *ud, const char *queue, const char *state, int64_t n)
{
    counts_ctx_t *x = ud;
    json_t *q = json_object_get(x->queues, queue);
    json_int_t had = json_integer_value(json_object_get(x->states, state));
    if (json_object_set_new(x->states, state, json_integer(had + n)) != 0)
        return -1;
    if (!x->nall || strncmp(x->last, queue, sizeof x->last) != 0) {
        x->nall++;
        snprintf(x->last, sizeof x->last, "%s", queue);
    }
    if (!q && x->nqueues == STORE_STATS_QUEUES) {
        x->truncated = true;
        return 0;
    }
    if (!q) {
        if (!(q = json_object()) || json_object_set_new(x->queues, queue, q) != 0)
            return -1;
        x->nqueues++;
    }
    return json_object_set_new(q, state, json_integer(n));
}

/* Cluster mode's oldest due job of each queue listed. */
static int oldest_row(void *ud, const char *name, int64_t value)
{
    const counts_ctx_t *x = ud;
    if (!json_object_get(x->queues, name))
        return 0;
    return json_object_set_new(x->oldest, name, json_integer(value));
}

static int counter_row(void *ud, const char *name, int64_t value)
{
    json_object_set_new(ud, name, json_integer(value));
    return 0;
}

static int add_id(void *ud, const char *id)
{
    bloom_add(ud, id);
    return 0;
}

/* The ids the database holds, for store_may_hold. */
static int scan_ids(store_t *s, void *conn, op_t *op)
{
    if (!(op->ids = malloc(sizeof *op->ids)))
        return -1;
    bloom_init(op->ids, 1u << 16);
    int rc = s->ops->scan_ids(conn, add_id, op->ids);
    if (rc != 0 || op->ids->saturated) {
        bloom_free(op->ids);
        free(op->ids);
        op->ids = NULL;
    }
    return rc;
}

static int breaker_row(void *ud, const backend_breaker_t *b)
{
    bool half_open = b->probe_at <= b->now;
    json_t *row = json_pack("{s:s, s:s, s:o, s:o, s:I, s:o}", "key", b->key, "state",
                            half_open ? "half_open" : "open", "opened_at",
                            clock_json(b->opened_at), "next_probe_at",
                            half_open ? json_null() : clock_json(b->probe_at), "cooldown_ms",
                            (json_int_t)b->cooldown_ms, "probe_node",
                            b->probe_node && b->probe_until > b->now
                                ? json_integer(b->probe_node) : json_null());
    return row && json_array_append_new(ud, row) == 0 ? 0 : -1;
}

static int read_stats(store_t *s, void *conn, op_t *op)
{
    counts_ctx_t x = { .queues = json_object(), .states = json_object() };
    json_t *totals = json_object();
    int rc = s->ops->count_states(conn, count_row, &x);
    if (rc == 0)
        rc = s->ops->counters(conn, counter_row, totals);
    op->result = json_pack("{s:o, s:o, s:o, s:b, s:I}", "queues", x.queues, "states",
                           x.states, "totals", totals, "queues_truncated", x.truncated,
                           "queue_count", (json_int_t)x.nall);
    if (rc == 0 && s->cluster && s->ops->oldest_ready && op->result) {
        x.oldest = json_object();
        rc = s->ops->oldest_ready(conn, clock_now_ms(), oldest_row, &x);
        json_object_set_new(op->result, "oldest_ready_at", x.oldest);
    }
    return rc;
}

/* OP_GET: each id's document or null, in order, until max_bytes of
 * stored forms were read (store_get_jobs). */
static int get_docs(store_t *s, void *conn, op_t *op, bool *oom)
{
    json_t *docs = json_array();
    const char *id = op->name;
    size_t bytes = 0;
    int rc = 0;
    free(op->tokens);
    op->tokens = s->cluster ? malloc(op->nids * sizeof *op->tokens) : NULL;
    for (size_t i = 0; op->tokens && i < op->nids; i++)
        op->tokens[i] = BACKEND_TOKEN_UNKNOWN; /* ids not read stay so */
    for (size_t i = 0; i < op->nids && rc == 0 && (i == 0 || bytes < op->max_bytes);
         i++, id += strlen(id) + 1) {
        got_doc_t got = { NULL, 0, BACKEND_TOKEN_UNKNOWN };
        int found = store_pending_doc(s, id, &got.doc, &got.len);
        if (found == 0)
            rc = s->ops->get_job(conn, id, get_doc, &got);
        *oom = *oom || found < 0;
        rc = *oom ? -1 : rc;
        if (op->tokens)
            op->tokens[i] = got.token;
        json_array_append_new(docs, got.doc ? got.doc : json_null());
        bytes += got.len;
    }
    op->result = op->many ? docs : json_incref(json_array_get(docs, 0));
    if (!op->many)
        json_decref(docs);
    return rc;
}

static void run_read(store_t *s, void *conn, op_t *op)
{
    json_decref(op->result);
    op->result = NULL;
    int rc = -1;
    bool oom = false;
    if (op->kind == OP_GET) {
        rc = get_docs(s, conn, op, &oom);
    } else if (op->kind == OP_IDS) {
        rc = scan_ids(s, conn, op);
    } else if (op->kind == OP_BREAKERS) {
        json_t *list = json_array();
        rc = s->ops->breakers ? s->ops->breakers(conn, breaker_row, list) : 0;
        op->result = json_pack("{s:o}", "breakers", list);
    } else if (op->kind == OP_LIST) {
        list_ctx_t c = { .q = &op->q, .jobs = json_array(), .limit = op->q.limit,
                         .scans = store_query_scans(&op->q) };
        int limit = op->q.limit;
        op->q.limit = (c.scans ? STORE_LIST_SCAN : limit) + 1;
        rc = s->ops->list_jobs(conn, &op->q, list_doc, &c);
        op->q.limit = limit;
        char cursor[JOB_NAME_MAX + 32];
        snprintf(cursor, sizeof cursor, "%lld:%s", (long long)c.last_created, c.last_id);
        op->result = json_pack("{s:o, s:o}", "jobs", c.jobs, "next_cursor",
                               c.more ? json_string(cursor) : json_null());
        if (op->result && c.scans)
            json_object_set_new(op->result, "scanned", json_integer(c.scanned));
    } else {
        rc = read_stats(s, conn, op);
    }
    free(op->error);
    op->error = rc == 0 ? NULL : strdup(oom ? "out of memory" : s->ops->errmsg(conn));
}


/* The last write a read must wait for before it runs. A point lookup sees
 * every write handed to the writer through the index of unapplied writes
 * (store_pending_doc), so it waits for nothing; the others read the
 * database alone. Called with mu. */
static uint64_t ready_upto(const store_t *s, const op_t *op)
{
    bool indexed = op->kind == OP_GET && s->applied >= s->index_gap_seq;
    return indexed ? op->seq : s->applied;
}

/* The oldest read this reader may run: a point lookup if there is one,
 * else (unless points_only) any. A read that waits for the database makes
 * the writer compact now (writer.c). Called with mu. */
static op_t **eligible(store_t *s, bool points_only)
{
    op_t **any = NULL;
    bool failing = !atomic_load(&s->healthy);
    for (op_t **at = &s->rhead; *at; at = &(*at)->next) {
        op_t *op = *at;
        if (op->seq > ready_upto(s, op)) {
            if (failing)
                return at; /* answered at once with the store's error (reader_main) */
            if (op->seq > s->applied && s->read_wants < op->seq) {
                s->read_wants = op->seq;
                pthread_cond_signal(&s->cv);
            }
            continue;
        }
        if (op->kind == OP_GET)
            return at;
        if (!points_only && !any)
            any = at;
    }
    return any;
}

/* Takes a read (see eligible); NULL when stopping and nothing is left.
 * Called with s->mu held. */
static op_t *next_read(store_t *s, bool points_only)
{
    for (;;) {
        op_t **at = eligible(s, points_only);
        if (at) {
            op_t *op = *at;
            op->taken = true;
            *at = op->next;
            if (s->rtail == op) {
                s->rtail = NULL;
                for (op_t *p = s->rhead; p; p = p->next)
                    s->rtail = p;
            }
            op->next = NULL;
            if (s->stopping && !s->rhead) /* the others may be waiting to leave */
                pthread_cond_broadcast(&s->read_cv);
            return op;
        }
        if (!s->rhead && s->stopping)
            return NULL;
        pthread_cond_wait(&s->read_cv, &s->mu);
    }
}

static void fail_read(store_t *s, op_t *op)
{
    char why[sizeof s->last_error + 32];
    pthread_mutex_lock(&s->mu);
    snprintf(why, sizeof why, "the store cannot commit: %s", s->last_error);
    pthread_mutex_unlock(&s->mu);
    free(op->error);
    op->error = strdup(why);
}

static void hand_back(store_t *s, op_t *op, double secs)
{
    pthread_mutex_lock(&s->mu);
    s->reads_queued--;
    if (op->kind < OP_IDS)
        histogram_observe(&s->fig.statement_seconds[(store_statement_t)op->kind], secs);
    store_done_append(s, op, op);
    pthread_mutex_unlock(&s->mu);
    store_notify(s);
}

static void *reader_main(void *arg)
{
    store_reader_t *r = arg;
    store_t *s = r->store;
    pthread_mutex_lock(&s->mu);
    op_t *op;
    bool points_only = r == &s->readers[0];
    while ((op = next_read(s, points_only))) {
        pthread_mutex_unlock(&s->mu);
        if (s->faults.read_delay_ms > 0 && op->kind != OP_GET) {
            int64_t ms = s->faults.read_delay_ms;
            struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
            nanosleep(&ts, NULL);
        }
        int64_t t0 = clock_mono_ns();
        pthread_mutex_lock(&s->mu);
        bool stuck = op->seq > ready_upto(s, op); /* see eligible() */
        pthread_mutex_unlock(&s->mu);
        if (stuck)
            fail_read(s, op);
        else
            run_read(s, r->conn, op);
        hand_back(s, op, (double)(clock_mono_ns() - t0) / 1e9);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int store_readers_start(store_t *s, char *err, size_t len)
{
    for (int i = 0; i < STORE_READERS; i++) {
        store_reader_t *r = &s->readers[i];
        r->store = s;
        if (s->ops->open_reader(s->url, &r->conn, err, len) != 0)
            return -1;
        if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
            s->ops->close(r->conn);
            r->conn = NULL;
            snprintf(err, len, "cannot start a reader thread");
            return -1;
        }
        r->running = true;
    }
    return 0;
}

/* After the writer stopped: every read left can run, then the readers go. */
void store_readers_stop(store_t *s)
{
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->read_cv);
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < STORE_READERS; i++) {
        store_reader_t *r = &s->readers[i];
        if (r->running)
            pthread_join(r->thread, NULL);
        r->running = false;
        if (r->conn)
            s->ops->close(r->conn);
        r->conn = NULL;
    }
}
