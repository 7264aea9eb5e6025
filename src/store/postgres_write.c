/*
 * The PostgreSQL backend's writes (backend.h: put_job, delete_job,
 * delete_fenced, put_queue, put_breaker, add_counter): each a prepared
 * statement of postgres_statements.c, run by pg_run (in the batch's
 * pipeline). Alone, a job's row is written as it is; in cluster mode
 * under the node's claim or the token an operator's read saw
 * (cluster_put). Either way a finished job moves to history. Large args go apart
 * from the rest of the packed form, into payloads (split_doc: migrations 6
 * and 8).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/job.h"
#include "store/postgres_internal.h"

/* The states whose rows belong in history: the terminal ones
 * (core/job.h). */
static bool finished(const char *state)
{
    job_state_t st;
    return state && job_state_parse(state, &st) == 0 && job_state_terminal(st);
}

/* A row's packed form as written: whole, or (large args) without its
 * args, which go apart (PG_ARGS_APART). */
typedef struct split {
    char *rest; /* the form without its args, or NULL: doc is written whole */
    int rest_len, args_len;
    char at[16];
} split_t;

static int split_doc(const store_row_t *r, split_t *sp)
{
    *sp = (split_t){ 0 };
    const job_pack_args_t *a = &r->args;
    if (a->len < PG_ARGS_APART || a->at + a->len > r->doc_len || r->doc_len > INT32_MAX)
        return 0;
    if (!(sp->rest = malloc(r->doc_len - a->len)))
        return -1;
    const char *doc = r->doc;
    memcpy(sp->rest, doc, a->at);
    memcpy(sp->rest + a->at, doc + a->at + a->len, r->doc_len - a->at - a->len);
    sp->rest_len = (int)(r->doc_len - a->len);
    sp->args_len = (int)a->len;
    snprintf(sp->at, sizeof sp->at, "%zu", a->at);
    return 0;
}

/* The doc and args_at parameters (at vals[d] and vals[g]). */
static void split_params(const store_row_t *r, const split_t *sp, const char **vals, int *lens,
                         int d, int g)
{
    vals[d] = sp->rest ? sp->rest : r->doc;
    lens[d] = sp->rest ? sp->rest_len : (int)r->doc_len;
    vals[g] = sp->rest ? sp->at : NULL;
}

/* The payload apart (sp->rest set) of a write, by statement `which`
 * (P_PAYLOAD, _KEEP or _MINE: postgres_statements.c) under its origin. */
static int put_payload(pg_t *c, const store_row_t *r, const split_t *sp, int which,
                       const char *origin)
{
    const char *vals[3] = { r->id, origin, (const char *)r->doc + r->args.at };
    int lens[3] = { 0, 0, sp->args_len };
    return pg_run(c, which, vals, lens, NULL);
}

/* Cluster mode: a change of a job this node holds (under its token), or
 * of a job no node holds (an operator's). The holder's rows are in jobs;
 * a free one that finished, or finishes now, may be in either table. */
static int cluster_put(pg_t *c, const store_row_t *r, const char *prio, const char *updated,
                       const char *run_at)
{
    char token[24], node[24];
    snprintf(token, sizeof token, "%lld", (long long)(r->token ? r->token : r->free_token));
    snprintf(node, sizeof node, "%lld", (long long)c->node);
    bool done = finished(r->state), live = r->was && !finished(r->was);
    int which = r->token ? (done ? (r->again ? P_FENCED_DONE_AGAIN : P_FENCED_DONE) : P_FENCED)
                         : (!done && live ? P_FREE_PUT : P_FREE_ANY);
    const char *vals[9] = { r->id, r->state, prio, updated, run_at, NULL, token,
                            which == P_FREE_ANY ? (done ? "t" : "f") : node };
    int lens[9] = { 0 };
    split_t sp;
    if (split_doc(r, &sp) != 0)
        return pg_fail(c, "out of memory", NULL);
    split_params(r, &sp, vals, lens, 5, 8);
    int rc = pg_run(c, which, vals, lens, r->refused);
    free(sp.rest);
    return rc;
}

int pg_put_job(void *conn, const store_row_t *r)
{
    pg_t *c = conn;
    char prio[16], created[24], updated[24], run_at[24];
    snprintf(prio, sizeof prio, "%d", r->priority);
    snprintf(created, sizeof created, "%lld", (long long)r->created_at);
    snprintf(updated, sizeof updated, "%lld", (long long)r->updated_at);
    snprintf(run_at, sizeof run_at, "%lld", (long long)r->run_at);
    if (c->cluster && (r->token || r->was)) /* else an enqueue: its first write */
        return cluster_put(c, r, prio, updated, run_at);
    char origin[24];
    snprintf(origin, sizeof origin, "%lld", (long long)r->origin);
    const char *vals[12] = { r->id, r->queue, r->type, r->state, prio, created, updated, run_at,
                             NULL, r->bkey, origin };
    int lens[12] = { 0 };
    bool in_jobs = r->fresh || (r->was && !finished(r->was));
    int which = c->cluster             ? (r->again ? P_INSERT_AGAIN : P_INSERT)
                : !finished(r->state)  ? (in_jobs ? P_PUT : P_PUT_ANY)
                : in_jobs && !r->again ? P_PUT_DONE
                                       : P_PUT_DONE_ANY;
    split_t sp;
    if (split_doc(r, &sp) != 0)
        return pg_fail(c, "out of memory", NULL);
    /* An enqueue's origin is $11, its args_at $12; a put has no origin. */
    split_params(r, &sp, vals, lens, 8, c->cluster ? 11 : 10);
    int rc = sp.rest && !c->cluster
                 ? put_payload(c, r, &sp, r->was ? P_PAYLOAD_KEEP : P_PAYLOAD, "0") : 0;
    if (rc == 0)
        rc = pg_run(c, which, vals, lens, r->refused);
    if (rc == 0 && sp.rest && c->cluster)
        rc = put_payload(c, r, &sp, P_PAYLOAD_MINE, origin);
    free(sp.rest);
    if (rc == 0 && c->cluster && pg_dupes_note(&c->dupes, r) != 0)
        return pg_fail(c, "out of memory", NULL);
    return rc;
}

int pg_delete_job(void *conn, const char *id)
{
    const char *vals[1] = { id };
    return pg_run(conn, ((pg_t *)conn)->cluster ? P_FREE_DELETE : P_DELETE, vals, NULL, NULL);
}

/* An operator's delete (a node alone): the job may be in history. */
int pg_delete_any(void *conn, const char *id)
{
    const char *vals[1] = { id };
    return pg_run(conn, P_DELETE_ANY, vals, NULL, NULL);
}

int pg_delete_fenced(void *conn, const char *id, int64_t token, int64_t free_token,
                            bool *refused)
{
    pg_t *c = conn;
    char tok[24], node[24], free_tok[24];
    snprintf(tok, sizeof tok, "%lld", (long long)token);
    snprintf(node, sizeof node, "%lld", (long long)c->node);
    snprintf(free_tok, sizeof free_tok, "%lld", (long long)free_token);
    const char *vals[4] = { id, tok, node, free_tok };
    return pg_run(c, P_HELD_DELETE, vals, NULL, refused);
}

int pg_put_breaker(void *conn, const char *key, store_breaker_change_t change,
                          int64_t cooldown_ms, int64_t cooldown_max_ms)
{
    pg_t *c = conn;
    char cool[24], node[24];
    int64_t ms = change == STORE_BREAKER_REOPEN ? cooldown_max_ms : cooldown_ms;
    snprintf(cool, sizeof cool, "%lld", (long long)(ms > 0 ? ms : 1));
    snprintf(node, sizeof node, "%lld", (long long)c->node);
    const char *open[2] = { key, cool }, *reopen[3] = { key, cool, node }, *close[2] = { key, node },
               *reset[1] = { key };
    switch (change) {
    case STORE_BREAKER_OPEN: return pg_run(c, P_BREAKER_OPEN, open, NULL, NULL);
    case STORE_BREAKER_REOPEN: return pg_run(c, P_BREAKER_REOPEN, reopen, NULL, NULL);
    case STORE_BREAKER_CLOSE: return pg_run(c, P_BREAKER_CLOSE, close, NULL, NULL);
    case STORE_BREAKER_RESET: return pg_run(c, P_BREAKER_RESET, reset, NULL, NULL);
    }
    return 0;
}

int pg_put_queue(void *conn, const char *name, bool paused)
{
    const char *vals[2] = { name, paused ? "t" : "f" };
    return pg_run(conn, P_QUEUE, vals, NULL, NULL);
}

/* A counter's row is locked from its update to the commit (the fsync
 * included): in cluster mode every node's every batch would queue on the
 * same few rows. Each node adds to its own shard, "name#k" (k the node's
 * id modulo PG_COUNTER_SHARDS: a bounded set of rows whatever the nodes
 * that come and go), and a read sums the shards. */
#define PG_COUNTER_SHARDS 16

int pg_add_counter(void *conn, const char *name, int64_t delta)
{
    pg_t *c = conn;
    char d[24], sharded[80];
    snprintf(d, sizeof d, "%lld", (long long)delta);
    if (c->cluster && c->node)
        snprintf(sharded, sizeof sharded, "%.60s#%d", name, (int)(c->node % PG_COUNTER_SHARDS));
    const char *vals[2] = { c->cluster && c->node ? sharded : name, d };
    return pg_run(conn, P_COUNTER, vals, NULL, NULL);
}
