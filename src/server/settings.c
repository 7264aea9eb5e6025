/* Configuration at run time: applying the settings that may change, and
 * reloading them on SIGHUP. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/app.h"
#include "util/token_bucket.h"
#include "util/log.h"

int app_load_config(config_t *cfg, int argc, char **argv, const char *own_flag, bool *has_own,
                    char *err, size_t len)
{
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        return snprintf(err, len, "out of memory"), -1;
    int n = 0;
    *has_own = false;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], own_flag) == 0)
            *has_own = true;
        else
            rest[n++] = argv[i];
    }
    int rc = config_load(cfg, n, rest, NULL, err, len);
    free(rest);
    return rc;
}

size_t app_cache_bytes(const config_t *c)
{
    int64_t bytes = c->memory_limit > 0 ? c->memory_limit / 10 : 64LL << 20;
    return (size_t)(bytes > (256LL << 20) ? 256LL << 20 : bytes);
}

/* Cluster mode: each node admits its share of every rate, so that the
 * cluster admits about the rate configured (docs/operations.md). */
static double rate_share(const app_t *a)
{
    return a->cfg.cluster && a->live_nodes > 1 ? 1.0 / a->live_nodes : 1.0;
}

static void set_limit(app_t *a, const config_limit_t *l)
{
    double share = rate_share(a);
    engine_limit_t el = { .concurrency = l->concurrency, .rate = l->rate * share,
                          .burst = l->burst >= 1 ? tb_share_burst(l->burst, share) : l->burst };
    static const engine_limit_kind_t kinds[] = { ENGINE_LIMIT_QUEUE, ENGINE_LIMIT_TYPE,
                                                 ENGINE_LIMIT_KEY };
    if (engine_set_limit(a->engine, kinds[l->target], l->name, &el) != 0)
        log_error("cannot set a limit: out of memory", LOG_S("name", l->name));
}

static void apply_limits(app_t *a)
{
    engine_clear_limits(a->engine);
    for (int i = 0; i < a->cfg.nlimits; i++)
        set_limit(a, &a->cfg.limits[i]);
    ratelimit_set_share(a->ratelimit, rate_share(a));
}

void app_set_live_nodes(app_t *a, int n)
{
    if (n == a->live_nodes)
        return;
    a->live_nodes = n;
    for (int i = 0; i < a->cfg.nlimits; i++)
        if (a->cfg.limits[i].rate > 0) /* set again: their buckets keep their tokens */
            set_limit(a, &a->cfg.limits[i]);
    ratelimit_set_share(a->ratelimit, rate_share(a));
    log_info("rate limits shared among the nodes alive", LOG_I("nodes", n),
             LOG_D("share", rate_share(a)));
}

void app_apply_settings(app_t *a)
{
    const config_t *c = &a->cfg;
    engine_breaker_options_t b = {
        .failures = c->breaker_failures, .ratio = c->breaker_ratio,
        .min_requests = c->breaker_min_requests, .window_ms = c->breaker_window_ms,
        .cooldown_ms = c->breaker_cooldown_ms, .cooldown_max_ms = c->breaker_cooldown_max_ms,
        .probes = c->breaker_probes,
    };
    engine_set_options(a->engine, &b, c->priority_aging_ms);
    apply_limits(a);
    guard_reload(a->guard, c);
    cache_configure(a->cache, c->cache_ttl_ms, app_cache_bytes(c));
    engine_set_finished_budget(a->engine, c->memory_limit * 6 / 10);
    engine_set_resident_budget(a->engine, c->queued_in_memory);
    log_set_level(c->log_level);
    admit_set_limits(a->admit, (unsigned)c->max_connections,
                     (unsigned)c->max_connections_per_client);
}

void app_reload(app_t *a)
{
    config_t *fresh = malloc(sizeof *fresh);
    char err[1024];
    bool unused;
    if (!fresh || app_load_config(fresh, a->argc, a->argv, "--print-config", &unused, err,
                                  sizeof err) != 0) {
        log_error("reload refused: the configuration is not valid; keeping the old one",
                  LOG_S("error", fresh ? err : "out of memory"));
        free(fresh);
        return;
    }
    char changed[512];
    bool restart_needed = config_keep_fixed(fresh, &a->cfg, changed, sizeof changed);
    a->cfg = *fresh;
    free(fresh);
    app_apply_settings(a);
    log_info("configuration reloaded", LOG_I("limits", a->cfg.nlimits),
             LOG_I("api_keys", a->cfg.nkeys), LOG_D("rate_limit", a->cfg.rate_limit),
             LOG_S("log_level", log_level_name(a->cfg.log_level)));
    if (restart_needed)
        log_warn("changed settings that take effect only after a restart",
                 LOG_S("settings", changed));
}
