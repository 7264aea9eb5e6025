/* GET /v1/limits: every protection setting in force and where it stands. */
#include "api/api_internal.h"
#include "engine/engine.h"
#include "util/token_bucket.h"

static const char *const kind_names[] = { "queue", "type", "key" };

static void add_limit(void *ud, const engine_limit_info_t *l)
{
    json_t *o = json_pack("{s:s, s:s, s:i, s:i}", "target", kind_names[l->kind], "name", l->name,
                          "concurrency", l->limit.concurrency, "running", l->running);
    if (l->limit.rate > 0) {
        json_object_set_new(o, "rate", json_real(l->limit.rate));
        json_object_set_new(o, "burst", json_real(tb_default_depth(l->limit.rate,
                                                                   l->limit.burst)));
        json_object_set_new(o, "tokens", json_real(l->tokens));
    }
    if (l->kind == ENGINE_LIMIT_KEY)
        json_object_set_new(o, "queued", json_integer((json_int_t)l->queued));
    json_array_append_new(ud, o);
}

void api_limits(api_call_t *c)
{
    const config_t *cfg = c->api->cfg;
    json_t *exec = json_array();
    engine_limit_foreach(c->api->engine, add_limit, exec);
    json_t *out = json_pack(
        "{s:{s:b, s:i, s:f, s:f}, s:o, s:{s:i, s:f, s:i, s:I, s:I, s:I, s:i}, s:I,"
        " s:{s:I, s:I}, s:{s:I, s:I}, s:{s:I, s:I}}",
        "api", "keys", cfg->nkeys > 0, "key_count", cfg->nkeys, "rate", cfg->rate_limit,
        "burst", cfg->rate_limit > 0 ? tb_default_depth(cfg->rate_limit, cfg->rate_burst) : 0.0,
        "execution", exec,
        "breakers", "failures", cfg->breaker_failures, "ratio", cfg->breaker_ratio,
        "min_requests", cfg->breaker_min_requests, "window_ms",
        (json_int_t)cfg->breaker_window_ms, "cooldown_ms", (json_int_t)cfg->breaker_cooldown_ms,
        "cooldown_max_ms", (json_int_t)cfg->breaker_cooldown_max_ms, "probes",
        cfg->breaker_probes,
        "priority_aging_ms", (json_int_t)cfg->priority_aging_ms,
        "memory", "limit_bytes", (json_int_t)cfg->memory_limit, "used_bytes",
        (json_int_t)api_memory_used(c->api),
        "retention", "completed_ms", (json_int_t)cfg->retain_completed_ms, "failed_ms",
        (json_int_t)cfg->retain_failed_ms,
        "waiters", "max", (json_int_t)cfg->max_waiters, "waiting", (json_int_t)c->api->waiting);
    api_reply_text(c, 200, api_dump(out));
}
