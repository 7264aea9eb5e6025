/* Cluster mode (store.h): the claim tokens of the jobs this node holds,
 * the claims and node beats that travel with the writes, and the writes
 * the database refused. The loop thread's side keeps the tokens; the store
 * thread runs claims and beats in the batch's transaction (store_run_*). */
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"
#include "util/check.h"
#include "util/clock.h"
#include "util/grow.h"
#include "util/log.h"
#include "util/randid.h"

void store_cluster_init(store_t *s, int64_t ttl_ms)
{
    /* Origins: 31 random bits of this process, then a count. */
    s->origin_base = (uint64_t)(randid_unit() * 2147483648.0) << 32;
    s->cluster = true;
    s->node_ttl_ns = ttl_ms * 1000000;
    hmap_init(&s->tokens);
    hmap_init(&s->free_tokens);
}

bool store_clustered(const store_t *s) { return s->cluster; }

void store_set_refused(store_t *s, void (*cb)(void *ud, const char *id), void *ud)
{
    s->refused_cb = cb;
    s->refused_ud = ud;
}

void store_set_woken(store_t *s, void (*cb)(void *ud, const char *const *queues, int n),
                     void *ud)
{
    CHECK(!s->running);
    s->woken_cb = cb;
    s->woken_ud = ud;
}

/* Tokens live in the map as the pointer's bits: a token is never 0. */
static int64_t token_of(store_t *s, const char *id)
{
    return (int64_t)(intptr_t)hmap_get(&s->tokens, id);
}

static void free_token_forget(store_t *s, const char *id);

static void token_set(store_t *s, const char *id, int64_t token)
{
    free_token_forget(s, id);
    if (hmap_put(&s->tokens, id, (void *)(intptr_t)token) != 0)
        log_error("out of memory: a claimed job's writes will be refused", LOG_S("id", id));
}

/* An entry of free_tokens, which owns it (and the key, its id). */
typedef struct free_token {
    int64_t token;
    char id[];
} free_token_t;

static int64_t free_token_of(store_t *s, const char *id)
{
    const free_token_t *f = hmap_get(&s->free_tokens, id);
    return f ? f->token : BACKEND_TOKEN_UNKNOWN;
}

static void free_token_forget(store_t *s, const char *id)
{
    free(hmap_del(&s->free_tokens, id));
}

static void free_tokens_clear(store_t *s)
{
    hmap_free_values(&s->free_tokens, free);
    hmap_init(&s->free_tokens);
}

/* Out of memory, the change goes unconditioned on the token: as before.
 * A token of -1 (read while a node held the job) refuses every change
 * until the job is read again. */
static void free_token_set(store_t *s, const char *id, int64_t token)
{
    if (token < -1 || token_of(s, id))
        return;
    free_token_t *f = hmap_get(&s->free_tokens, id);
    if (f) {
        f->token = token;
        return;
    }
    if (hmap_len(&s->free_tokens) >= STORE_FREE_TOKENS)
        free_tokens_clear(s);
    size_t n = strlen(id) + 1;
    if (!(f = malloc(sizeof *f + n)))
        return;
    f->token = token;
    memcpy(f->id, id, n);
    if (hmap_put(&s->free_tokens, f->id, f) != 0)
        free(f);
}

/* A job this node holds is written under its token, and given back (its
 * token forgotten) once it stops running. A running job without one (its
 * claim was lost) gets a token no claim has, so the database refuses it;
 * other jobs without one are an operator's change of a free job. */
void store_cluster_row(store_t *s, op_t *op, const job_t *job)
{
    CHECK_LOOP_THREAD();
    int64_t token = token_of(s, job->id);
    bool ran = job->state == JOB_RUNNING ||
               (job->stored && job->stored_state == JOB_RUNNING);
    op->row.token = token ? token : ran ? -1 : 0;
    op->row.free_token = token ? BACKEND_TOKEN_UNKNOWN : free_token_of(s, job->id);
    op->row.refused = &op->refused;
    op->row.origin = (int64_t)(s->origin_base | (++s->origin_next & 0xffffffffu));
    if (token && job->state != JOB_RUNNING) { /* given back: free, its row's token this one */
        hmap_del(&s->tokens, job->id);
        free_token_set(s, job->id, token);
    }
}

/* A job this node holds is deleted under its token, which is forgotten. */
void store_cluster_delete(store_t *s, op_t *op)
{
    CHECK_LOOP_THREAD();
    op->row.token = token_of(s, op->name);
    op->row.free_token = op->row.token ? BACKEND_TOKEN_UNKNOWN : free_token_of(s, op->name);
    if (op->row.token)
        hmap_del(&s->tokens, op->name);
    free_token_forget(s, op->name);
}

static void refused_add(store_t *s, uint64_t seq)
{
    uint64_t *v = grow_array(s->refused, &s->refused_cap, s->nrefused, sizeof *v, 16);
    if (!v)
        return; /* its waiter is answered as stored: the engine forgot the job anyway */
    s->refused = v;
    s->refused[s->nrefused++] = seq;
}

bool store_cluster_refused(store_t *s, uint64_t seq)
{
    for (size_t i = 0; i < s->nrefused; i++)
        if (s->refused[i] == seq)
            return true;
    return false;
}

void store_cluster_prune(store_t *s)
{
    size_t keep = 0;
    for (size_t i = 0; i < s->nrefused; i++)
        if (s->refused[i] > s->committed_seen)
            s->refused[keep++] = s->refused[i];
    s->nrefused = keep;
}

/* Jobs handed back to the callback: this node holds each under its token. */
static void hand_over(store_t *s, op_t *op)
{
    for (int i = 0; i < op->njobs; i++)
        token_set(s, op->jobs[i]->id, op->tokens[i]);
    const char *err = op->error;
    bool any_probe = false;
    for (int i = 0; op->probes && i < op->njobs; i++)
        any_probe = any_probe || op->probes[i];
    if (op->kind == OP_CLAIM && op->jobs_cb)
        op->jobs_cb(op->ud, op->jobs, any_probe ? op->probes : NULL, op->njobs, op->claim.max,
                    err);
    else if (op->kind == OP_BEAT && op->beat_cb)
        op->beat_cb(op->ud, &op->beat, op->jobs, op->njobs, err);
    else
        for (int i = 0; i < op->njobs; i++)
            job_free(op->jobs[i]);
    op->njobs = 0; /* the callback owns them now */
}

/* What a point read saw: the tokens of rows no node held then (-1 for a
 * held one). A job read from the pending writes' index has no token
 * (BACKEND_TOKEN_UNKNOWN): what was known of it stays. */
static void read_tokens(store_t *s, op_t *op)
{
    const char *id = op->name;
    for (size_t i = 0; i < op->nids; i++, id += strlen(id) + 1)
        free_token_set(s, id, op->tokens[i]);
}

/* A write merged into a later one of the same job (apply.c) shares its fate. */
static void spread_refusals(op_t *done)
{
    for (op_t *op = done; op; op = op->next) {
        if (op->kind != OP_PUT || op->refused)
            continue;
        for (op_t *later = op->next; later; later = later->next)
            if (later->kind == OP_PUT && later->refused && !strcmp(later->row.id, op->row.id)) {
                op->refused = true;
                break;
            }
    }
}

void store_cluster_done(store_t *s, op_t *done)
{
    CHECK_LOOP_THREAD();
    bool any = false;
    for (op_t *op = done; op && !any; op = op->next)
        any = op->refused;
    if (any)
        spread_refusals(done);
    for (op_t *op = done; op; op = op->next) {
        if ((op->kind == OP_PUT || op->kind == OP_DELETE) && op->refused) {
            const char *id = op->kind == OP_PUT ? op->row.id : op->name;
            hmap_del(&s->tokens, id);
            free_token_forget(s, id); /* the next read learns the token anew */
            refused_add(s, op->seq);
            if (s->refused_cb)
                s->refused_cb(s->refused_ud, id);
        } else if (op->kind == OP_PUT && !op->superseded && !op->error &&
                   (!strcmp(op->row.state, "queued") ||
                    (op->row.token > 0 && strcmp(op->row.state, "running") != 0))) {
            /* Free to claim now (enqueued, given back), or a slot freed: a
             * lessee elsewhere held back by a concurrency limit claims at
             * once, not at its next poll. */
            store_wake_announce(s, op->row.queue);
        } else if (op->kind == OP_BREAKER && !op->error && op->change == STORE_BREAKER_OPEN) {
            store_wake_announce(s, STORE_WAKE_BREAKER);
        } else if (op->kind == OP_BEAT && !op->error) {
            if (op->beat_breakers || op->beat_gen == s->breakers_gen)
                s->breakers_open = op->beat_breakers;
            /* The database counts the TTL from its now(), later than this. */
            s->node_ok_until_ns = op->queued_ns + s->node_ttl_ns;
            if (op->beat.lost) {
                hmap_free(&s->tokens); /* every claim of the old row is void */
                hmap_init(&s->tokens);
            }
        }
        if (op->kind == OP_CLAIM || op->kind == OP_BEAT)
            hand_over(s, op);
        else if (op->kind == OP_GET && op->tokens && !op->error)
            read_tokens(s, op);
    }
}

void store_cluster_free(store_t *s)
{
    if (s->cluster) {
        hmap_free(&s->tokens);
        hmap_free_values(&s->free_tokens, free);
    }
    free(s->refused);
}

/* ---- the loop's requests ---- */

/* Copies of the limits into op (the caller's are borrowed). */
static void copy_limits(op_t *op, const store_limits_t *l)
{
    int n = l ? l->ntypes + l->nkeys : 0;
    if (!n)
        return;
    CHECK(l->ntypes <= BACKEND_CLAIM_LIMITS && l->nkeys <= BACKEND_CLAIM_LIMITS);
    if (!(op->limited = calloc((size_t)n, sizeof *op->limited)) ||
        !(op->limit_caps = malloc((size_t)n * sizeof *op->limit_caps)))
        abort(); /* as store_new_op: the write path cannot report it */
    for (int i = 0; i < n; i++)
        if (!(op->limited[i] = strdup(l->names[i])))
            abort();
    memcpy(op->limit_caps, l->caps, (size_t)n * sizeof *op->limit_caps);
    op->claim.limits = (store_limits_t){ (const char *const *)op->limited, op->limit_caps,
                                         l->ntypes, l->nkeys };
}

void store_claim(store_t *s, const char *const *queues, const int *caps, int nqueues,
                 bool queue_order, int max, const store_limits_t *limits, store_jobs_cb cb,
                 void *ud)
{
    CHECK(nqueues <= BACKEND_CLAIM_QUEUES);
    const char *in[4] = { NULL }, *out[4];
    op_t *op = store_new_op(OP_CLAIM, in, out);
    op->queues = calloc((size_t)(nqueues > 0 ? nqueues : 1), sizeof *op->queues);
    for (int i = 0; op->queues && i < nqueues; i++)
        if (!(op->queues[i] = strdup(queues[i])))
            abort(); /* as store_new_op: the write path cannot report it */
    if (!op->queues)
        abort();
    bool capped = false;
    for (int i = 0; caps && i < nqueues; i++)
        capped = capped || caps[i] > 0;
    if (capped) {
        if (!(op->caps = malloc((size_t)nqueues * sizeof *op->caps)))
            abort();
        memcpy(op->caps, caps, (size_t)nqueues * sizeof *op->caps);
    }
    op->claim = (backend_claim_t){ .queues = (const char *const *)op->queues, .caps = op->caps,
                                   .nqueues = nqueues, .queue_order = queue_order, .max = max,
                                   .breakers = s->breakers_open };
    copy_limits(op, limits);
    op->jobs_cb = cb;
    op->ud = ud;
    store_submit_unnumbered(s, op);
}

void store_node_beat(store_t *s, store_beat_cb cb, void *ud)
{
    const char *in[4] = { NULL }, *out[4];
    op_t *op = store_new_op(OP_BEAT, in, out);
    op->beat_gen = s->breakers_gen;
    op->beat_cb = cb;
    op->ud = ud;
    store_submit_unnumbered(s, op);
}

int store_cluster_join(store_t *s, store_beat_cb cb, void *ud, char *err, size_t len)
{
    CHECK(!s->running);
    const char *in[4] = { NULL }, *out[4];
    op_t *op = store_new_op(OP_BEAT, in, out);
    op->beat_cb = cb;
    op->ud = ud;
    op->queued_ns = clock_mono_ns();
    int rc = s->ops->begin(s->conn) != 0 || store_run_beat(s, op) != 0 ||
             s->ops->commit(s->conn) != 0 ? -1 : 0;
    if (rc != 0) {
        snprintf(err, len, "cannot register this node: %s", s->ops->errmsg(s->conn));
        s->ops->rollback(s->conn);
    } else {
        store_cluster_done(s, op);
    }
    store_free_op(op);
    return rc;
}

void store_node_leave(store_t *s)
{
    const char *in[4] = { NULL }, *out[4];
    store_submit_unnumbered(s, store_new_op(OP_LEAVE, in, out));
}

/* ---- the store thread's side ---- */

void store_free_claimed(op_t *op)
{
    for (int i = 0; i < op->njobs; i++)
        job_free(op->jobs[i]);
    free(op->jobs);
    free(op->tokens);
    free(op->probes);
    op->jobs = NULL;
    op->tokens = NULL;
    op->probes = NULL;
    op->njobs = op->jobs_cap = 0;
    if (op->queues)
        for (int i = 0; i < op->claim.nqueues; i++)
            free(op->queues[i]);
    free(op->queues);
    op->queues = NULL;
    free(op->caps);
    op->caps = NULL;
    int nl = op->claim.limits.ntypes + op->claim.limits.nkeys;
    for (int i = 0; op->limited && i < nl; i++)
        free(op->limited[i]);
    free(op->limited);
    free(op->limit_caps);
    op->limited = NULL;
    op->limit_caps = NULL;
}

/* A row claimed or adopted: decoded here, off the loop. One that does not
 * decode stays claimed by this node until it dies (its sweep frees it):
 * it is reported, never handed to a worker. */
static int claimed(void *ud, const store_doc_t *d)
{
    op_t *op = ud;
    job_t *job;
    problem_t p;
    if (store_doc_job(d, &job, &p) != ERR_OK) {
        log_error("a claimed job cannot be read; it is skipped", LOG_S("id", d->id),
                  LOG_S("error", p.detail));
        return 0;
    }
    if (op->njobs == op->jobs_cap) {
        int cap = op->jobs_cap ? op->jobs_cap * 2 : 8;
        job_t **jobs = realloc(op->jobs, (size_t)cap * sizeof *jobs);
        int64_t *tokens = jobs ? realloc(op->tokens, (size_t)cap * sizeof *tokens) : NULL;
        if (jobs)
            op->jobs = jobs;
        if (tokens)
            op->tokens = tokens;
        bool *probes = tokens ? realloc(op->probes, (size_t)cap * sizeof *probes) : NULL;
        if (!probes) {
            job_free(job);
            return -1;
        }
        op->probes = probes;
        op->jobs_cap = cap;
    }
    op->probes[op->njobs] = d->probe;
    op->jobs[op->njobs] = job;
    op->tokens[op->njobs++] = d->token;
    return 0;
}

/* A retried transaction runs them again from scratch, taking back first
 * what the last attempt took, in case it committed after all (backend.h:
 * held). The tokens stay in op->tokens, past njobs, until read. */
static int retake(store_t *s, op_t *op)
{
    int n = op->njobs;
    for (int i = 0; i < n; i++)
        job_free(op->jobs[i]);
    op->njobs = 0;
    if (!n)
        return 0;
    int64_t *prev = malloc((size_t)n * sizeof *prev);
    if (!prev)
        return -1;
    memcpy(prev, op->tokens, (size_t)n * sizeof *prev);
    int rc = s->ops->held(s->conn, prev, n, claimed, op);
    free(prev);
    return rc;
}

int store_run_claim(store_t *s, op_t *op)
{
    if (retake(s, op) != 0)
        return -1;
    backend_claim_t q = op->claim;
    q.max -= op->njobs;
    return q.max > 0 ? s->ops->claim(s->conn, &q, claimed, op) : 0;
}

int store_run_leave(store_t *s) { return s->ops->node_leave(s->conn); }

int store_run_beat(store_t *s, op_t *op)
{
    op->beat = (store_beat_t){ 0 };
    if (retake(s, op) != 0)
        return -1;
    return s->ops->node_beat(s->conn, &op->beat, &op->beat_breakers, claimed, op);
}
