/* PUSH and PUSHB: jobs in, acknowledged once durable. A PUSH is a batch of
 * one, answered +OK or -ERR; a PUSHB answers the map of rejected jids. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faktory/faktory_internal.h"
#include "faktory/job.h"
#include "util/clock.h"

/* Why no job may come in now, or NULL. */
static const char *refusal(fwp_conn_t *c, char *buf, size_t len)
{
    if (c->srv->draining)
        return "unavailable: jobq is shutting down";
    if (!store_healthy(c->srv->d.store)) {
        char why[256];
        store_last_error(c->srv->d.store, why, sizeof why);
        snprintf(buf, len, "unavailable: the store cannot commit: %s", why);
        return buf;
    }
    return NULL;
}

static const char *shed(fwp_conn_t *c, const job_t *j, char *buf, size_t len)
{
    int64_t limit = c->srv->d.cfg->memory_limit;
    int64_t used = engine_memory_bytes(c->srv->d.engine);
    if (limit <= 0 || (double)used < job_shed_level(j->priority) * (double)limit)
        return NULL;
    snprintf(buf, len, "unavailable: jobq is short of memory (%lld of %lld bytes held): %s "
             "jobs are refused until workers catch up", (long long)used, (long long)limit,
             job_priority_name(j->priority));
    return buf;
}

/* One rejected job: PUSH answers it, PUSHB notes it under its jid. */
static void reject(fwp_conn_t *c, const char *jid, size_t i, const char *why)
{
    if (!c->rejected) {
        fwp_send_err(c, "%s", why);
        return;
    }
    char key[32];
    if (!jid) {
        snprintf(key, sizeof key, "[%zu]", i); /* no jid to name it by: its index */
        jid = key;
    }
    json_object_set_new(c->rejected, jid, json_string(why));
}

static void enqueue_all(fwp_conn_t *c)
{
    problem_t p;
    for (size_t i = 0; i < c->nbatch; i++) {
        job_t *job = c->batch[i];
        bool created;
        const job_t *out;
        if (!job)
            continue;
        c->batch[i] = NULL; /* the engine's from here, whatever happens */
        char jid[JOB_NAME_MAX + 1];
        size_t n = strlen(job->id); /* a valid name: at most JOB_NAME_MAX */
        memcpy(jid, job->id, n < JOB_NAME_MAX ? n + 1 : JOB_NAME_MAX + 1);
        jid[JOB_NAME_MAX] = '\0';
        if (engine_enqueue(c->srv->d.engine, job, &created, &out, &p) != ERR_OK) {
            if (!c->rejected) {
                fwp_send_err(c, "jid %s: %s", jid, p.detail);
                return;
            }
            json_object_set_new(c->rejected, jid, json_string(p.detail));
        }
    }
    sbuf_t *r = &c->reply;
    r->len = 0;
    if (c->rejected) {
        char *text = json_dumps(c->rejected, JSON_COMPACT);
        fwp_reply_bulk(r, text ? text : "{}", text ? strlen(text) : 2);
        free(text);
    } else {
        fwp_reply_ok(r);
    }
    fwp_reply_durable(c);
}

static void read_ids(fwp_conn_t *c);

/* The stored jobs under the pushed jids are in the engine now (if any):
 * the engine can tell a replay from a clash. */
static void on_loaded(fwp_conn_t *c, json_t *docs, const char *error)
{
    if (error) {
        fwp_send_err(c, "unavailable: the store could not be read: %s", error);
        return;
    }
    if (json_array_size(docs) < c->nread) {
        fwp_send_err(c, STORE_GET_TOO_MUCH, fwp_read_budget(c));
        return;
    }
    if (engine_deletes(c->srv->d.engine) != c->deletes_seen) {
        read_ids(c); /* a delete meanwhile: never bring a deleted job back */
        return;
    }
    size_t i;
    json_t *doc;
    engine_hold_eviction(c->srv->d.engine);
    json_array_foreach(docs, i, doc) {
        const char *why = json_string_value(json_object_get(doc, "unreadable"));
        const char *id = json_string_value(json_object_get(doc, "id"));
        job_t *job;
        problem_t p;
        if (why) {
            store_quarantine_note(c->srv->d.store, id, why);
            for (size_t k = 0; k < c->nbatch; k++)
                if (c->batch[k] && strcmp(c->batch[k]->id, id) == 0) {
                    char msg[400];
                    snprintf(msg, sizeof msg, "jid %s is stored but cannot be read (%s): it is "
                             "quarantined", id, why);
                    reject(c, id, k, msg);
                    job_free(c->batch[k]);
                    c->batch[k] = NULL;
                }
        } else if (json_is_object(doc) && job_from_doc(doc, &job, &p) == ERR_OK) {
            engine_load(c->srv->d.engine, job);
        }
    }
    bool answered = !c->rejected && !c->batch[0]; /* a PUSH refused above */
    if (!answered)
        enqueue_all(c);
    engine_release_eviction(c->srv->d.engine);
}

static void read_ids(fwp_conn_t *c)
{
    const char **ids = malloc((c->nbatch ? c->nbatch : 1) * sizeof *ids);
    size_t n = 0;
    if (!ids) {
        fwp_send_err(c, "unavailable: out of memory");
        return;
    }
    for (size_t i = 0; i < c->nbatch; i++)
        if (c->batch[i] && !engine_get(c->srv->d.engine, c->batch[i]->id) &&
            store_may_hold(c->srv->d.store, c->batch[i]->id))
            ids[n++] = c->batch[i]->id;
    c->nread = n;
    if (n)
        fwp_read_jobs(c, ids, n, on_loaded); /* copies the ids */
    else
        enqueue_all(c);
    free(ids);
}

static void reset(fwp_conn_t *c)
{
    for (size_t i = 0; i < c->nbatch; i++)
        job_free(c->batch[i]);
    free(c->batch);
    c->batch = NULL;
    c->nbatch = 0;
    json_decref(c->rejected);
    c->rejected = NULL;
}

/* Parses every job; the ones refused are answered (PUSH) or noted (PUSHB). */
static int parse_all(fwp_conn_t *c, json_t *specs)
{
    size_t n = json_array_size(specs);
    if (!(c->batch = calloc(n, sizeof *c->batch)))
        return fwp_send_err(c, "unavailable: out of memory"), -1;
    c->nbatch = n;
    int64_t now = clock_now_ms();
    for (size_t i = 0; i < n; i++) {
        json_t *spec = json_array_get(specs, i);
        problem_t p;
        char buf[400];
        const char *why;
        if (fwp_job_parse(spec, &c->srv->d.cfg->job, now, &c->batch[i], &p) != ERR_OK) {
            reject(c, json_string_value(json_object_get(spec, "jid")), i, p.detail);
        } else if ((why = shed(c, c->batch[i], buf, sizeof buf))) {
            reject(c, c->batch[i]->id, i, why);
            job_free(c->batch[i]);
            c->batch[i] = NULL;
        } else {
            continue;
        }
        if (!c->rejected)
            return -1;
    }
    return 0;
}

void fwp_push(fwp_conn_t *c, const fwp_cmd_t *cmd, bool bulk)
{
    char buf[400];
    const char *why = refusal(c, buf, sizeof buf);
    reset(c);
    if (why) {
        fwp_send_err(c, "%s", why);
        return;
    }
    json_t *arg = fwp_json_arg(c, cmd, bulk ? "argument" : "job");
    if (!arg)
        return;
    if (bulk && (!json_is_array(arg) || json_array_size(arg) < 1 ||
                 json_array_size(arg) > FWP_BATCH_MAX)) {
        fwp_send_err(c, "PUSHB needs an array of 1-%d jobs", FWP_BATCH_MAX);
        json_decref(arg);
        return;
    }
    json_t *specs = bulk ? json_incref(arg) : json_array(); /* no json_pack: 500 instructions */
    if (!specs || (!bulk && json_array_append(specs, arg) != 0)) {
        json_decref(specs);
        json_decref(arg);
        fwp_send_err(c, "unavailable: out of memory");
        return;
    }
    if (bulk)
        c->rejected = json_object();
    if (parse_all(c, specs) == 0)
        read_ids(c);
    json_decref(specs);
    json_decref(arg);
}
