/* GET /v1/perf: where the time goes (route latency, store statements and
 * batches, loop lag, slowest requests) and what the process uses. */
#include <sys/statvfs.h>

#include "api/api_internal.h"
#include "engine/engine.h"
#include "api/cache.h"
#include "metrics/metrics.h"
#include "metrics/perf.h"
#include "metrics/process.h"
#include "util/clock.h"

static json_t *hist_ms(const histogram_t *h)
{
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "count", (json_int_t)h->count, "total_ms",
                     h->sum * 1e3, "mean_ms", h->count ? h->sum * 1e3 / (double)h->count : 0,
                     "p50_ms", histogram_quantile(h, 0.5) * 1e3, "p99_ms",
                     histogram_quantile(h, 0.99) * 1e3, "max_ms", h->max * 1e3);
}

static json_t *store_json(store_t *s)
{
    store_figures_t f;
    store_figures(s, &f);
    json_t *st = json_object();
    for (int i = 0; i < STORE_ST_COUNT; i++)
        json_object_set_new(st, store_statement_name((store_statement_t)i),
                            hist_ms(&f.statement_seconds[i]));
    json_t *sizes = json_object();
    uint64_t cum = 0;
    for (int i = 0; i <= f.batch_size.nbounds; i++) {
        cum += f.batch_size.counts[i];
        char le[32];
        if (i < f.batch_size.nbounds)
            snprintf(le, sizeof le, "<=%g", f.batch_size.bounds[i]);
        else
            snprintf(le, sizeof le, "more");
        if (f.batch_size.counts[i])
            json_object_set_new(sizes, le, json_integer((json_int_t)f.batch_size.counts[i]));
    }
    (void)cum;
    const histogram_t *b = &f.batch_size;
    return json_pack("{s:o, s:{s:I, s:f, s:f, s:f, s:o}, s:o, s:o, s:I}", "statements", st,
                     "batches", "count", (json_int_t)b->count, "mean_size",
                     b->count ? b->sum / (double)b->count : 0, "p99_size",
                     histogram_quantile(b, 0.99), "max_size", b->max, "sizes", sizes,
                     "batch_commit", hist_ms(&f.commit_seconds), "roundtrip",
                     hist_ms(&f.roundtrip_seconds), "failed_commits",
                     (json_int_t)f.failed_commits);
}

static json_t *system_json(const api_t *api)
{
    const config_t *cfg = api->cfg;
    process_figures_t p;
    process_read(&p);
    json_t *disk = json_null();
    struct statvfs v;
    if (statvfs(cfg->data_dir, &v) == 0)
        disk = json_pack("{s:s, s:I, s:I}", "path", cfg->data_dir, "total_bytes",
                         (json_int_t)v.f_blocks * (json_int_t)v.f_frsize, "free_bytes",
                         (json_int_t)v.f_bavail * (json_int_t)v.f_frsize);
    return json_pack("{s:I, s:I, s:o, s:o, s:I, s:I, s:I, s:f, s:I, s:b, s:I}", "resident_bytes",
                     (json_int_t)p.resident_bytes, "memory_accounted_bytes",
                     (json_int_t)api_memory_used(api), "memory_limit_bytes",
                     cfg->memory_limit ? json_integer(cfg->memory_limit) : json_null(), "disk", disk,
                     "open_fds", (json_int_t)p.open_fds, "max_fds", (json_int_t)p.max_fds,
                     "threads", (json_int_t)p.threads, "cpu_seconds", p.cpu_seconds,
                     "jobs_spilled", (json_int_t)engine_spilled_count(api->engine),
                     "id_filter_ready", store_id_filter_ready(api->store),
                     "id_filter_bytes", (json_int_t)store_id_filter_bytes(api->store));
}

void api_perf(api_call_t *c)
{
    int64_t now = clock_now_ms();
    json_t *out = perf_json(c->api->perf, now);
    json_object_set_new(out, "routes", metrics_routes_json(c->api->metrics));
    json_object_set_new(out, "store", store_json(c->api->store));
    json_object_set_new(out, "system", system_json(c->api));
    cache_stats_t s = { 0 };
    if (c->api->cache)
        cache_stats(c->api->cache, &s);
    uint64_t lookups = s.hits + s.misses;
    json_object_set_new(out, "cache",
                        json_pack("{s:I, s:I, s:o, s:I, s:I}", "hits", (json_int_t)s.hits,
                                  "misses", (json_int_t)s.misses, "hit_rate",
                                  lookups ? json_real((double)s.hits / (double)lookups)
                                          : json_null(),
                                  "entries", (json_int_t)s.entries, "bytes",
                                  (json_int_t)s.bytes));
    api_reply_text(c, 200, api_dump(out));
}
