/* The query cache as handlers use it, and GET /v1/cache. */
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "api/cache.h"
#include "util/clock.h"

const char *api_cache_lookup(api_call_t *c, const char *key, const char *scope)
{
    cache_t *cache = c->api->cache;
    if (!cache)
        return NULL;
    const char *hit = cache_get(cache, key, scope, clock_now_ms());
    if (hit)
        return hit;
    free(c->cache_key);
    free(c->cache_scope);
    c->cache_key = strdup(key);
    c->cache_scope = scope ? strdup(scope) : NULL;
    c->cache_gen = cache_generation(cache, scope);
    return NULL;
}

void api_cache_fill(api_call_t *c, const char *text)
{
    if (c->api->cache && c->cache_key)
        cache_put(c->api->cache, c->cache_key, c->cache_scope, c->cache_gen, text,
                  clock_now_ms());
}

void api_cache(api_call_t *c)
{
    cache_stats_t s = { 0 };
    if (c->api->cache)
        cache_stats(c->api->cache, &s);
    uint64_t lookups = s.hits + s.misses;
    json_t *o = json_pack("{s:I, s:I, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "hits",
                          (json_int_t)s.hits, "misses", (json_int_t)s.misses, "hit_rate",
                          lookups ? json_real((double)s.hits / (double)lookups) : json_null(),
                          "entries", (json_int_t)s.entries, "bytes", (json_int_t)s.bytes,
                          "max_bytes", (json_int_t)s.max_bytes, "evictions",
                          (json_int_t)s.evictions, "invalidations", (json_int_t)s.invalidations,
                          "expirations", (json_int_t)s.expirations, "ttl_ms",
                          (json_int_t)s.ttl_ms);
    api_reply_text(c, 200, api_dump(o));
}
