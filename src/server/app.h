/*
 * app: the state `jobq serve` owns for the life of the process, shared by
 * serve.c (start-up, loop, shutdown), hooks.c (engine and access-log hooks),
 * settings.c (applying and reloading configuration) and retention.c.
 * Nothing outside src/server/ includes this file.
 */
#ifndef JOBQ_APP_H
#define JOBQ_APP_H

#include <event2/event.h>

#include "api/api.h"
#include "api/cache.h"
#include "api/guard.h"
#include "metrics/perf.h"
#include "metrics/workers.h"
#include "net/admit.h"
#include "net/ratelimit.h"
#include "core/config.h"
#include "engine/engine.h"
#include "faktory/faktory.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "runners/runners.h"
#include "server/serve.h"
#include "store/store.h"

/* Retention's sweep over the store (retention.c). */
typedef struct retention {
    struct event *timer;
    bool busy;       /* a batch is in the store */
    bool has_cursor; /* a sweep is under way, after this job */
    int batch;       /* jobs per batch, adapting to how much is due */
    int64_t cursor_created_at;
    char cursor_id[JOB_NAME_MAX + 1];
} retention_t;

typedef struct app {
    config_t cfg;
    struct event_base *base;
    engine_t *engine;
    store_t *store;
    struct spill *spill; /* the engine's cold tier; NULL if the data folder cannot hold it */
    metrics_t *metrics;
    workers_t *workers;
    perf_t *perf;
    runners_t *runners;
    struct event *perf_timer, *log_flush_ev;
    int64_t perf_due_ns;
    unsigned perf_ticks;
    http_server_t *http;
    fwp_server_t *fwp; /* NULL with JOBQ_FAKTORY_LISTEN=off */
    admit_t *admit; /* connection limits for every listener */
    ratelimit_t *ratelimit; /* per-client request budgets for every front end */
    api_t api;
    api_events_t *events;
    api_bulks_t *bulks;
    guard_t *guard;
    cache_t *cache;
    retention_t retention;
    struct event *engine_timer, *store_ev, *store_flush, *sigterm, *sigint, *drain_timer;
    struct event *sighup;
    int64_t drain_started, drain_deadline;
    int signals;
    /* Cluster mode (cluster.c): the node's beat and its row's id. */
    struct event *beat_timer;
    bool beat_busy;
    int64_t node_id;
    int live_nodes; /* cluster mode: nodes alive at the last beat (rates are shared among them) */
    int argc; /* the flags given, for a reload */
    char **argv;
} app_t;

/* cluster.c: cluster mode (JOBQ_CLUSTER). Open: the store, as a node;
 * start (a no-op without cluster mode): the node's first beat, after
 * recovery and before the store starts, then its timer. The claim hook is
 * the engine's (engine_hooks_t.claim). */
store_t *app_cluster_open(app_t *a, char *err, size_t len);
int app_cluster_start(app_t *a, char *err, size_t len);
void app_cluster_leave(app_t *a); /* before the store stops */
void app_cluster_claim(void *ud, const engine_claim_t *c);
/* Cluster mode: n nodes are alive; every rate limit of this node becomes
 * its share, 1/n of the rate configured (settings.c). */
void app_set_live_nodes(app_t *a, int n);
/* engine_hooks_t.breaker_shared: the change, written for the cluster. */
void app_cluster_breaker(void *ud, const char *key, engine_shared_change_t change);

/* Loads the configuration from argv less `own_flag`, which may stand
 * anywhere; *has_own says whether it was there. */
int app_load_config(config_t *cfg, int argc, char **argv, const char *own_flag, bool *has_own,
                    char *err, size_t len);

/* Applies the settings that may change while running: breaker options,
 * aging, execution limits, API keys and rates, log level (settings.c). */
void app_apply_settings(app_t *a);
/* SIGHUP: reads the configuration again and applies what may change;
 * logs what changed and what needs a restart. */
void app_reload(app_t *a);
/* hooks.c: the engine's hooks (ud = a), and the HTTP server's done hook,
 * which writes the access log. */
void app_engine_hooks(app_t *a, engine_hooks_t *hooks);
void app_on_http_done(void *ud, const http_req_t *r, double seconds);
/* serve.c: (re)arms the loop timer for the engine's next deadline. */
void app_arm_engine_timer(app_t *a, int64_t deadline);

/* The query cache's share of JOBQ_MEMORY_LIMIT. */
size_t app_cache_bytes(const config_t *c);

/* Starts deleting finished jobs past JOBQ_RETAIN_COMPLETED/_FAILED. */
int app_retention_start(app_t *a);
void app_retention_stop(app_t *a);

#endif
