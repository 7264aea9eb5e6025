/* Cluster mode's wiring (docs/architecture.md): the node's beat, the
 * engine's claims turned into store claims and back, and the writes the
 * database refused turned into jobs the engine forgets. */
#include <stdio.h>
#include <unistd.h>

#include "server/app.h"
#include "util/clock.h"
#include "util/log.h"

static void on_claimed(void *ud, job_t **jobs, const bool *probe, int n, int asked,
                       const char *error)
{
    app_t *a = ud;
    if (error)
        log_warn("claim failed; waiting workers ask again", LOG_S("error", error));
    engine_claimed(a->engine, jobs, probe, n, asked);
}

void app_cluster_breaker(void *ud, const char *key, engine_shared_change_t change)
{
    static const store_breaker_change_t as[] = {
        [ENGINE_SHARED_OPEN] = STORE_BREAKER_OPEN, [ENGINE_SHARED_REOPEN] = STORE_BREAKER_REOPEN,
        [ENGINE_SHARED_CLOSE] = STORE_BREAKER_CLOSE, [ENGINE_SHARED_RESET] = STORE_BREAKER_RESET,
    };
    app_t *a = ud;
    store_put_breaker(a->store, key, as[change], a->cfg.breaker_cooldown_ms,
                      a->cfg.breaker_cooldown_max_ms);
}

void app_cluster_claim(void *ud, const engine_claim_t *c)
{
    app_t *a = ud;
    store_limits_t limits = { c->limited, c->limits, c->ntypes, c->nkeys };
    store_claim(a->store, c->queues, c->caps, c->nqueues, c->queue_order, c->max, &limits,
                on_claimed, a);
}

static void on_refused(void *ud, const char *id)
{
    app_t *a = ud;
    log_warn("a write was refused: another node holds the job now; this node forgets it",
             LOG_S("job_id", id));
    engine_drop(a->engine, id);
}

static void on_woken(void *ud, const char *const *queues, int n)
{
    app_t *a = ud;
    engine_woken(a->engine, queues, n);
}

/* The running jobs of a dead node: their attempts end now, as an expired
 * lease's would (retried or failed by the usual rules). */
static void adopt(app_t *a, job_t **jobs, int n)
{
    for (int i = 0; i < n; i++) {
        log_info("job of a dead node taken over", LOG_S("job_id", jobs[i]->id),
                 LOG_S("worker", jobs[i]->lease_worker));
        engine_take_over(a->engine, jobs[i]);
    }
}

static void arm_beat(app_t *a)
{
    int64_t ms = a->cfg.node_ttl_ms / 3;
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000) };
    evtimer_add(a->beat_timer, &tv);
}

static void on_beat(void *ud, const store_beat_t *b, job_t **adopted, int n, const char *error)
{
    app_t *a = ud;
    a->beat_busy = false;
    if (error) {
        log_warn("node beat failed", LOG_S("error", error));
    } else {
        if (b->lost) {
            log_warn("this node's row expired (paused or cut off past JOBQ_NODE_TTL): its "
                     "jobs were handed to other nodes; forgetting them and registering again",
                     LOG_I("jobs", (int64_t)engine_job_count(a->engine)),
                     LOG_I("node", b->node));
            engine_drop_all(a->engine);
        } else if (a->node_id != b->node) {
            log_info("node registered", LOG_I("node", b->node));
        }
        a->node_id = b->node;
        app_set_live_nodes(a, b->nodes);
        adopt(a, adopted, n);
    }
    if (!a->api.draining)
        arm_beat(a);
}

static void beat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    app_t *a = arg;
    if (a->beat_busy)
        return;
    a->beat_busy = true;
    store_node_beat(a->store, on_beat, a);
}

void app_cluster_leave(app_t *a)
{
    if (a->cfg.cluster && a->store)
        store_node_leave(a->store);
}

store_t *app_cluster_open(app_t *a, char *err, size_t len)
{
    char host[64] = "", name[96];
    gethostname(host, sizeof host - 1);
    snprintf(name, sizeof name, "%s:%d", host, (int)getpid());
    store_t *s = store_open_cluster(a->cfg.database_url, a->cfg.durability, name,
                                    a->cfg.node_ttl_ms, err, len);
    if (s) {
        store_set_refused(s, on_refused, a);
        store_set_woken(s, on_woken, a);
    }
    return s;
}

/* The first beat before the store starts, and the next ones from the
 * timer (on_beat arms it). */
int app_cluster_start(app_t *a, char *err, size_t len)
{
    if (!a->cfg.cluster)
        return 0;
    if (!(a->beat_timer = evtimer_new(a->base, beat, a)))
        return snprintf(err, len, "out of memory"), -1;
    a->beat_busy = true;
    return store_cluster_join(a->store, on_beat, a, err, len);
}
