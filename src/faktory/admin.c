/* Admin commands: FLUSH, MUTATE and QUEUE. FLUSH and MUTATE page through
 * the store (failed jobs may live only there), 1000 jobs per read; so does
 * QUEUE REMOVE on a cluster node. */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faktory/faktory_internal.h"
#include "faktory/job.h"
#include "util/clock.h"
#include "util/grow.h"

#define PAGE 1000

typedef enum { OP_CLEAR, OP_KILL, OP_DISCARD, OP_REQUEUE } op_t;

struct fwp_admin {
    op_t op;
    job_state_t state;
    json_t *filter; /* owned; may be NULL */
    json_t *queues; /* owned: QUEUE REMOVE's names, one after the other; NULL: any queue */
    size_t qi;
    bool has_cursor;
    int64_t cursor_created_at;
    char cursor_id[JOB_NAME_MAX + 1];
};

void fwp_admin_free(struct fwp_admin *a)
{
    if (!a)
        return;
    json_decref(a->filter);
    json_decref(a->queues);
    free(a);
}

static void done(fwp_conn_t *c)
{
    fwp_admin_free(c->admin);
    c->admin = NULL;
    c->reply.len = 0;
    fwp_reply_ok(&c->reply);
    fwp_reply_durable(c);
}

/* ---- FLUSH ---- */

typedef struct ids {
    char **v;
    size_t n, cap;
} ids_t;

static bool ids_push(ids_t *ids, const char *id)
{
    char **v = grow_array(ids->v, &ids->cap, ids->n, sizeof *v, 64);
    if (!v)
        return false;
    ids->v = v;
    return (ids->v[ids->n] = strdup(id)) ? (ids->n++, true) : false;
}

typedef struct pick {
    ids_t ids;
    bool (*want)(const job_t *j, void *arg);
    void *arg;
} pick_t;

static bool pick_one(void *ud, const job_t *j)
{
    pick_t *p = ud;
    return !p->want(j, p->arg) || ids_push(&p->ids, j->id);
}

/* Removes every job in memory that want() picks (none running). */
static void remove_picked(fwp_conn_t *c, bool (*want)(const job_t *j, void *arg), void *arg)
{
    pick_t p = { .want = want, .arg = arg };
    engine_job_foreach(c->srv->d.engine, pick_one, &p);
    problem_t pr;
    for (size_t i = 0; i < p.ids.n; i++) {
        (void)engine_remove(c->srv->d.engine, p.ids.v[i], &pr); /* running: kept */
        free(p.ids.v[i]);
    }
    free(p.ids.v);
}

static bool not_running(const job_t *j, void *arg)
{
    (void)arg;
    return j->state != JOB_RUNNING;
}

static void purge_next(fwp_conn_t *c);

static void on_purged(fwp_conn_t *c, json_t *r, const char *error)
{
    if (error) {
        fwp_send_err(c, "unavailable: the store could not be purged: %s", error);
        return;
    }
    json_t *id;
    size_t i;
    json_array_foreach(json_object_get(r, "deleted"), i, id)
        engine_forget(c->srv->d.engine, json_string_value(id));
    json_t *cur = json_object_get(r, "cursor");
    if (json_integer_value(json_object_get(r, "scanned")) < PAGE) {
        done(c);
        return;
    }
    c->admin->has_cursor = true;
    c->admin->cursor_created_at = json_integer_value(json_object_get(cur, "created_at"));
    snprintf(c->admin->cursor_id, sizeof c->admin->cursor_id, "%s",
             json_string_value(json_object_get(cur, "id")));
    purge_next(c);
}

static void purge_next(fwp_conn_t *c)
{
    struct fwp_admin *a = c->admin;
    /* A cluster node holds only the jobs it runs: the waiting ones are the
     * database's to delete (those no node holds: the rest stay). */
    store_purge_t p = { .completed_before = INT64_MAX, .failed_before = INT64_MAX,
                        .waiting = store_clustered(c->srv->d.store),
                        .has_cursor = a->has_cursor, .after_created_at = a->cursor_created_at,
                        .after_id = a->cursor_id, .limit = PAGE };
    fwp_purge(c, &p, on_purged);
}

/* Every job goes but the running ones, which their workers still hold. */
void fwp_flush(fwp_conn_t *c)
{
    fwp_admin_free(c->admin);
    if (!(c->admin = calloc(1, sizeof *c->admin))) {
        fwp_send_err(c, "unavailable: out of memory");
        return;
    }
    remove_picked(c, not_running, NULL);
    purge_next(c);
}

/* ---- MUTATE ---- */

static bool matches(const job_t *j, json_t *filter)
{
    json_t *jids = json_object_get(filter, "jids"), *v;
    const char *type = json_string_value(json_object_get(filter, "jobtype"));
    const char *glob = json_string_value(json_object_get(filter, "regexp"));
    if (type && strcmp(type, j->type) != 0)
        return false;
    if (json_is_array(jids)) {
        bool found = false;
        size_t i;
        json_array_foreach(jids, i, v)
            found = found || (json_is_string(v) && strcmp(json_string_value(v), j->id) == 0);
        if (!found)
            return false;
    }
    if (!glob)
        return true;
    /* Faktory's "regexp" is a glob over the job's JSON, as Redis matches. */
    sbuf_t text;
    sbuf_init(&text, 512);
    fwp_job_write(j, &text);
    sbuf_addc(&text, '\0');
    bool ok = fnmatch(glob, text.p, 0) == 0;
    sbuf_free(&text);
    return ok;
}

static void apply(fwp_conn_t *c, const char *id)
{
    engine_t *e = c->srv->d.engine;
    const job_t *j = engine_get(e, id), *out;
    problem_t p;
    if (!j || j->state != c->admin->state || !matches(j, c->admin->filter))
        return; /* it moved on since the page was read */
    switch (c->admin->op) {
    case OP_CLEAR:
    case OP_DISCARD: (void)engine_remove(e, id, &p); break;
    case OP_KILL:
        if (j->state != JOB_FAILED)
            (void)engine_kill(e, id, &out, &p);
        break;
    case OP_REQUEUE:
        if (j->state == JOB_FAILED)
            (void)engine_retry(e, id, &out, &p);
        else
            (void)engine_run_now(e, id, &out, &p);
        break;
    }
}

static void mutate_next(fwp_conn_t *c);

static void on_page(fwp_conn_t *c, json_t *r, const char *error)
{
    if (error) {
        fwp_send_err(c, "unavailable: the store could not be read: %s", error);
        return;
    }
    engine_t *e = c->srv->d.engine;
    ids_t ids = { 0 };
    json_t *doc;
    size_t i;
    engine_hold_eviction(e);
    json_array_foreach(json_object_get(r, "jobs"), i, doc) {
        job_t *job;
        problem_t p;
        const char *id = json_string_value(json_object_get(doc, "id"));
        if (!id || json_object_get(doc, "unreadable") || !ids_push(&ids, id))
            continue;
        /* Loaded even if in memory: in cluster mode a copy there may be on
         * its way out, and loading keeps it for this page (engine.h). */
        if (job_from_doc(doc, &job, &p) == ERR_OK)
            engine_load(e, job);
    }
    for (i = 0; i < ids.n; i++) {
        apply(c, ids.v[i]);
        free(ids.v[i]);
    }
    free(ids.v);
    engine_release_eviction(e);
    const char *next = json_string_value(json_object_get(r, "next_cursor"));
    char *colon = next ? strchr(next, ':') : NULL;
    if (!colon && c->admin->queues && ++c->admin->qi < json_array_size(c->admin->queues)) {
        c->admin->has_cursor = false; /* the next queue, from its start */
        mutate_next(c);
        return;
    }
    if (!colon) {
        done(c);
        return;
    }
    c->admin->has_cursor = true;
    c->admin->cursor_created_at = strtoll(next, NULL, 10);
    snprintf(c->admin->cursor_id, sizeof c->admin->cursor_id, "%s", colon + 1);
    mutate_next(c);
}

static void mutate_next(fwp_conn_t *c)
{
    struct fwp_admin *a = c->admin;
    store_query_t q = { .state = job_state_name(a->state), .limit = PAGE,
                        .queue = json_string_value(json_array_get(a->queues, a->qi)),
                        .has_cursor = a->has_cursor, .cursor_created_at = a->cursor_created_at,
                        .cursor_id = a->cursor_id };
    fwp_read_list(c, &q, on_page);
}

static int parse_filter(fwp_conn_t *c, json_t *f)
{
    json_t *jids = json_object_get(f, "jids"), *v, *t = json_object_get(f, "jobtype"),
           *re = json_object_get(f, "regexp");
    size_t i;
    if (f && !json_is_object(f) && !json_is_null(f))
        return fwp_send_err(c, "MUTATE filter must be an object"), -1;
    if (jids && !json_is_null(jids) && !json_is_array(jids))
        return fwp_send_err(c, "MUTATE filter.jids must be an array of strings"), -1;
    json_array_foreach(jids, i, v)
        if (!json_is_string(v))
            return fwp_send_err(c, "MUTATE filter.jids[%zu] must be a string", i), -1;
    if (t && !json_is_null(t) && !json_is_string(t))
        return fwp_send_err(c, "MUTATE filter.jobtype must be a string"), -1;
    if (re && !json_is_null(re) && !json_is_string(re))
        return fwp_send_err(c, "MUTATE filter.regexp must be a string (a glob)"), -1;
    return 0;
}

static int parse_mutate(fwp_conn_t *c, json_t *m, struct fwp_admin *a)
{
    static const char *const ops[] = { "clear", "kill", "discard", "requeue" };
    static const struct { const char *name; job_state_t state; } targets[] = {
        { "retries", JOB_RETRYING }, { "scheduled", JOB_PENDING }, { "dead", JOB_FAILED }
    };
    const char *cmd = json_string_value(json_object_get(m, "cmd"));
    const char *target = json_string_value(json_object_get(m, "target"));
    int op = -1, t = -1;
    for (int i = 0; cmd && i < 4; i++)
        op = strcmp(cmd, ops[i]) == 0 ? i : op;
    for (int i = 0; target && i < 3; i++)
        t = strcmp(target, targets[i].name) == 0 ? i : t;
    if (!json_is_object(m))
        return fwp_send_err(c, "MUTATE needs a JSON object"), -1;
    if (op < 0)
        return fwp_send_err(c, "MUTATE cmd must be clear, kill, discard or requeue"), -1;
    if (t < 0)
        return fwp_send_err(c, "MUTATE target must be retries, scheduled or dead"), -1;
    json_t *f = json_object_get(m, "filter");
    if (parse_filter(c, f) != 0)
        return -1;
    a->op = (op_t)op;
    a->state = targets[t].state;
    a->filter = json_is_object(f) ? json_incref(f) : NULL;
    return 0;
}

void fwp_mutate(fwp_conn_t *c, const fwp_cmd_t *cmd)
{
    json_t *m = fwp_json_arg(c, cmd, "argument");
    struct fwp_admin *a = m ? calloc(1, sizeof *a) : NULL;
    if (m && !a)
        fwp_send_err(c, "unavailable: out of memory");
    if (a && parse_mutate(c, m, a) == 0) {
        fwp_admin_free(c->admin);
        c->admin = a;
        mutate_next(c);
    } else {
        fwp_admin_free(a);
    }
    json_decref(m);
}

/* ---- QUEUE ---- */

typedef struct names {
    const char **v;
    int n;
    bool all; /* "*" */
    json_t *latency;
    int64_t now;
} names_t;

static bool named(const names_t *q, const char *name)
{
    for (int i = 0; i < q->n; i++)
        if (strcmp(q->v[i], name) == 0)
            return true;
    return q->all;
}

static bool queued_in(const job_t *j, void *arg)
{
    return j->state == JOB_QUEUED && named(arg, j->queue);
}

/* Names of every queue the engine holds (QUEUE PAUSE|RESUME *): with jobs in
 * memory, paused or limited (it lets go of the others). */
static void add_known(void *ud, const engine_queue_info_t *q) { ids_push(ud, q->name); }

/* Named queues are paused even if the engine has none of their jobs yet,
 * so jobs pushed later wait; "*" means every queue known now. The names are
 * copied first: engine_pause must not run inside the engine's iteration. */
static void pause_all(fwp_conn_t *c, names_t *names, bool paused)
{
    engine_t *e = c->srv->d.engine;
    ids_t q = { 0 };
    if (names->all)
        engine_queue_foreach(e, add_known, &q);
    else
        for (int i = 0; i < names->n; i++)
            ids_push(&q, names->v[i]);
    for (size_t i = 0; i < q.n; i++) {
        engine_pause(e, q.v[i], paused);
        free(q.v[i]);
    }
    free(q.v);
}

static double age_s(int64_t at, int64_t now) { return at && at < now ? (double)(now - at) / 1e3 : 0; }

static void add_latency(void *ud, const engine_queue_info_t *q)
{
    names_t *n = ud;
    if (named(n, q->name))
        json_object_set_new(n->latency, q->name, json_real(age_s(q->oldest_ready_at, n->now)));
}

/* Cluster mode: the jobs waiting are the database's (store_stats'
 * oldest_ready_at), not in this node's memory. c->stats_arg: the names
 * asked for ("*": every queue the database counts). */
static void stored_age(json_t *out, const char *q, json_t *oldest, int64_t now)
{
    json_object_set_new(out, q, json_real(age_s(json_integer_value(json_object_get(oldest, q)), now)));
}

static void stored_latency(fwp_conn_t *c, json_t *stats)
{
    json_t *out = json_object(), *oldest = json_object_get(stats, "oldest_ready_at"), *name, *v;
    int64_t now = clock_now_ms();
    size_t i;
    const char *k;
    json_array_foreach(c->stats_arg, i, name) {
        const char *q = json_string_value(name);
        if (strcmp(q, "*") != 0)
            stored_age(out, q, oldest, now);
        else
            json_object_foreach(json_object_get(stats, "queues"), k, v)
                stored_age(out, k, oldest, now);
    }
    fwp_send_json(c, out);
}

static void latency(fwp_conn_t *c, names_t *names)
{
    if (store_clustered(c->srv->d.store)) {
        json_t *asked = json_array();
        for (int i = 0; i < names->n; i++)
            json_array_append_new(asked, json_string(names->v[i]));
        fwp_with_stats(c, stored_latency, asked);
        return;
    }
    names->latency = json_object();
    names->now = clock_now_ms();
    for (int i = 0; i < names->n; i++)
        json_object_set_new(names->latency, names->v[i], json_real(0));
    engine_queue_foreach(c->srv->d.engine, add_latency, names);
    fwp_send_json(c, names->latency);
}

/* A node alone holds every queued job; a cluster node none it does not
 * run, so it pages through the database's, queue by queue, as MUTATE
 * does (running jobs are kept either way). */
static void remove_queued(fwp_conn_t *c, names_t *names)
{
    if (!store_clustered(c->srv->d.store)) {
        remove_picked(c, queued_in, names);
        done(c);
        return;
    }
    struct fwp_admin *a = calloc(1, sizeof *a);
    json_t *queues = names->all ? NULL : json_array();
    for (int i = 0; queues && i < names->n; i++)
        json_array_append_new(queues, json_string(names->v[i]));
    if (!a || (!names->all && !queues)) {
        free(a);
        json_decref(queues);
        fwp_send_err(c, "unavailable: out of memory");
        return;
    }
    *a = (struct fwp_admin){ .op = OP_CLEAR, .state = JOB_QUEUED, .queues = queues };
    fwp_admin_free(c->admin);
    c->admin = a;
    mutate_next(c);
}

void fwp_queue(fwp_conn_t *c, const fwp_cmd_t *cmd)
{
    const char *w[ENGINE_LEASE_MAX + 1];
    char *buf = malloc(cmd->args_len + 1);
    int n = buf ? fwp_words(cmd->args, cmd->args_len, buf, w, ENGINE_LEASE_MAX + 1) : -1;
    names_t names = { .v = w + 1, .n = n - 1 };
    for (int i = 1; i < n; i++) {
        names.all = names.all || strcmp(w[i], "*") == 0;
        if (strcmp(w[i], "*") != 0 && !job_name_valid(w[i])) {
            fwp_send_err(c, "QUEUE %.64s is not a valid queue name", w[i]);
            free(buf);
            return;
        }
    }
    if (n < 2)
        fwp_send_err(c, "QUEUE needs PAUSE, RESUME, REMOVE or LATENCY and queue names "
                     "(at most %d, or *)", ENGINE_LEASE_MAX);
    else if (strcmp(w[0], "PAUSE") == 0 || strcmp(w[0], "RESUME") == 0) {
        pause_all(c, &names, strcmp(w[0], "PAUSE") == 0);
        done(c);
    } else if (strcmp(w[0], "REMOVE") == 0) {
        remove_queued(c, &names);
    } else if (strcmp(w[0], "LATENCY") == 0)
        latency(c, &names);
    else
        fwp_send_err(c, "QUEUE %.16s: expected PAUSE, RESUME, REMOVE or LATENCY", w[0]);
    free(buf);
}
