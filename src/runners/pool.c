/* Runner pools: lease from the engine, hand jobs to their kind, report the
 * outcome. Engine calls happen only from loop events (the pool's kick, curl
 * completions), never from inside an engine callback. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runners/runners_internal.h"
#include "util/clock.h"
#include "util/log.h"

#define LEASE_WAIT_MS 30000

static const runner_kind_t *const kinds[] = { &runner_webhook, &runner_download,
                                               &runner_command };

struct pool {
    const runner_kind_t *kind;
    const runner_env_t *env;
    engine_t *engine;
    curl_loop_t *curl;
    struct event *kick, *watch;
    int slots, busy;
    engine_waiter_t waiter;
    const char *queues[1];
    char worker[64];
    bool draining;
    list_node_t tasks;   /* running */
    list_node_t refused; /* could not start; reported on the next kick */
};

struct runners {
    runner_env_t env;
    char download_dir[1024], command_dir[1024];
    curl_loop_t *curl;
    pool_t *pools[sizeof kinds / sizeof kinds[0]];
    int npools;
};

static void kick(pool_t *p) { event_active(p->kick, EV_TIMEOUT, 0); }

static void task_free(task_t *t)
{
    if (t->pool->kind->cleanup)
        t->pool->kind->cleanup(t);
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->body);
    sbuf_free(&t->excerpt);
    free(t);
}

static void on_transfer_done(void *ud, CURL *easy, CURLcode rc);

/* Takes a leased job. Called from an engine callback: no engine calls. */
static void task_start(pool_t *p, job_t *job)
{
    task_t *t = calloc(1, sizeof *t);
    if (!t)
        return; /* the lease expires and the job runs again */
    t->pool = p;
    snprintf(t->job_id, sizeof t->job_id, "%s", job->id);
    memcpy(t->lease_id, job->lease_id, sizeof t->lease_id);
    sbuf_init(&t->excerpt, 256);
    p->busy++;
    if (p->kind->start) {
        list_push_back(&p->tasks, &t->link);
        if (p->kind->start(t, job))
            return;
        list_remove(&t->link);
    } else {
        bool ok = (t->easy = curl_easy_init()) != NULL && p->kind->prepare(t, job);
        if (ok && curl_loop_add(p->curl, t->easy, on_transfer_done, t) == 0) {
            list_push_back(&p->tasks, &t->link);
            return;
        }
    }
    if (!t->refused) {
        t->refused = true;
        problem_set(&t->problem, ERR_INTERNAL, "", "could not start the transfer");
    }
    list_push_back(&p->refused, &t->link);
    kick(p);
}

static void on_leased(engine_waiter_t *w, job_t **jobs, int n)
{
    pool_t *p = w->ud;
    for (int i = 0; i < n; i++)
        task_start(p, jobs[i]);
    kick(p); /* lease again, from the loop */
}

static void report(pool_t *p, task_t *t, err_t type, const char *msg, json_t *result,
                   json_t *context, int retry)
{
    const job_t *j;
    problem_t prob;
    /* A server that said when to come back is believed (429, 503). */
    curl_off_t after_s = 0;
    if (t->easy && type != ERR_OK)
        curl_easy_getinfo(t->easy, CURLINFO_RETRY_AFTER, &after_s);
    err_t e = type == ERR_OK
                  ? engine_complete(p->engine, t->job_id, t->lease_id, result, &j, &prob)
                  : engine_fail_after(p->engine, t->job_id, t->lease_id, type, msg, context,
                                      retry, (int64_t)after_s * 1000, &j, &prob);
    if (e != ERR_OK) /* the lease ended meanwhile (expired, job deleted): nothing to report */
        log_info("runner result dropped", LOG_S("runner", p->kind->name),
                 LOG_S("job_id", t->job_id), LOG_S("reason", prob.detail));
}

static void finish(pool_t *p, task_t *t)
{
    list_remove(&t->link);
    task_free(t);
    p->busy--;
    kick(p);
}

static void on_transfer_done(void *ud, CURL *easy, CURLcode rc)
{
    (void)easy;
    task_t *t = ud;
    pool_t *p = t->pool;
    json_t *result = NULL, *context = NULL;
    char msg[512] = "";
    err_t type = p->kind->outcome(t, rc, &result, msg, sizeof msg, &context);
    report(p, t, type, msg, result, context, -1);
    json_decref(result);
    json_decref(context);
    finish(p, t);
}

void runner_finish(task_t *t, err_t type, const char *msg, json_t *result, json_t *context,
                   int retry)
{
    pool_t *p = t->pool;
    report(p, t, type, msg, result, context, retry);
    finish(p, t);
}

/* Cancellation reaches a running job as cancel_requested; look for it
 * twice a second and stop the work, whose report then cancels the job. */
static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_t *p = arg;
    list_node_t *n = p->tasks.next;
    while (n != &p->tasks) {
        task_t *t = LIST_ENTRY(n, task_t, link);
        n = n->next;
        const job_t *j = engine_get(p->engine, t->job_id);
        if (t->cancelling || !j || !j->cancel_requested || strcmp(j->lease_id, t->lease_id) != 0)
            continue;
        t->cancelling = true;
        if (p->kind->cancel) {
            p->kind->cancel(t);
            continue;
        }
        curl_loop_remove(p->curl, t->easy);
        report(p, t, ERR_INTERNAL, "cancelled while running", NULL, NULL, 0);
        finish(p, t);
    }
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_t *p = arg;
    while (!list_empty(&p->refused)) {
        task_t *t = LIST_ENTRY(list_first(&p->refused), task_t, link);
        /* Bad arguments will not get better: no retry. */
        report(p, t, t->problem.type, t->problem.detail, NULL, NULL,
               t->problem.type == ERR_VALIDATION ? 0 : -1);
        finish(p, t);
    }
    if (p->draining || engine_waiter_waiting(&p->waiter) || p->busy >= p->slots)
        return;
    p->waiter.max = p->slots - p->busy > ENGINE_LEASE_MAX ? ENGINE_LEASE_MAX : p->slots - p->busy;
    job_t *jobs[ENGINE_LEASE_MAX];
    int n = engine_lease(p->engine, &p->waiter, LEASE_WAIT_MS, jobs);
    for (int i = 0; i < n; i++)
        task_start(p, jobs[i]);
    if (n > 0)
        kick(p);
}

const runner_env_t *runner_env(const task_t *t) { return t->pool->env; }

void runner_progress(task_t *t, json_t *progress)
{
    int64_t now = clock_mono_ns();
    if (now - t->last_progress_ns < 1000000000LL)
        return;
    t->last_progress_ns = now;
    const job_t *j;
    problem_t p;
    /* Extending by the job's own timeout keeps a long transfer leased. */
    engine_heartbeat(t->pool->engine, t->job_id, t->lease_id, progress, 0, &j, &p);
}

static pool_t *pool_new(struct event_base *base, engine_t *e, curl_loop_t *curl,
                        const runner_kind_t *kind, int slots, const runner_env_t *env)
{
    pool_t *p = calloc(1, sizeof *p);
    if (!p || !(p->kick = evtimer_new(base, on_kick, p)) ||
        !(p->watch = event_new(base, -1, EV_PERSIST, on_watch, p))) {
        if (p && p->kick)
            event_free(p->kick);
        free(p);
        return NULL;
    }
    struct timeval half = { 0, 500000 };
    event_add(p->watch, &half);
    p->kind = kind;
    p->env = env;
    p->engine = e;
    p->curl = curl;
    p->slots = slots;
    p->queues[0] = kind->queue;
    snprintf(p->worker, sizeof p->worker, "jobq:%s", kind->name);
    list_init(&p->tasks);
    list_init(&p->refused);
    p->waiter = (engine_waiter_t){ .worker = p->worker, .queues = p->queues, .nqueues = 1,
                                   .max = 1, .cb = on_leased, .ud = p };
    list_init(&p->waiter.link_);
    kick(p);
    return p;
}

static void pool_free(pool_t *p)
{
    engine_waiter_cancel(p->engine, &p->waiter);
    list_node_t *lists[] = { &p->tasks, &p->refused };
    for (int i = 0; i < 2; i++)
        while (!list_empty(lists[i])) {
            task_t *t = LIST_ENTRY(list_first(lists[i]), task_t, link);
            list_remove(&t->link);
            task_free(t);
        }
    event_free(p->kick);
    event_free(p->watch);
    free(p);
}

/* "webhook=16,..." -> pools. */
static int parse_spec(runners_t *r, struct event_base *base, engine_t *e, const char *spec,
                      char *err, size_t len)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char name[32];
        int n = 0, used = 0;
        const runner_kind_t *kind = NULL;
        if (sscanf(item, " %31[a-z]=%d%n", name, &n, &used) == 2 && item[used] == '\0')
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
                if (strcmp(kinds[k]->name, name) == 0)
                    kind = kinds[k];
        if (!kind || n < 1 || n > 1000) {
            snprintf(err, len,
                     "JOBQ_RUNNERS=\"%s\" is not valid: expected KIND=N[,...] with KIND webhook, "
                     "download or command, and N 1-1000",
                     spec);
            return -1;
        }
        if (!(r->pools[r->npools++] = pool_new(base, e, r->curl, kind, n, &r->env)))
            return snprintf(err, len, "out of memory"), -1;
        log_info("runner started", LOG_S("runner", kind->name), LOG_S("queue", kind->queue),
                 LOG_S("type", kind->type), LOG_I("concurrency", n));
        if (r->npools == (int)(sizeof kinds / sizeof kinds[0]))
            break;
    }
    return 0;
}

runners_t *runners_start(struct event_base *base, engine_t *e, const runners_options_t *opt,
                         char *err, size_t len)
{
    const char *spec = opt->spec;
    runners_t *r = calloc(1, sizeof *r);
    if (!r || !(r->curl = curl_loop_new(base))) {
        free(r);
        snprintf(err, len, "cannot start the runners");
        return NULL;
    }
    snprintf(r->download_dir, sizeof r->download_dir, "%s", opt->download_dir);
    snprintf(r->command_dir, sizeof r->command_dir, "%s", opt->command_dir ? opt->command_dir : "");
    r->env = (runner_env_t){ .base = base, .download_dir = r->download_dir,
                             .allow_private = opt->download_allow_private,
                             .command_dir = r->command_dir, .commands = opt->commands,
                             .ncommands = opt->ncommands };
    if (spec[0] && parse_spec(r, base, e, spec, err, len) != 0) {
        runners_stop(r);
        return NULL;
    }
    return r;
}

void runners_drain(runners_t *r)
{
    for (int i = 0; r && i < r->npools; i++) {
        r->pools[i]->draining = true;
        engine_waiter_cancel(r->pools[i]->engine, &r->pools[i]->waiter);
    }
}

void runners_stop(runners_t *r)
{
    if (!r)
        return;
    curl_loop_free(r->curl); /* detaches every transfer first */
    for (int i = 0; i < r->npools; i++)
        if (r->pools[i])
            pool_free(r->pools[i]);
    free(r);
}
