/* The worker's side: FETCH (a long-poll lease), ACK, FAIL and BEAT. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faktory/faktory_internal.h"
#include "faktory/job.h"
#include "util/clock.h"

/* ---- FETCH ---- */

static void reply_job(fwp_conn_t *c, const job_t *j)
{
    sbuf_t body;
    sbuf_init(&body, 512);
    fwp_job_write(j, &body);
    fwp_send_bulk(c, body.p, body.len);
    sbuf_free(&body);
}

static void reply_null(fwp_conn_t *c) { fwp_send_text(c, "$-1\r\n"); }

/* counted_waiter is set exactly while the engine holds c->lease (the
 * waiter is zeroed until the first FETCH, which the engine cannot tell). */
void fwp_cancel_fetch(fwp_conn_t *c)
{
    if (!c->counted_waiter)
        return;
    engine_waiter_cancel(c->srv->d.engine, &c->lease);
    c->srv->waiters--;
    c->counted_waiter = false;
}

/* From the engine: no engine calls here, and reading resumes later. */
static void on_leased(engine_waiter_t *w, job_t **jobs, int n)
{
    fwp_conn_t *c = w->ud;
    fwp_cancel_fetch(c);
    if (n > 0)
        reply_job(c, jobs[0]);
    else
        reply_null(c);
    fwp_finish(c);
}

static bool fetcher_alive(engine_waiter_t *w)
{
    fwp_conn_t *c = w->ud;
    return c->bev && c->phase == FWP_READY;
}

static int parse_queues(fwp_conn_t *c, const fwp_cmd_t *cmd)
{
    free(c->fetch_buf);
    if (!(c->fetch_buf = malloc(cmd->args_len + 1)))
        return fwp_send_err(c, "unavailable: out of memory"), -1;
    int n = fwp_words(cmd->args, cmd->args_len, c->fetch_buf, c->queues, ENGINE_LEASE_MAX);
    if (n == 0)
        return fwp_send_err(c, "FETCH needs at least one queue"), -1;
    if (n < 0)
        return fwp_send_err(c, "FETCH takes at most %d queues", ENGINE_LEASE_MAX), -1;
    for (int i = 0; i < n; i++)
        if (!job_name_valid(c->queues[i]))
            return fwp_send_err(c, "FETCH queue %.64s is not a valid name: 1-%d characters of "
                                "[A-Za-z0-9._:-]", c->queues[i], JOB_NAME_MAX), -1;
    return n;
}

void fwp_fetch(fwp_conn_t *c, const fwp_cmd_t *cmd)
{
    int n = parse_queues(c, cmd);
    if (n < 0)
        return;
    fwp_server_t *s = c->srv;
    if (s->draining) {
        reply_null(c);
        return;
    }
    if (s->waiters >= (unsigned)s->d.cfg->max_waiters) {
        fwp_send_err(c, "busy: too many FETCHes are waiting (JOBQ_MAX_WAITERS); retry shortly");
        return;
    }
    workers_seen(s->d.workers, c->worker, clock_now_ms());
    /* A quiet worker waits as long as for an empty queue, then gets
     * nothing: it must not spin, and must not be handed work. */
    bool quiet = c->wid && workers_state(s->d.workers, c->wid) != WORKERS_ACTIVE;
    c->lease = (engine_waiter_t){ .worker = c->worker, .queues = c->queues,
                                  .nqueues = quiet ? 0 : n, .max = 1, .queue_order = true,
                                  .cb = on_leased,
                                  .alive = fetcher_alive, .ud = c };
    job_t *jobs[1];
    int got = engine_lease(s->d.engine, &c->lease, FWP_FETCH_WAIT_MS, jobs);
    if (got > 0) {
        reply_job(c, jobs[0]);
    } else if (engine_waiter_waiting(&c->lease)) {
        c->counted_waiter = true;
        s->waiters++;
        c->busy = true;
        s->busy++;
    } else {
        reply_null(c);
    }
}

/* ---- ACK / FAIL ---- */

/* The running job jid, if this connection's worker holds its lease. NULL
 * when there is nothing to settle (unknown, finished, requeued), which
 * the protocol answers +OK; *other says another worker holds it. */
static const job_t *held(fwp_conn_t *c, const char *jid, bool *other)
{
    const job_t *j = engine_get(c->srv->d.engine, jid);
    *other = false;
    if (!j || j->state != JOB_RUNNING)
        return NULL;
    if (!j->lease_worker || strcmp(j->lease_worker, c->worker) != 0) {
        *other = true;
        return NULL;
    }
    return j;
}

static const char *jid_arg(fwp_conn_t *c, const fwp_cmd_t *cmd, json_t *arg)
{
    const char *jid = json_string_value(json_object_get(arg, "jid"));
    if (!json_is_object(arg) || !jid || !job_name_valid(jid)) {
        fwp_send_err(c, "%s needs {\"jid\": ...} with a valid jid", cmd->name);
        return NULL;
    }
    if (!store_healthy(c->srv->d.store)) {
        char why[256];
        store_last_error(c->srv->d.store, why, sizeof why);
        fwp_send_err(c, "unavailable: the store cannot commit: %s", why);
        return NULL;
    }
    return jid;
}

/* ACK and FAIL: settle the lease of arg's jid if this worker holds it. act
 * makes the engine call with the lease; the reply waits for durability. A
 * jid that is not running is +OK (nothing to settle), one another worker
 * holds is refused. */
typedef err_t (*settle_fn)(fwp_conn_t *c, json_t *arg, const char *jid, const char *lease,
                           problem_t *p);

static void settle_lease(fwp_conn_t *c, const fwp_cmd_t *cmd, settle_fn act)
{
    json_t *arg = fwp_json_arg(c, cmd, "argument");
    const char *jid = arg ? jid_arg(c, cmd, arg) : NULL;
    bool other;
    const job_t *j = jid ? held(c, jid, &other) : NULL;
    problem_t p;
    if (j) {
        char lease[JOB_LEASE_ID_LEN + 1];
        memcpy(lease, j->lease_id, sizeof lease); /* j may change under the call */
        if (act(c, arg, jid, lease, &p) != ERR_OK) {
            fwp_send_err(c, "%s", p.detail);
        } else {
            c->reply.len = 0;
            fwp_reply_ok(&c->reply);
            fwp_reply_durable(c);
        }
    } else if (jid && other) {
        fwp_send_err(c, "jid %s is reserved by another worker", jid);
    } else if (jid) {
        fwp_send_text(c, "+OK\r\n");
    }
    json_decref(arg);
}

static err_t complete(fwp_conn_t *c, json_t *arg, const char *jid, const char *lease,
                      problem_t *p)
{
    (void)arg;
    const job_t *out;
    return engine_complete(c->srv->d.engine, jid, lease, NULL, &out, p);
}

void fwp_ack(fwp_conn_t *c, const fwp_cmd_t *cmd) { settle_lease(c, cmd, complete); }

/* s trimmed of white space and cut to at most max characters (UTF-8 code
 * points), into a new JSON string; "unknown" when nothing is left. */
static json_t *trimmed(const char *s, size_t max)
{
    if (!s)
        s = "";
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    size_t end = 0;
    for (size_t chars = 0; end < n && chars < max; chars++)
        do
            end++;
        while (end < n && ((unsigned char)s[end] & 0xC0) == 0x80); /* continuation bytes */
    return end ? json_stringn(s, end) : json_string("unknown");
}

static json_t *backtrace_of(json_t *bt)
{
    json_t *out = json_array(), *line;
    size_t i;
    json_array_foreach(bt, i, line) {
        if (json_array_size(out) == FWP_BACKTRACE_MAX)
            break;
        if (json_is_string(line))
            json_array_append_new(out, trimmed(json_string_value(line), FWP_MESSAGE_MAX));
    }
    return out;
}

/* The failure, with Faktory's errtype and backtrace kept in the error's context. */
static err_t fail(fwp_conn_t *c, json_t *arg, const char *jid, const char *lease, problem_t *p)
{
    json_t *type = trimmed(json_string_value(json_object_get(arg, "errtype")), FWP_ERRTYPE_MAX);
    json_t *msg = trimmed(json_string_value(json_object_get(arg, "message")), FWP_MESSAGE_MAX);
    json_t *ctx = json_pack("{s:O, s:o}", "errtype", type, "backtrace",
                            backtrace_of(json_object_get(arg, "backtrace")));
    const job_t *out;
    err_t e = engine_fail_after(c->srv->d.engine, jid, lease, fwp_errtype(json_string_value(type)),
                                json_string_value(msg), ctx, 1, 0, &out, p);
    json_decref(ctx);
    json_decref(type);
    json_decref(msg);
    return e;
}

void fwp_fail(fwp_conn_t *c, const fwp_cmd_t *cmd) { settle_lease(c, cmd, fail); }

/* ---- BEAT ---- */

void fwp_beat(fwp_conn_t *c, const fwp_cmd_t *cmd)
{
    json_t *arg = fwp_json_arg(c, cmd, "argument");
    if (!arg)
        return;
    const char *wid = json_string_value(json_object_get(arg, "wid"));
    workers_state_t st;
    if (!json_is_object(arg) || !wid) {
        fwp_send_err(c, "BEAT needs {\"wid\": ...}");
    } else if (workers_beat(c->srv->d.workers, wid,
                            json_string_value(json_object_get(arg, "current_state")),
                            json_is_integer(json_object_get(arg, "rss_kb"))
                                ? json_integer_value(json_object_get(arg, "rss_kb"))
                                : -1,
                            clock_now_ms(), &st) != 0) {
        fwp_send_err(c, "unknown worker %.64s: say HELLO with this wid first", wid);
    } else if (st == WORKERS_ACTIVE) {
        fwp_send_text(c, "+OK\r\n");
    } else {
        char body[40];
        int n = snprintf(body, sizeof body, "{\"state\":\"%s\"}", workers_state_name(st));
        fwp_send_bulk(c, body, (size_t)n);
    }
    json_decref(arg);
}
